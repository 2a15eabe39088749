"""Running one turn into a view: the path shared by ``%%chat``, ``%chat retry`` and the panel.

The reply streams into the view, the view is left with one clean output (with the error under
it when the turn failed), and the session remembers the reply. A failure still raises, so a cell
fails (Run All stops) and the panel can say what went wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from tf_magics.engine import TurnObserver
from tf_magics.errors import APIError
from tf_magics.events import Notice

from .flags import CellRequest

if TYPE_CHECKING:
    from tf_magics.chat import Chat
    from tf_magics.reply import Reply
    from tf_magics.types import Usage

    from .outputs import Output
    from .session import NotebookSession

__all__ = ["ReplyView", "make_view", "run_turn"]


class ReplyView(TurnObserver, Protocol):
    """A :class:`~tf_magics.engine.TurnObserver` that ends with one final output."""

    def finish(
        self,
        reply: Reply | None,
        *,
        error: BaseException | None = None,
        conversation_usage: Usage | None = None,
    ) -> None:
        """Replace what streamed with the final output (the error below it, if any)."""


def make_view(
    chat: Chat,
    overrides: dict[str, Any],
    output: Output | None = None,
    *,
    structured: bool = False,
) -> ReplyView:
    """The view for a turn: live rich output in a kernel (or ``output``), text in a terminal.

    A ``structured`` reply (a schema was asked for) streams its JSON as code.
    """
    from .live_view import LiveView
    from .outputs import IPythonOutput, in_kernel
    from .structured_view import StructuredLiveView
    from .terminal_view import TerminalView

    options = chat.settings.resolve(**overrides)
    if output is None and not in_kernel():
        return TerminalView(max_tokens=options.max_tokens)
    view = StructuredLiveView if structured else LiveView
    return view(
        output if output is not None else IPythonOutput(),
        max_tokens=options.max_tokens,
        target=options.base_url or "",
        remote_images=chat.settings.remote_images,
    )


def run_turn(
    session: NotebookSession,
    chat: Chat,
    view: ReplyView,
    *,
    text: str | None,
    request: CellRequest | None = None,
    tools: list[Callable[..., Any]] | None = None,
    schema: Any = None,
    context: Any = None,
    after: Callable[[Reply], list[Notice]] | None = None,
) -> Reply:
    """Run one turn of ``chat`` into ``view`` and remember it (``session.last_reply``).

    Parameters
    ----------
    chat, view
        The conversation to continue, and where the reply streams.
    text
        The user message; ``None`` asks the last question again (a retry).
    request
        The cell's flags (setting overrides, one-off question, tool choice).
    tools, schema, context
        Extra functions offered, the structured answer's schema, values attached (as
        :meth:`~tf_magics.Chat.ask` takes them).
    after
        Given the reply before its final output; its notices go under it (``--code``).

    Raises
    ------
    Exception
        Whatever ended the turn, after the view shows what was kept.
    """
    request = request or CellRequest()
    try:
        if text is None:
            reply = chat.retry(observer=view, **request.overrides)
        else:
            reply = chat.ask(
                text,
                observer=view,
                history=not request.no_history,
                tools=tools,
                tool_choice=request.tool_choice,
                schema=schema,
                context=context,
                **request.overrides,
            )
    except Exception as error:
        failed = error.reply if isinstance(error, APIError) else None
        session.last_reply = failed or session.last_reply
        view.finish(failed, error=error, conversation_usage=chat.conversation.usage)
        raise
    for notice in after(reply) if after is not None else []:
        view.handle(notice)
    # A one-off question is not part of the conversation: no running total under it.
    usage = None if request.no_history else chat.conversation.usage
    view.finish(reply, conversation_usage=usage)
    session.last_reply = reply
    return reply
