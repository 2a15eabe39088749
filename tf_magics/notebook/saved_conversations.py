"""The notebook's named conversations in a file beside it, so they survive a kernel restart.

After each turn the session writes every conversation that has messages, system prompts
included, to ``<notebook>.tf_magics.conversations.json`` (next to the recording, see
:mod:`tf_magics.cache.location`): written to a temporary file and renamed over the old one, so a
crash never leaves half a file. Only messages are written: no key, no setting, no header.

Reading it back (``%chat restore``) is all or nothing: every conversation is checked
(:meth:`~tf_magics.Conversation.from_dict`) before any replaces what the notebook holds.
"""

from __future__ import annotations

import calendar
import contextlib
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tf_magics.conversation import Conversation

__all__ = ["FORMAT", "Snapshot", "describe", "dump_text", "read_snapshot", "write_atomically"]

FORMAT = "tf_magics.conversations"
VERSION = 1


@dataclass(frozen=True)
class Snapshot:
    """Conversations as a file holds them.

    Attributes
    ----------
    saved_at
        When they were written (seconds since the epoch), or ``None`` if the file does not say.
    conversations
        By name, checked and ready to use.
    """

    saved_at: float | None
    conversations: dict[str, Conversation]

    @property
    def turns(self) -> int:
        """Turns in all of them."""
        return sum(len(c.turns()) for c in self.conversations.values())


def dump_text(conversations: Mapping[str, Conversation], now: float | None = None) -> str | None:
    """The file's text for the conversations that have messages (``None``: none has any)."""
    kept = [c.to_dict() for c in conversations.values() if c.messages]
    if not kept:
        return None
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if now is None else now))
    data: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "saved_at": stamp,
        "conversations": kept,
    }
    return json.dumps(data, ensure_ascii=False, indent=1) + "\n"


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step (a temporary file renamed over it).

    Raises
    ------
    OSError
        When the folder cannot be written.
    """
    import tempfile  # written rarely: not worth importing when the extension loads

    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
    )
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="\n") as sink:
            sink.write(text)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def read_snapshot(path: Path) -> Snapshot:
    """The conversations saved in ``path``, every one of them checked.

    Raises
    ------
    FileNotFoundError
        When there is no such file.
    ValueError
        Naming the first problem, when the file is not a valid set of conversations.
    """
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise ValueError("it is not JSON") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError("it is not a file of saved tf_magics conversations")
    if data.get("version") != VERSION:
        raise ValueError(f"it was written by another version ({data.get('version')!r})")
    items = data.get("conversations")
    if not isinstance(items, list):
        raise ValueError("its 'conversations' is not a list")
    conversations: dict[str, Conversation] = {}
    for position, item in enumerate(items):
        try:
            conversation = Conversation.from_dict(item)
        except ValueError as error:
            raise ValueError(f"conversations[{position}]: {error}") from None
        if conversation.name in conversations:
            raise ValueError(f"conversations[{position}] repeats the name {conversation.name!r}")
        conversations[conversation.name] = conversation
    return Snapshot(_saved_at(data.get("saved_at")), conversations)


def _saved_at(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return float(calendar.timegm(time.strptime(value, "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return None


def describe(snapshot: Snapshot) -> str:
    """``default (3 turns, with a system prompt), pirate (1 turn)``."""
    parts = []
    for name, conversation in snapshot.conversations.items():
        turns = len(conversation.turns())
        words = [f"{turns} turn{'s' if turns != 1 else ''}"]
        if conversation.system:
            words.append("with a system prompt")
        parts.append(f"{name} ({', '.join(words)})")
    return ", ".join(parts)
