"""Where a notebook's recording and its saved conversations live.

Beside the notebook when the kernel can learn its path: JupyterLab and Notebook 7 start the
kernel with ``JPY_SESSION_NAME`` (ipykernel copies it into the namespace as ``__session__``), and
VS Code sets ``__vsc_ipynb_file__`` in the namespace. The notebook layer registers a function that
reads the namespace (:func:`register_notebook_path`); this module, below it, also reads the
environment variable itself, so a :class:`~tf_magics.Chat` used without the extension finds the
same place.

For ``lesson.ipynb`` the files are ``lesson.tf_magics.jsonl`` (the recording) and
``lesson.tf_magics.conversations.json`` (the conversations). Where the path is unknown (nbclient,
papermill and ``nbconvert --execute`` run the kernel in the notebook's folder without naming the
notebook; terminal IPython; Colab) the recording is ``tf_magics.jsonl`` in the working directory.
``ChatSettings.cache_file`` or ``TF_MAGICS_CACHE_FILE`` (which wins) names the file explicitly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CACHE_FILE_ENV",
    "Location",
    "locate",
    "notebook_path",
    "register_notebook_path",
    "unregister_notebook_path",
]

CACHE_FILE_ENV = "TF_MAGICS_CACHE_FILE"
RECORDING_SUFFIX = ".tf_magics.jsonl"
CONVERSATIONS_SUFFIX = ".tf_magics.conversations.json"
DEFAULT_NAME = "tf_magics.jsonl"

NotebookPathProvider = Callable[[], str | None]
_PROVIDERS: list[NotebookPathProvider] = []


@dataclass(frozen=True)
class Location:
    """Where the files are, and why there.

    Attributes
    ----------
    recording
        The recording file (``.jsonl``).
    conversations
        The saved conversations (``.json``), next to it.
    why
        In words: ``"beside the notebook lesson.ipynb"``, ``"set by TF_MAGICS_CACHE_FILE"``...
    known
        True when the place was chosen for this notebook (its path, or a name given
        explicitly); false for the working directory's default file.
    """

    recording: Path
    conversations: Path
    why: str
    known: bool


def register_notebook_path(provider: NotebookPathProvider) -> None:
    """Add a function that returns the running notebook's path, or ``None`` if it cannot tell."""
    if provider not in _PROVIDERS:
        _PROVIDERS.append(provider)


def unregister_notebook_path(provider: NotebookPathProvider) -> None:
    """Remove a function added by :func:`register_notebook_path`."""
    if provider in _PROVIDERS:
        _PROVIDERS.remove(provider)


def notebook_path(env: Mapping[str, str] | None = None) -> Path | None:
    """The running notebook's file, when the kernel can learn it."""
    env = os.environ if env is None else env
    candidates = [provider() for provider in list(_PROVIDERS)]
    candidates.append(env.get("JPY_SESSION_NAME"))
    for candidate in candidates:
        path = _notebook_file(candidate)
        if path is not None:
            return path
    return None


def _notebook_file(raw: str | None) -> Path | None:
    """A notebook path as the front end gave it, made absolute; ``None`` if it is not one."""
    if not raw or not raw.strip().lower().endswith(".ipynb"):
        return None  # a console or a file that is not a notebook
    path = Path(raw.strip()).expanduser()
    if path.is_absolute():
        return path
    # A path relative to the server's root, which the kernel does not know; the kernel runs in
    # the notebook's folder, so the name alone finds it.
    beside = Path.cwd() / path.name
    return beside if not (Path.cwd() / path).exists() else Path.cwd() / path


def locate(cache_file: str | None = None, env: Mapping[str, str] | None = None) -> Location:
    """Where the recording and the conversations of the running notebook are."""
    env = os.environ if env is None else env
    explicit = (env.get(CACHE_FILE_ENV) or "").strip()
    if explicit:
        return _named(Path(explicit), f"set by {CACHE_FILE_ENV}")
    if cache_file:
        return _named(Path(cache_file), "set by ChatSettings.cache_file")
    notebook = notebook_path(env)
    if notebook is not None:
        stem = notebook.name[: -len(".ipynb")]
        return Location(
            recording=notebook.with_name(stem + RECORDING_SUFFIX),
            conversations=notebook.with_name(stem + CONVERSATIONS_SUFFIX),
            why=f"beside the notebook {notebook.name}",
            known=True,
        )
    folder = Path.cwd()
    return Location(
        recording=folder / DEFAULT_NAME,
        conversations=folder / ("tf_magics" + CONVERSATIONS_SUFFIX),
        why="in the working directory (the kernel cannot tell which notebook it runs)",
        known=False,
    )


def _named(path: Path, why: str) -> Location:
    path = path.expanduser()
    if not path.is_absolute():
        path = Path.cwd() / path
    name = path.name
    stem = name[: -len(RECORDING_SUFFIX)] if name.endswith(RECORDING_SUFFIX) else path.stem
    return Location(
        recording=path,
        conversations=path.with_name(stem + CONVERSATIONS_SUFFIX),
        why=why,
        known=True,
    )
