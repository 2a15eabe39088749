"""``%chat keep N``: put reply N of the last comparison into the conversation's history."""

from __future__ import annotations

from typing import TYPE_CHECKING

from IPython.core.error import UsageError

from tf_magics.errors import TFMagicsError

from .base import Command, CommandParser

if TYPE_CHECKING:
    from tf_magics.notebook.session import NotebookSession

__all__ = ["COMMANDS"]


def _keep_parser() -> CommandParser:
    parser = CommandParser(
        "keep",
        "Keep reply N of the last comparison (%%chat --compare, or -t 0,1) in the history: its "
        "question and answer are added as if it had been the only reply.",
    )
    parser.add_argument("number", type=int, help="The reply's number, as shown above it.")
    return parser


def _keep(session: NotebookSession, argv: list[str]) -> None:
    args = _keep_parser().parse_args(argv)
    comparison = session.last_comparison
    if comparison is None:
        raise UsageError(
            "%chat keep: there is no comparison to keep a reply from; run a %%chat cell with "
            "--compare A,B or -t 0,1 first."
        )
    try:
        reply = comparison.keep(args.number)
    except TFMagicsError as error:
        raise UsageError(f"%chat keep: {error}") from None
    label = comparison.variants[args.number - 1].label
    words = len(reply.text.split())
    print(
        f"Kept reply {args.number} ({label}, {words:,} words) in conversation "
        f"{comparison.conversation.name!r}."
    )


COMMANDS = {
    "keep": Command("keep reply N of the last comparison", _keep_parser, _keep),
}
