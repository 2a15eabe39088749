"""The message list of one conversation and the rules that keep it sendable.

The model has no memory: every request re-sends the whole history, so the history must always be
something a server accepts. :class:`Conversation` guarantees that:

- the system message, when there is one, is at index 0 (set, change or remove it at any time);
- every assistant message with tool calls is followed by one tool message per call, even after an
  error or an interrupt (:meth:`Conversation.answer_pending_tool_calls`);
- ``content`` is ``""`` rather than ``null`` next to tool calls (a real server rejects ``null``);
- a partial reply from an interrupted or failed stream is kept and marked, not thrown away;
- trimming drops whole oldest turns, never the system message, never a tool call without its
  results, and reports what it dropped.

Token counts use the server's reported usage when known and a cheap estimate (4 characters per
token) otherwise.
"""

from __future__ import annotations

import contextlib
import copy
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

from . import conversation_file
from ._public import public
from ._text import clean_text
from ._tokens import part_tokens
from .errors import TurnInProgressError
from .types import Completion, Message, ToolResult, Usage

__all__ = ["Conversation", "TrimReport", "Turn", "estimate_tokens"]

_NOT_RUN = "Not run: the turn stopped before this tool call."


def estimate_tokens(message: Message) -> int:
    """A cheap token estimate for one message (about 4 characters per token, plus framing).

    Attachments count too: their text like the message's, an image by its size.
    """
    chars = len(message.content)
    for call in message.tool_calls:
        chars += len(call.name) + len(call.arguments) + 10
    return 4 + (chars + 3) // 4 + sum(part_tokens(part) for part in message.parts)


@dataclass
class Turn:
    """One user message and everything that answered it (assistant and tool messages)."""

    user: Message | None
    replies: list[Message] = field(default_factory=list)

    @property
    def messages(self) -> list[Message]:
        """The user message (if any) followed by the replies."""
        return ([self.user] if self.user is not None else []) + self.replies

    @property
    def cost(self) -> float | None:
        """What the turn's requests cost (``None``: unknown)."""
        return _total_cost(self.replies)

    @property
    def usage(self) -> Usage | None:
        """Usage summed over the turn's requests (tool rounds included); None if unreported."""
        reported = [m.usage for m in self.replies if m.usage is not None]
        return reduce(Usage.__add__, reported) if reported else None

    @property
    def reply(self) -> Message | None:
        """The last assistant message of the turn."""
        assistants = [m for m in self.replies if m.role == "assistant"]
        return assistants[-1] if assistants else None


@dataclass(frozen=True)
class TrimReport:
    """What :meth:`Conversation.trim` removed."""

    dropped_turns: int = 0
    dropped_messages: int = 0
    tokens_before: int = 0
    tokens_after: int = 0
    reason: str = ""

    def __bool__(self) -> bool:
        return self.dropped_turns > 0

    def __str__(self) -> str:
        if not self:
            return "Nothing was trimmed."
        turns = "turn" if self.dropped_turns == 1 else f"{self.dropped_turns} turns"
        return (
            f"Dropped the oldest {turns} ({self.dropped_messages} messages, "
            f"~{self.tokens_before - self.tokens_after:,} tokens){self.reason}; "
            f"the history is now ~{self.tokens_after:,} tokens."
        )


