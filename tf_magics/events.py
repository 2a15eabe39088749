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
    "BatchProgress",
    "CompletionDone",
    "ContentDelta",
    "ContextAttached",
    "Event",
    "MapProgress",
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
class BatchProgress:
    """How a batch job is going at the provider (sent after each check, and once at the end).

    Attributes
    ----------
    job
        The job's id (what ``%chat batch status`` takes).
    statuses
        Each of the job's batches' status (``"validating"``, ``"in_progress"``,
        ``"finalizing"``, ``"completed"``, ``"failed"``, ``"expired"``, ``"cancelling"``,
        ``"cancelled"``).
    total, completed, failed
        Requests in the job, answered, and failed, as the provider counts them.
    elapsed
        Seconds since the job was submitted.
    final
        Every batch has finished.
    """

    job: str
    statuses: tuple[str, ...]
    total: int
    completed: int
    failed: int
    elapsed: float
    final: bool = False

    @property
    def finished(self) -> int:
        """Requests answered or failed."""
        return self.completed + self.failed

    @property
    def status(self) -> str:
        """One word for the whole job: the least advanced of its batches' statuses."""
        order = ("validating", "in_progress", "finalizing", "cancelling")
        for status in order:
            if status in self.statuses:
                return status
        return self.statuses[0] if len(set(self.statuses)) == 1 else "finished"


@dataclass(frozen=True, slots=True)
class MapProgress:
    """How a map over rows is going (sent a few times a second, and once more at the end).

    Attributes
    ----------
    total
        Rows to do (duplicates included: a prompt seen twice is sent once, and both rows count).
    done, failed
        Rows finished with a result, and rows that failed for good (their error recorded).
    prompt_tokens, completion_tokens
        Tokens reported by the server so far (requests that failed included when reported).
    elapsed
        Seconds since the first request.
    in_flight, window, concurrency
        Requests on the wire now; how many are allowed at the moment (lowered while the
        server answers 429); and how many were asked for.
    rate_limited
        Answers "429 Too Many Requests" received so far (each was retried).
    cost, currency
        What the tokens so far cost (``None``: no price known), and the prices' currency.
    final
        The last report of the run.
    """

    total: int
    done: int
    failed: int
    prompt_tokens: int
    completion_tokens: int
    elapsed: float
    in_flight: int
    window: int
    concurrency: int
    rate_limited: int = 0
    cost: float | None = None
    currency: str = "$"
    final: bool = False

    @property
    def finished(self) -> int:
        """Rows done or failed."""
        return self.done + self.failed

    @property
    def tokens(self) -> int:
        """Prompt and completion tokens together."""
        return self.prompt_tokens + self.completion_tokens

    @property
    def rows_per_second(self) -> float | None:
        """Rows finished per second so far (``None`` before the first second's worth)."""
        return self.finished / self.elapsed if self.elapsed > 0 and self.finished else None

    @property
    def eta(self) -> float | None:
        """Seconds left at the current pace (``None`` while unknown)."""
        rate = self.rows_per_second
        return (self.total - self.finished) / rate if rate else None


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
    | BatchProgress
    | MapProgress
    | VariantEvent
)


publish(globals(), __all__)
