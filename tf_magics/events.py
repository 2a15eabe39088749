"""What a turn reports as it goes: typed events, pure values.

A streaming turn emits these in order (the live view and the terminal view consume them; a script
can pass ``on_event=`` to :meth:`tf_magics.Chat.ask` to see them). :data:`Event` is their union.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ._public import publish
from .types import Completion, ToolCall, ToolResult

if TYPE_CHECKING:
    from .attachment import Attachment

__all__ = [
    "CompletionDone",
    "ContentDelta",
    "ContextAttached",
    "Event",
    "Notice",
    "ReasoningDelta",
    "RequestStarted",
    "Retrying",
    "StreamFallback",
    "ToolCallDelta",
    "ToolCallFinished",
    "ToolCallStarted",
    "VariantEvent",
]


@dataclass(frozen=True, slots=True)
class RequestStarted:
    """A request is on its way (``round`` counts tool rounds from 1)."""

    round: int
    model: str | None
    stream: bool


@dataclass(frozen=True, slots=True)
class Retrying:
    """The request failed in a way worth retrying; waiting ``delay`` seconds first."""

    attempt: int
    max_attempts: int
    delay: float
    reason: str


@dataclass(frozen=True, slots=True)
class StreamFallback:
    """The server could not stream this request; it is being sent again without streaming."""

    reason: str


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the user should know about this turn (shown, never sent to the model).

    ``"progress"`` notices are transient (a status line while waiting); the others stay under
    the reply.
    """

    text: str
    kind: Literal["info", "warning", "progress"] = "info"


@dataclass(frozen=True, slots=True)
class ContextAttached:
    """Notebook values were attached to the question, as they are sent (secrets masked)."""

    attachments: tuple[Attachment, ...]


@dataclass(frozen=True, slots=True)
class ContentDelta:
    """A piece of the answer text."""

    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """A piece of the model's reasoning ("thinking") text."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A tool call is being streamed (``arguments`` is the fragment just received)."""

    index: int
    id: str | None
    name: str | None
    arguments: str


@dataclass(frozen=True, slots=True)
class CompletionDone:
    """One response (round) finished."""

    completion: Completion


@dataclass(frozen=True, slots=True)
class ToolCallStarted:
    """A tool is about to run."""

    call: ToolCall
    arguments: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class ToolCallFinished:
    """A tool ran (or was refused, declined or skipped)."""

    result: ToolResult


@dataclass(frozen=True, slots=True)
class VariantEvent:
    """An event of one variant of a comparison (``variant`` counts from 0)."""

    variant: int
    event: Event


Event = (
    RequestStarted
    | Notice
    | ContextAttached
    | Retrying
    | StreamFallback
    | ContentDelta
    | ReasoningDelta
    | ToolCallDelta
    | CompletionDone
    | ToolCallStarted
    | ToolCallFinished
    | VariantEvent
)


publish(globals(), __all__)