@public
class Conversation(conversation_file.SavedForm):
    """An ordered chat history with a system prompt at index 0.

    Parameters
    ----------
    system
        The system prompt (``None`` for none).
    name
        A label, used by the magic to keep several conversations per notebook.
    messages
        Messages to start from (a system message among them becomes the system prompt).
    """

    def __init__(
        self,
        system: str | None = None,
        *,
        name: str = "default",
        messages: list[Message] | None = None,
    ) -> None:
        self.name = name
        self._system: Message | None = None
        self._messages: list[Message] = []
        self._turn_lock = threading.Lock()
        for message in messages or []:
            if message.role == "system":
                self._system = copy.copy(message)
            else:
                self._messages.append(copy.copy(message))
        if system is not None:
            self.system = system

    # -- reading --

    @property
    def system(self) -> str | None:
        """The system prompt; assign a string to set or change it, ``None`` or ``""`` to remove."""
        return self._system.content if self._system is not None else None

    @system.setter
    def system(self, text: str | None) -> None:
        if text is None or not text.strip():
            self._system = None
        elif self._system is None:
            self._system = Message(role="system", content=clean_text(text))
        else:
            self._system.content = clean_text(text)

    @property
    def messages(self) -> list[Message]:
        """All messages, system first (a copy of the list; the messages themselves are live)."""
        return ([self._system] if self._system is not None else []) + self._messages

    def __len__(self) -> int:
        return len(self.messages)

    def __iter__(self) -> Iterator[Message]:
        return iter(self.messages)

    def __getitem__(self, index: int) -> Message:
        return self.messages[index]

    def __repr__(self) -> str:
        system = "with" if self._system else "without"
        return (
            f"<Conversation {self.name!r}: {len(self.turns())} turns, "
            f"{len(self._messages)} messages, {system} system prompt>"
        )

    def turns(self) -> list[Turn]:
        """The history grouped into turns (messages before the first user message form one)."""
        turns: list[Turn] = []
        for message in self._messages:
            if message.role == "user" or not turns:
                turns.append(Turn(user=message if message.role == "user" else None))
                if message.role == "user":
                    continue
            turns[-1].replies.append(message)
        return turns

    @property
    def last_reply(self) -> Message | None:
        """The most recent assistant message."""
        for message in reversed(self._messages):
            if message.role == "assistant":
                return message
        return None

    @property
    def usage(self) -> Usage:
        """Cumulative usage reported by the server over the whole conversation."""
        return reduce(
            Usage.__add__, (m.usage for m in self._messages if m.usage is not None), Usage()
        )

    @property
    def cost(self) -> float | None:
        """What the conversation's requests cost (``None``: a reported usage has no price)."""
        return _total_cost(self._messages)

    def usage_by_turn(self) -> list[Usage | None]:
        """Usage per turn (``None`` for turns whose usage was not reported)."""
        return [turn.usage for turn in self.turns()]

    def estimate_tokens(self) -> int:
        """The size of the history as the next request would send it.

        The last reported prompt + completion tokens cover everything up to that reply exactly;
        messages after it are estimated.
        """
        messages = self.messages
        for position in range(len(messages) - 1, -1, -1):
            usage = messages[position].usage
            if usage is not None and usage.prompt_tokens is not None:
                known = usage.prompt_tokens + (
                    usage.completion_tokens or estimate_tokens(messages[position])
                )
                return known + sum(estimate_tokens(m) for m in messages[position + 1 :])
        return sum(estimate_tokens(m) for m in messages)

    # -- changing --

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the conversation for one turn; a second turn meanwhile is refused.

        Raises
        ------
        TurnInProgressError
            When a turn is already running on this conversation.
        """
        if not self._turn_lock.acquire(blocking=False):
            raise TurnInProgressError(
                f"Conversation {self.name!r} is already waiting for a reply.",
                hint="Await the first turn before sending another, or use chat.fork() to talk "
                "in parallel.",
            )
        try:
            yield
        finally:
            self._turn_lock.release()

    def add_user(self, text: str, parts: list[dict[str, Any]] | None = None) -> Message:
        """Append a user message (pending tool calls are answered as skipped first).

        ``parts`` are content parts sent before the text (attachments, images).
        """
        self.answer_pending_tool_calls()
        message = Message(role="user", content=text, parts=list(parts or []))
        self._messages.append(message)
        return message

    def add_assistant(
        self, completion: Completion, *, note: str | None = None, cost: float | None = None
    ) -> Message:
        """Append the assistant message for a completion, exactly as it must be re-sent.

        A partial completion keeps its text but not its tool calls: calls cut off mid-stream
        were never complete (their arguments may be truncated) and never ran. ``cost`` is what
        its request cost, when known.
        """
        partial = completion.partial
        message = Message(
            role="assistant",
            content=completion.content,
            tool_calls=[] if partial else list(completion.tool_calls),
            reasoning=completion.reasoning,
            usage=completion.usage,
            model=completion.model,
            finish_reason=completion.finish_reason,
            partial=partial,
            note=note,
            cost=cost,
        )
        self._messages.append(message)
        return message

    def extend(self, messages: list[Message]) -> None:
        """Append messages as they are (for example a turn put back after a failed retry)."""
        for message in messages:
            if message.role == "system":
                raise ValueError("the system message lives at index 0: set .system instead")
        self._messages.extend(messages)

    def add_tool_result(self, result: ToolResult) -> Message:
        """Append the tool message that answers one call."""
        message = Message(
            role="tool",
            content=result.content,
            tool_call_id=result.call.id,
            name=result.call.name,
            is_error=result.is_error,
            note=result.note,
        )
        self._messages.append(message)
        return message

    def pending_tool_calls(self) -> list[Any]:
        """Tool calls of the last assistant message that have no result yet."""
        for position in range(len(self._messages) - 1, -1, -1):
            message = self._messages[position]
            if message.role == "assistant":
                answered = {
                    m.tool_call_id for m in self._messages[position + 1 :] if m.role == "tool"
                }
                return [call for call in message.tool_calls if call.id not in answered]
            if message.role == "user":
                return []
        return []

    def answer_pending_tool_calls(self, content: str | None = None) -> list[Message]:
        """Give every unanswered tool call a result, so the history stays sendable."""
        added = []
        for call in self.pending_tool_calls():
            added.append(
                self.add_tool_result(
                    ToolResult(call=call, content=content or _NOT_RUN, status="skipped")
                )
            )
        return added

    def remove(self, messages: Iterable[Message]) -> None:
        """Remove these messages (the very objects, not equal ones).

        The caller keeps the history sendable: a structured turn removes an answer it asked
        again together with the request that followed it.
        """
        drop = {id(message) for message in messages}
        if drop:
            self._messages = [m for m in self._messages if id(m) not in drop]

    def undo(self) -> Turn | None:
        """Remove the last turn (the last user message and everything after it)."""
        turns = self.turns()
        if not turns:
            return None
        last = turns[-1]
        del self._messages[len(self._messages) - len(last.messages) :]
        return last

    def clear(self, *, keep_system: bool = True) -> None:
        """Forget every message (and the system prompt unless ``keep_system``)."""
        self._messages.clear()
        if not keep_system:
            self._system = None

    def fork(self, name: str | None = None) -> Conversation:
        """An independent copy, to explore another direction from here."""
        return Conversation(name=name or f"{self.name}-fork", messages=copy.deepcopy(self.messages))

    def trim(
        self,
        *,
        max_tokens: int | None = None,
        max_turns: int | None = None,
        keep_last: int = 1,
    ) -> TrimReport:
        """Drop the oldest whole turns until the history fits.

        Parameters
        ----------
        max_tokens
            Keep the history (system prompt included) at or under this many tokens.
        max_turns
            Keep at most this many turns.
        keep_last
            Never drop the newest turns (default: the one about to be sent).

        Returns
        -------
        TrimReport
            What was dropped; falsy when nothing was.
        """
        report = _plan_trim(
            self.turns(), self.messages, self.estimate_tokens(), max_tokens, max_turns, keep_last
        )
        del self._messages[: report.dropped_messages]
        return report

    # -- sending --

    def to_wire(self) -> list[dict[str, Any]]:
        """The messages as the next request must send them.

        Unanswered tool calls get a "not run" result in what is sent (the conversation itself is
        not changed), so a request can never be rejected for a dangling call.
        """
        return _wire(self.messages)


def _total_cost(messages: list[Message]) -> float | None:
    """The sum of the messages' costs; unknown (``None``) as soon as one is unknown."""
    costs = [m.cost for m in messages if m.role == "assistant" and m.usage is not None]
    if not costs or any(cost is None for cost in costs):
        return None
    return sum(cost for cost in costs if cost is not None)


