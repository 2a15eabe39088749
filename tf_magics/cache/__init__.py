"""Record and replay: replies kept in a file beside the notebook, answered again without a server.

A teaching notebook recorded once with a strong model replays identically for every student,
offline and with no key; a notebook run again costs nothing for the cells that did not change.
``ChatSettings.cache`` (or ``TF_MAGICS_CACHE``, which wins) picks the mode: ``off``, ``auto``,
``record`` or ``replay`` (see :mod:`~tf_magics.cache.layer`).

Requests are known by their canonical form (model, messages, sampling, tools, response format;
never the server, a key or a header), and replies are kept as the events they were made of, so a
replayed reply streams, runs its tool calls through the notebook's functions and renders as the
original did. The layer sits at the client's boundary (a :class:`~tf_magics.client.request.ChatHook`
on the request), so every feature that sends a request is recorded and replayed without knowing.

========================  ================================================================
module                    job
========================  ================================================================
``canonical``             a request's canonical form and its key
``differences``           what differs from the closest recorded request, in a few words
``entry``                 one recorded exchange: a line of the file, read and written
``store``                 the file: index, append, prune, clear, lines that cannot be read
``replay``                recording a reply's events, and playing them back
``layer``                 :class:`RecordReplay`, the hook: modes, lookups, recording
``location``              where the file is: beside the notebook, or the working directory
``mode``                  the mode in force (the setting, or ``TF_MAGICS_CACHE``)
========================  ================================================================

The package imports its modules when a name is first used, so loading the extension costs
nothing while the mode is ``off``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .canonical import canonical_request, request_key
    from .entry import Entry
    from .layer import RecordReplay, layer_for
    from .location import (
        CACHE_FILE_ENV,
        Location,
        locate,
        notebook_path,
        register_notebook_path,
        unregister_notebook_path,
    )
    from .mode import MODE_ENV, CacheMode, cache_mode
    from .store import RecordingFile, RecordingSummary, recording_file

__all__ = [
    "CACHE_FILE_ENV",
    "MODE_ENV",
    "CacheMode",
    "Entry",
    "Location",
    "RecordReplay",
    "RecordingFile",
    "RecordingSummary",
    "cache_mode",
    "canonical_request",
    "layer_for",
    "locate",
    "notebook_path",
    "recording_file",
    "register_notebook_path",
    "request_key",
    "unregister_notebook_path",
]

# Imported when first asked for (``%load_ext`` must stay instant): name -> its module.
_MODULES = {
    "CACHE_FILE_ENV": "location",
    "MODE_ENV": "mode",
    "CacheMode": "mode",
    "Entry": "entry",
    "Location": "location",
    "RecordReplay": "layer",
    "RecordingFile": "store",
    "RecordingSummary": "store",
    "cache_mode": "mode",
    "canonical_request": "canonical",
    "layer_for": "layer",
    "locate": "location",
    "notebook_path": "location",
    "recording_file": "store",
    "register_notebook_path": "location",
    "request_key": "canonical",
    "unregister_notebook_path": "location",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'tf_magics.cache' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
