"""What every ``%chat`` command shares: its record, its parser, and how it shows a result."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from IPython.display import display

from tf_magics.notebook.flags import CommandParser

if TYPE_CHECKING:
    from tf_magics.notebook.session import NotebookSession

__all__ = ["Command", "CommandParser", "conversation_arg", "show"]


class Command(NamedTuple):
    """One ``%chat COMMAND``: a one-line summary, its parser, and what it does."""

    summary: str
    parser: Callable[[], CommandParser]
    run: Callable[[NotebookSession, list[str]], Any]


def show(html: str, text: str, markdown: str | None = None) -> None:
    """Display a result with HTML, plain text and (optionally) Markdown forms."""
    bundle = {"text/html": html, "text/plain": text}
    if markdown is not None:
        bundle["text/markdown"] = markdown
    display(bundle, raw=True)


def conversation_arg(parser: CommandParser) -> None:
    """Add the ``-c/--conversation NAME`` option every conversation command takes."""
    parser.add_argument("-c", "--conversation", help="Named conversation (default: 'default').")