def _plan_trim(
    turns: list[Turn],
    messages: list[Message],
    before: int,
    max_tokens: int | None,
    max_turns: int | None,
    keep_last: int,
) -> TrimReport:
    """What trimming to these limits drops (the oldest whole turns), as a report."""
    # Reported usage makes the estimate exact: scale every message's estimate to match it.
    scale = before / max(1, sum(estimate_tokens(m) for m in messages))
    sizes = [sum(estimate_tokens(m) for m in t.messages) * scale for t in turns]
    drop = _turns_to_drop(sizes, before, max_tokens, max_turns, keep_last)
    if drop == 0:
        return TrimReport(tokens_before=before, tokens_after=before)
    dropped = [m for t in turns[:drop] for m in t.messages]
    after = sum(estimate_tokens(m) for m in messages) - sum(estimate_tokens(m) for m in dropped)
    return TrimReport(
        dropped_turns=drop,
        dropped_messages=len(dropped),
        tokens_before=before,
        tokens_after=min(before, round(after * scale)),
        reason=_trim_reason(max_tokens, max_turns),
    )


def _turns_to_drop(
    sizes: list[float],
    total: float,
    max_tokens: int | None,
    max_turns: int | None,
    keep_last: int,
) -> int:
    """How many of the oldest turns (of these sizes) must go to fit the limits."""
    drop = 0
    droppable = max(0, len(sizes) - max(keep_last, 0))
    while drop < droppable and (
        (max_turns is not None and len(sizes) - drop > max_turns)
        or (max_tokens is not None and total > max_tokens)
    ):
        total -= sizes[drop]
        drop += 1
    return drop


def _trim_reason(max_tokens: int | None, max_turns: int | None) -> str:
    reason = []
    if max_turns is not None:
        reason.append(f"max {max_turns} turns")
    if max_tokens is not None:
        reason.append(f"max ~{max_tokens:,} tokens")
    return f" to stay within {' and '.join(reason)}" if reason else ""


def _wire(messages: list[Message]) -> list[dict[str, Any]]:
    """The messages as sent, each unanswered tool call given a "not run" result."""
    wire: list[dict[str, Any]] = []
    pending: dict[str, Any] = {}
    for message in [*messages, None]:
        if message is None or message.role != "tool":
            # Results must directly follow their call's message: close the gap here.
            wire.extend(
                {"role": "tool", "tool_call_id": call_id, "content": _NOT_RUN}
                for call_id in pending
            )
            pending = {}
        if message is None:
            break
        if message.role == "tool":
            pending.pop(message.tool_call_id or "", None)
        wire.append(message.to_wire())
        if message.role == "assistant":
            pending = {call.id: call for call in message.tool_calls}
    return wire
