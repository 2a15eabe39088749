"""``%chat explain``: send the last exception and the cell that raised it, and ask for a fix."""

from __future__ import annotations

from typing import TYPE_CHECKING

from IPython.core.error import UsageError

from tf_magics.notebook.flags import request_from
from tf_magics.notebook.turns import make_view, run_turn
from tf_magics.notebook.values import ERROR_NAME, last_error

from .base import Command, CommandParser, conversation_arg

if TYPE_CHECKING:
    from tf_magics.notebook.session import NotebookSession

__all__ = ["COMMANDS", "EXPLAIN_QUESTION"]

#: What ``%chat explain`` asks (the exception and its cell are attached as ``error``).
EXPLAIN_QUESTION = (
    "The notebook code attached as `error` raised this exception. Explain briefly what went "
    "wrong, then show how to fix it."
)


def _explain_parser() -> CommandParser:
    parser = CommandParser(
        "explain",
        "Send the last exception (type, message, the traceback trimmed to your code) and the "
        "cell that raised it, asking what went wrong and how to fix it.",
    )
    conversation_arg(parser)
    parser.add_argument("--no-history", action="store_true", help="Ask as a one-off question.")
    parser.add_argument("question", nargs="*", help="Your own question instead of the default one.")
    return parser.add_options()


def _explain(session: NotebookSession, argv: list[str]) -> None:
    args = _explain_parser().parse_args(argv)
    error = last_error(session.last_error)
    if error is None:
        raise UsageError(
            "%chat explain: no cell has raised an exception yet in this session, so there is "
            "nothing to explain."
        )
    request = request_from(args)
    if request.variants:
        raise UsageError("%chat explain: comma lists compare; use them on a %%chat cell.")
    chat = session.chat(request.conversation)
    chat.settings.resolve(**request.overrides)  # bad values fail before anything changes
    question = " ".join(args.question) or EXPLAIN_QUESTION
    run_turn(
        session,
        chat,
        make_view(chat, request.overrides),
        text=question,
        request=request,
        context=[(ERROR_NAME, error)],
    )


COMMANDS = {
    "explain": Command("explain the last error and how to fix it", _explain_parser, _explain),
}
