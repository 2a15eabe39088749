"""``%chat`` commands about a conversation: its history, its turns, its system prompt."""

from __future__ import annotations

from typing import TYPE_CHECKING

from IPython.core.error import UsageError

from tf_magics.budget import caps_for, kernel_ledger
from tf_magics.cost import format_money
from tf_magics.notebook.flags import request_from
from tf_magics.notebook.history_view import history_view
from tf_magics.notebook.turns import make_view, run_turn
from tf_magics.render import render_markdown

from .base import Command, CommandParser, conversation_arg, show

if TYPE_CHECKING:
    from tf_magics.notebook.session import NotebookSession

__all__ = ["COMMANDS"]


def _history_parser() -> CommandParser:
    parser = CommandParser(
        "history", "Show the conversation: messages, tool calls and token counts."
    )
    conversation_arg(parser)
    parser.add_argument("--markdown", action="store_true", help="Show the Markdown export.")
    return parser


def _history(session: NotebookSession, argv: list[str]) -> None:
    args = _history_parser().parse_args(argv)
    conversation = session.chat(args.conversation).conversation
    if args.markdown:
        text = conversation.to_markdown()
        show(render_markdown(text), text, text)
        return
    html, text = history_view(conversation, session.settings.currency)
    show(html, text, conversation.to_markdown())


def _reset_parser() -> CommandParser:
    parser = CommandParser("reset", "Forget the conversation's messages (the system prompt stays).")
    conversation_arg(parser)
    parser.add_argument("--all", action="store_true", help="Also remove the system prompt.")
    return parser


def _reset(session: NotebookSession, argv: list[str]) -> None:
    args = _reset_parser().parse_args(argv)
    chat = session.chat(args.conversation)
    chat.reset(keep_system=not args.all)
    print(f"Conversation {chat.conversation.name!r} starts afresh.")


def _undo_parser() -> CommandParser:
    parser = CommandParser("undo", "Forget the last turn (question and answer).")
    conversation_arg(parser)
    return parser


def _undo(session: NotebookSession, argv: list[str]) -> None:
    args = _undo_parser().parse_args(argv)
    turn = session.chat(args.conversation).undo()
    if turn is None:
        print("Nothing to undo: the conversation is empty.")
        return
    question = turn.user.content if turn.user else "(no question)"
    short = question if len(question) <= 60 else question[:59] + "…"
    print(f"Removed the last turn ({len(turn.messages)} messages): {short!r}")


def _retry_parser() -> CommandParser:
    parser = CommandParser("retry", "Ask the last question again (the old answer is replaced).")
    conversation_arg(parser)
    return parser.add_options()


def _retry(session: NotebookSession, argv: list[str]) -> None:
    request = request_from(_retry_parser().parse_args(argv))
    if request.variants:
        raise UsageError("%chat retry: comma lists compare; use them on a %%chat cell.")
    chat = session.chat(request.conversation)
    chat.settings.resolve(**request.overrides)  # bad values fail before anything changes
    run_turn(session, chat, make_view(chat, request.overrides), text=None, request=request)


def _system_parser() -> CommandParser:
    parser = CommandParser("system", "Show the system prompt, or set it to TEXT.")
    conversation_arg(parser)
    parser.add_argument("--clear", action="store_true", help="Remove the system prompt.")
    parser.add_argument("text", nargs="*", help="The new system prompt.")
    return parser


def _system(session: NotebookSession, argv: list[str]) -> None:
    args = _system_parser().parse_args(argv)
    chat = session.chat(args.conversation)
    if args.clear:
        chat.system = None
        print("System prompt removed.")
    elif args.text:
        chat.system = " ".join(args.text)
        print(f"System prompt set ({len(chat.system or '')} characters).")
    else:
        print(chat.system if chat.system else "(no system prompt)")


def _trim_parser() -> CommandParser:
    parser = CommandParser("trim", "Drop the oldest whole turns (the system prompt always stays).")
    conversation_arg(parser)
    parser.add_argument("--turns", type=int, help="Keep at most this many turns.")
    parser.add_argument("--tokens", type=int, help="Keep the history under this many tokens.")
    return parser


def _trim(session: NotebookSession, argv: list[str]) -> None:
    args = _trim_parser().parse_args(argv)
    if args.turns is None and args.tokens is None:
        raise UsageError("%chat trim: give --turns N and/or --tokens N.")
    conversation = session.chat(args.conversation).conversation
    print(conversation.trim(max_turns=args.turns, max_tokens=args.tokens, keep_last=0))


def _usage_parser() -> CommandParser:
    parser = CommandParser(
        "usage", "Token usage and cost per turn and in total, and the kernel's spending."
    )
    conversation_arg(parser)
    return parser


def _usage(session: NotebookSession, argv: list[str]) -> None:
    args = _usage_parser().parse_args(argv)
    settings = session.settings
    conversation = session.chat(args.conversation).conversation
    priced = bool(settings.prices) or settings.budget is not None
    lines = []
    for number, turn in enumerate(conversation.turns(), 1):
        usage = turn.usage
        if usage is None:
            lines.append(f"turn {number}: usage not reported")
            continue
        counts = f"{usage.prompt_tokens or 0:,} in, {usage.completion_tokens or 0:,} out"
        lines.append(f"turn {number}: {counts}" + _cost_words(turn.cost, settings.currency, priced))
    total = conversation.usage
    line = (
        f"total: {total.prompt_tokens or 0:,} in, {total.completion_tokens or 0:,} out, "
        f"{total.total_tokens or 0:,} tokens"
    )
    lines.append(line + _cost_words(conversation.cost, settings.currency, priced))
    caps = caps_for(settings.budget, settings.budget_tokens, settings.currency)
    lines.append(f"this kernel has spent {kernel_ledger().spent_text(caps)}")
    print("\n".join(lines))


def _cost_words(cost: float | None, currency: str, priced: bool) -> str:
    if cost is not None:
        return f", {format_money(cost, currency)}"
    return ", cost unknown (no price)" if priced else ""


def _conversations_parser() -> CommandParser:
    return CommandParser("conversations", "List the notebook's conversations.")


def _conversations(session: NotebookSession, argv: list[str]) -> None:
    _conversations_parser().parse_args(argv)
    if not session.chats:
        print("No conversation yet: run a %%chat cell.")
    for name, chat in session.chats.items():
        print(f"{name}: {len(chat.conversation.turns())} turns")


COMMANDS = {
    "history": Command("show the conversation with token counts", _history_parser, _history),
    "reset": Command("forget the messages (alias: new)", _reset_parser, _reset),
    "undo": Command("forget the last turn", _undo_parser, _undo),
    "retry": Command("ask the last question again", _retry_parser, _retry),
    "system": Command("show or set the system prompt", _system_parser, _system),
    "trim": Command("drop the oldest turns", _trim_parser, _trim),
    "usage": Command("token usage per turn and in total", _usage_parser, _usage),
    "conversations": Command("list the named conversations", _conversations_parser, _conversations),
}
