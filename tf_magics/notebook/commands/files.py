"""``%chat`` commands that write or read files: save and load a conversation, export it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from IPython.core.error import UsageError

from tf_magics.render import render_markdown

from .base import Command, CommandParser, conversation_arg, show

if TYPE_CHECKING:
    from tf_magics.notebook.session import NotebookSession

__all__ = ["COMMANDS"]


def _save_parser() -> CommandParser:
    parser = CommandParser("save", "Save the conversation as JSON (never the API key).")
    conversation_arg(parser)
    parser.add_argument("path")
    return parser


def _save(session: NotebookSession, argv: list[str]) -> None:
    args = _save_parser().parse_args(argv)
    conversation = session.chat(args.conversation).conversation
    path = conversation.save(args.path)
    print(f"Saved {len(conversation.messages)} messages to {path}.")


def _load_parser() -> CommandParser:
    parser = CommandParser(
        "load", "Load a conversation saved with %chat save (replaces the current)."
    )
    conversation_arg(parser)
    parser.add_argument("path")
    return parser


def _load(session: NotebookSession, argv: list[str]) -> None:
    args = _load_parser().parse_args(argv)
    from tf_magics.conversation import Conversation

    try:
        loaded = Conversation.load(args.path)
    except FileNotFoundError:
        raise UsageError(f"%chat load: no file at {args.path}.") from None
    except OSError as error:
        raise UsageError(f"%chat load: cannot read {args.path} ({error.strerror}).") from None
    except ValueError as error:
        raise UsageError(
            f"%chat load: {args.path} is not a saved conversation ({error})."
        ) from None
    chat = session.chat(args.conversation)
    loaded.name = chat.conversation.name
    chat.conversation = loaded
    print(f"Loaded {len(loaded.messages)} messages into {loaded.name!r}.")


def _export_parser() -> CommandParser:
    parser = CommandParser(
        "export", "Export the conversation as Markdown (to PATH, or shown here)."
    )
    conversation_arg(parser)
    parser.add_argument("path", nargs="?")
    return parser


def _export(session: NotebookSession, argv: list[str]) -> None:
    args = _export_parser().parse_args(argv)
    text = session.chat(args.conversation).conversation.to_markdown()
    if args.path:
        Path(args.path).write_text(text, encoding="utf-8")
        print(f"Wrote {args.path}.")
    else:
        show(render_markdown(text), text, text)


COMMANDS = {
    "save": Command("save the conversation as JSON", _save_parser, _save),
    "load": Command("load a saved conversation", _load_parser, _load),
    "export": Command("export the conversation as Markdown", _export_parser, _export),
}
