"""The result of one turn: what the user asked for, as a Python value.

A turn may take several requests (tool rounds); :class:`Reply` gathers them: the final text, every
:class:`~tf_magics.Completion`, every tool result, usage summed across rounds, and timing.
``str(reply)`` is the answer text, and in a notebook the reply displays as rendered, sanitized
Markdown.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import reduce
from typing import TYPE_CHECKING, Any, Literal

from ._public import publish
from .cost import Price, cost_of
from .types import Completion, FinishKind, Replayed, ToolResult, Usage

if TYPE_CHECKING:
    from .attachment import Attachment

__all__ = ["Reply", "StopReason"]

#: Why a turn stopped before the model had finished: the tool-round limit was reached, the user
#: interrupted it, or an error ended it.
StopReason = Literal["round_limit", "interrupted", "error"]


@dataclass
class Reply:
    """Everything one ``%%chat`` cell or ``chat.ask`` call produced.

    Attributes
    ----------
    text
        The final answer (the content of the last completion).
    completions
        One entry per request made during the turn (several when tools were called).
    tool_results
        Every tool call's result, in call order.
    elapsed
        Seconds from sending the first request to the end of the last reply.
    time_to_first_token
        Seconds until the first token (or tool-call fragment) arrived.
    stopped
        Why the turn stopped early (a :data:`StopReason`), or ``None`` when it ran to its end.
    notes
        Things worth telling the user (a fallback, a trimmed history...).
    conversation
        The name of the conversation the turn belongs to.
    model_note
        A word about the model shown next to its name (the built-in demo model says so).
    requested_model
        The model the request named (the server may report another name).
    key_source
        Where the API key sent with the turn came from (``None``: no key was sent).
    price
        The price of the model the turn used (``None``: unknown, so the cost is unknown).
    currency
        The prices' currency, as shown.
    priced
        Whether costs matter here (prices or a money budget are set): an unknown cost is then
        said, not left out.
    conversation_cost
        What the whole conversation has cost so far (``None``: unknown).
    value
        With a schema (``chat.ask(..., schema=T)``): the answer as a validated Python object (an
        instance of ``T``; a ``dict`` for a JSON-schema dict). ``None`` without a schema.
    schema_name
        The name of the schema the answer was asked to fit, or ``None``.
    attachments
        The values attached to the question, as they were sent (secrets masked).
    """

    text: str = ""
    completions: list[Completion] = field(default_factory=list)
    tool_results: list[ToolResult] = field(default_factory=list)
    elapsed: float = 0.0
    time_to_first_token: float | None = None
    stopped: StopReason | None = None
    notes: list[str] = field(default_factory=list)
    conversation: str = "default"
    error: str | None = None
    model_note: str | None = None
    requested_model: str | None = None
    key_source: str | None = None
    price: Price | None = None
    currency: str = "$"
    priced: bool = False
    conversation_cost: float | None = None
    value: Any = None
    schema_name: str | None = None
    attachments: list[Attachment] = field(default_factory=list)

    def __str__(self) -> str:
        return self.text

    @property
    def reasoning(self) -> str:
        """Reasoning text of every round, joined."""
        return "\n\n".join(c.reasoning for c in self.completions if c.reasoning)

    @property
    def usage(self) -> Usage | None:
        """Usage summed over every request of the turn (``None`` if never reported)."""
        reported = [c.usage for c in self.completions if c.usage is not None]
        return reduce(Usage.__add__, reported) if reported else None

    @property
    def cost(self) -> float | None:
        """What the turn cost (every request, tool rounds included); ``None`` when unknown.

        Replayed requests cost nothing: a reply replayed whole costs ``0.0``.
        """
        live = [c.usage for c in self.completions if not c.replayed]
        if self.completions and not live:
            return 0.0
        if self.price is None or not live or any(u is None for u in live):
            return None
        return sum(cost_of(u, self.price) or 0.0 for u in live)

    @property
    def model(self) -> str | None:
        """The model the server says it used (last round)."""
        for completion in reversed(self.completions):
            if completion.model:
                return completion.model
        return None

    @property
    def replayed(self) -> Replayed | None:
        """Where the reply was recorded, when it was replayed (the last replayed request)."""
        for completion in reversed(self.completions):
            if completion.replayed is not None:
                return completion.replayed
        return None

    @property
    def replayed_requests(self) -> int:
        """How many of the turn's requests were answered from a recording."""
        return sum(completion.replayed is not None for completion in self.completions)

    @property
    def finish_reason(self) -> str | None:
        """The raw finish reason of the last round."""
        return self.completions[-1].finish_reason if self.completions else None

    @property
    def finish_kind(self) -> FinishKind | None:
        """The kind of ending of the last round (``finish_reason`` normalized)."""
        return self.completions[-1].finish_kind if self.completions else None

    @property
    def finish(self) -> FinishKind | None:
        """Deprecated name of :attr:`finish_kind`."""
        warnings.warn(
            "Reply.finish is deprecated: use Reply.finish_kind (normalized) or "
            "Reply.finish_reason (as the server sent it).",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.finish_kind

    @property
    def partial(self) -> bool:
        """True when the reply was cut off, interrupted or failed."""
        return self.stopped in ("interrupted", "error") or any(c.partial for c in self.completions)

    @property
    def tokens_per_second(self) -> float | None:
        """Output tokens per second of generation (after the first token), when known."""
        usage = self.usage
        if usage is None or not usage.completion_tokens or self.time_to_first_token is None:
            return None
        generating = self.elapsed - self.time_to_first_token
        return usage.completion_tokens / generating if generating > 0.05 else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible summary (text, usage, timing, tool results)."""
        usage = self.usage
        return {
            "text": self.text,
            "reasoning": self.reasoning or None,
            "model": self.model,
            "finish_reason": self.finish_reason,
            "usage": usage.to_dict() if usage else None,
            "cost": self.cost,
            "elapsed": self.elapsed,
            "time_to_first_token": self.time_to_first_token,
            "tool_results": [
                {
                    "name": r.call.name,
                    "arguments": r.call.arguments,
                    "status": r.status,
                    "content": r.content,
                }
                for r in self.tool_results
            ],
            "stopped": self.stopped,
            "notes": list(self.notes),
            "replayed": self.replayed_requests or None,
            "attachments": [attachment.summary() for attachment in self.attachments],
        }

    def _repr_markdown_(self) -> str:
        from .render import markdown_images_as_links

        return markdown_images_as_links(self.text)

    def _repr_html_(self) -> str:
        from .render.markdown import render_markdown

        return f'<div class="tf-magics-reply">{render_markdown(self.text)}</div>'


publish(globals(), __all__)
