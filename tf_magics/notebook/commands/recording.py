"""``%chat`` commands about what is kept beside the notebook: the recording and the conversations.

``%chat cache`` shows the recording (where, why there, what it holds), ``%chat cache prune``
keeps only what this kernel's requests used, ``%chat cache clear`` deletes it, ``%chat cache
rewind`` counts requests from the start again (as a fresh kernel does), and ``%chat cache MODE``
switches the mode. ``%chat restore`` brings back the conversations saved by
an earlier session.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from IPython.core.error import UsageError

from tf_magics.cache import MODE_ENV, cache_mode, locate, recording_file
from tf_magics.errors import ConfigurationError
from tf_magics.options import CACHE_MODES
from tf_magics.render import escape

from .base import Command, CommandParser, show

if TYPE_CHECKING:
    from tf_magics.notebook.session import NotebookSession

__all__ = ["COMMANDS"]


def _cache_parser() -> CommandParser:
    parser = CommandParser(
        "cache",
        "Record and replay replies: show the recording, prune it to what this kernel used, "
        "clear it, rewind (replay from the first recording again, as after a restart), or set "
        "the mode (off, auto, record, replay).",
    )
    parser.add_argument(
        "action",
        nargs="?",
        default="show",
        choices=("show", "prune", "clear", "rewind", *CACHE_MODES),
    )
    return parser


def _cache(session: NotebookSession, argv: list[str]) -> None:
    action = _cache_parser().parse_args(argv).action
    if action in CACHE_MODES:
        _set_mode(session, action)
        return
    try:
        location = locate(session.settings.cache_file)
    except OSError as error:
        raise UsageError(f"%chat cache: the working directory is gone ({error}).") from None
    recording = recording_file(location.recording)
    if action == "prune":
        try:
            kept, removed = recording.prune()
        except ValueError:
            raise UsageError(
                "%chat cache prune: no request of this kernel used the recording yet, so "
                "pruning would empty it. Run the notebook (Run All), then prune."
            ) from None
        except OSError as error:
            raise UsageError(f"%chat cache prune: cannot rewrite the file ({error}).") from None
        print(
            f"Kept the {kept} recorded replies this kernel used; removed {removed} "
            f"({recording.path.name})."
        )
        return
    if action == "rewind":
        recording.rewind()
        print(
            "Requests are counted from the start again: the next ones replay the first recordings."
        )
        return
    if action == "clear":
        removed = recording.clear()
        print(f"Removed {removed} recorded replies: {recording.path.name} is deleted.")
        return
    _show(session, location.why, recording.path)


def _set_mode(session: NotebookSession, mode: str) -> None:
    session.settings.cache = mode
    forced = os.environ.get(MODE_ENV, "").strip()
    if forced:
        print(f"cache = {mode}, but {MODE_ENV}={forced} is set in the environment and wins.")
    else:
        print(f"cache = {mode}")


def _mode_line(session: NotebookSession) -> str:
    try:
        mode, source = cache_mode(session.settings.cache, os.environ)
    except ConfigurationError as error:
        return f"refused: {error}"
    pace = session.settings.replay_pace
    return f"{mode} (from {source}; replayed replies come {_PACES.get(pace, pace)})"


_PACES = {"instant": "at once", "recorded": "at the pace they were recorded"}


def _show(session: NotebookSession, why: str, path: Path) -> None:
    summary = recording_file(path).summary()
    rows = [("mode", _mode_line(session)), ("file", f"{path} ({why})")]
    if not summary.exists:
        rows.append(("entries", "none yet (the file does not exist)"))
    else:
        models = ", ".join(f"{model}: {count}" for model, count in summary.by_model.items())
        rows.append(("entries", f"{summary.entries} recorded replies ({models or 'none'})"))
        rows.append(("size", _size(summary.size)))
        rows.append(("used", f"{summary.used} by this kernel's requests (prune keeps these)"))
    for problem in summary.problems:
        rows.append(("skipped", problem))
    html = "".join(
        f"<tr><td><code>{escape(name)}</code></td><td>{escape(value)}</td></tr>"
        for name, value in rows
    )
    show(f"<table>{html}</table>", "\n".join(f"{name:<8} {value}" for name, value in rows))


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:,.1f} kB"
    return f"{size / 1024 / 1024:,.1f} MB"


def _restore_parser() -> CommandParser:
    parser = CommandParser(
        "restore",
        "Bring back the conversations saved beside the notebook by an earlier session (or from "
        "PATH), with their system prompts.",
    )
    parser.add_argument("path", nargs="?", help="A conversations file (default: the notebook's).")
    return parser


def _restore(session: NotebookSession, argv: list[str]) -> None:
    args = _restore_parser().parse_args(argv)
    path = Path(args.path).expanduser() if args.path else None
    try:
        snapshot, replaced = session.keeper.restore(path)
    except FileNotFoundError:
        where = args.path or session.keeper.location().conversations.name
        raise UsageError(f"%chat restore: no saved conversations at {where}.") from None
    except OSError as error:
        raise UsageError(f"%chat restore: cannot read the file ({error.strerror}).") from None
    except ValueError as error:
        raise UsageError(f"%chat restore: nothing was restored: {error}.") from None
    from tf_magics.notebook.saved_conversations import describe

    line = f"Restored {len(snapshot.conversations)} conversations: {describe(snapshot)}."
    if replaced:
        line += f" They replace what this session had in {', '.join(map(repr, replaced))}."
    print(line)


COMMANDS = {
    "cache": Command("show, prune or clear the recording; set its mode", _cache_parser, _cache),
    "restore": Command(
        "bring back the conversations of an earlier session", _restore_parser, _restore
    ),
}
