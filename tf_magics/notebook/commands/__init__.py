"""The ``%chat COMMAND`` line commands (``%chat help`` lists them).

========================  ================================================================
module                    commands
========================  ================================================================
``conversation``          history, reset, undo, retry, system, trim, usage, conversations
``explain``               explain (the last error)
``keep``                  keep (a reply of the last comparison)
``files``                 save, load, export
``recording``             cache (record and replay), restore
``settings``              models, settings, set, unset, local, panel
``tools``                 tools
``batch``                 batch (list, status, collect, cancel Batch API jobs)
========================  ================================================================
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from tf_magics.render import escape

from . import batch, conversation, explain, files, keep, recording, settings, tools
from .base import Command, CommandParser, show

if TYPE_CHECKING:
    from tf_magics.notebook.session import NotebookSession

__all__ = ["COMMANDS", "run_line_command"]


def _help(session: NotebookSession, argv: list[str]) -> None:
    if argv and argv[0] in COMMANDS:
        parser = COMMANDS[argv[0]].parser()
        text = parser.format_help()
        show(f"<pre>{escape(text)}</pre>", text)
        return
    lines = [
        "%%chat [flags]  — send the cell as the next user message (`%chat?` lists the flags)",
        "",
        "%chat COMMAND:",
    ]
    lines += [f"  {name:<14} {summary}" for name, (summary, _, _) in COMMANDS.items()]
    lines += ["", "`%chat help COMMAND` shows a command's options."]
    text = "\n".join(lines)
    show(f"<pre>{escape(text)}</pre>", text)


#: Every command by name, in the order ``%chat help`` lists them.
COMMANDS: dict[str, Command] = {
    "help": Command(
        "this list; `%chat help COMMAND` for one", lambda: CommandParser("help", ""), _help
    ),
    **conversation.COMMANDS,
    **explain.COMMANDS,
    **keep.COMMANDS,
    **settings.COMMANDS,
    **files.COMMANDS,
    **tools.COMMANDS,
    **recording.COMMANDS,
    **batch.COMMANDS,
}
_ALIASES = {"new": "reset", "clear": "reset", "model": "models", "config": "settings"}


def run_line_command(session: NotebookSession, line: str) -> Any:
    """Dispatch ``%chat COMMAND ARGS``."""
    try:
        argv = shlex.split(line)
    except ValueError as error:
        raise UsageError(f"%chat: {error} (check the quotes).") from None
    if not argv:
        argv = ["help"]
    name = _ALIASES.get(argv[0], argv[0])
    if name not in COMMANDS:
        raise UsageError(
            f"%chat: unknown command {argv[0]!r}. Commands: {', '.join(COMMANDS)}. "
            "To send a message, use the cell magic %%chat."
        )
    return COMMANDS[name].run(session, argv[1:])
