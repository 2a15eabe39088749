"""Fold chat-completion chunks (or one non-streamed response) into a :class:`Completion`.

Pure and synchronous: the client feeds decoded JSON chunks in, gets typed delta events out, and asks
for the assembled :class:`Completion` at the end, or at any moment (a partial one) when the stream
breaks or is interrupted. Every rule here answers an item of the project's WIRE notes: missing key =
null = nothing, choices keyed by ``index``, deltas applied before the finish reason, the last
non-null usage kept, reasoning kept apart from the answer (three spellings), and tool-call
fragments merged robustly whatever the server repeats or omits.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tf_magics._text import SurrogateJoiner, clean_text
from tf_magics.events import ContentDelta, Event, ReasoningDelta, ToolCallDelta
from tf_magics.types import Completion, Ending, ToolCall, Usage

from .think_tags import ThinkTagSplitter

__all__ = ["ChunkAccumulator", "completion_from_response"]


@dataclass
class _ToolCallSlot:
    """A tool call being assembled."""

    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class ChunkAccumulator:
    """Assemble one assistant message from streamed chunks.

    Call :meth:`feed` with each decoded chunk; it returns the delta events to show. At any time
    :meth:`completion` returns what has been assembled so far.
    """

    def __init__(self) -> None:
        self._think = ThinkTagSplitter()
        # Text that cannot be encoded (half a surrogate pair) is repaired as it arrives.
        self._content_text = SurrogateJoiner()
        self._reasoning_text = SurrogateJoiner()
        self._reasoning_field: list[str] = []
        self._slots: dict[int, _ToolCallSlot] = {}
        self._order: list[int] = []
        # The server's tool-call index -> the slot of the latest call it opened under it.
        self._by_index: dict[int, int] = {}
        # Slot -> the server's index it was opened under.
        self._index_of: dict[int, int] = {}
        self._legacy = _ToolCallSlot()
        self.finish_reason: str | None = None
        self.model: str | None = None
        self.id: str | None = None
        self.usage: Usage | None = None
        self.refusal: str | None = None
        self.chunks = 0
        self.error: dict[str, Any] | None = None

    # -- feeding --

    def feed(self, chunk: Any) -> list[Event]:
        """Apply one chunk. A chunk carrying an ``error`` object sets :attr:`error`."""
        if not isinstance(chunk, dict):
            return []
        text = _plain_content(chunk)
        if text is not None:
            # Most chunks of a reply carry one piece of text and nothing else.
            self.chunks += 1
            if not self.model or not self.id:
                self._take_identity(chunk)
            answer, thought = self._think.feed(self._content_text.feed(text))
            released: list[Event] = [ReasoningDelta(thought)] if thought else []
            if answer:
                released.append(ContentDelta(answer))
            return released
        self.chunks += 1
        if chunk.get("error") not in (None, "", {}):
            error = chunk["error"]
            self.error = error if isinstance(error, dict) else {"message": str(error)}
        self._take_identity(chunk)
        self._take_usage(chunk)
        events: list[Event] = []
        choices = chunk.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if isinstance(choice, dict) and _choice_index(choice) == 0:
                    self._apply_choice(choice, events)
        return events

    def feed_many(self, chunks: Iterable[Any]) -> list[Event]:
        """Apply chunks in order, as :meth:`feed` would one by one.

        The text of consecutive plain chunks comes out as one delta (the reply is the same however
        its text is cut). Stops after a chunk that reports an error, as a caller of :meth:`feed`
        would. ``chunks`` is read one at a time, and no chunk is kept once applied.
        """
        events: list[Event] = []
        texts: list[str] = []
        for chunk in chunks:
            text = _plain_content(chunk) if type(chunk) is dict else None
            if text is not None:
                if not self.model or not self.id:
                    self._take_identity(chunk)
                texts.append(text)
                continue
            if texts:
                self._feed_texts(texts, events)
                texts = []
            events += self.feed(chunk)
            if self.error is not None or self.finish_reason == "error":
                return events
        if texts:
            self._feed_texts(texts, events)
        return events

    def _feed_texts(self, texts: list[str], events: list[Event]) -> None:
        self.chunks += len(texts)
        answer, thought = self._think.feed(self._content_text.feed("".join(texts)))
        if thought:
            events.append(ReasoningDelta(thought))
        if answer:
            events.append(ContentDelta(answer))

    def _take_identity(self, chunk: dict[str, Any]) -> None:
        model, chunk_id = chunk.get("model"), chunk.get("id")
        if not self.model and isinstance(model, str) and model:
            self.model = model
        if not self.id and isinstance(chunk_id, str) and chunk_id:
            self.id = chunk_id

    def _take_usage(self, chunk: dict[str, Any]) -> None:
        # A trailing ``usage: null`` must not erase a usage reported earlier.
        groq = chunk.get("x_groq")
        for source in (chunk.get("usage"), groq.get("usage") if isinstance(groq, dict) else None):
            usage = Usage.from_wire(source)
            if usage is not None:
                self.usage = usage

    def _apply_choice(self, choice: dict[str, Any], events: list[Event]) -> None:
        delta: Any = choice.get("delta")
        whole = not isinstance(delta, dict)
        if whole:
            # A non-streamed response (or a server that puts ``message`` in its chunks).
            message = choice.get("message")
            delta = message if isinstance(message, dict) else {}
        self._apply_delta(delta, events, whole=whole)
        self._take_usage(choice)
        reason = choice.get("finish_reason")
        if isinstance(reason, str) and reason:
            self.finish_reason = reason

    def _apply_delta(self, delta: dict[str, Any], events: list[Event], *, whole: bool) -> None:
        # Servers moving from one spelling to the other send both with the same text (vLLM):
        # the first one present wins, so nothing is shown twice.
        for key in ("reasoning_content", "reasoning"):
            piece = delta.get(key)
            if isinstance(piece, str) and piece:
                piece = self._reasoning_text.feed(piece)
                self._reasoning_field.append(piece)
                if piece:
                    events.append(ReasoningDelta(piece))
                break
        content = delta.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if isinstance(content, str) and content:
            answer, thought = self._think.feed(self._content_text.feed(content))
            if thought:
                events.append(ReasoningDelta(thought))
            if answer:
                events.append(ContentDelta(answer))
        refusal = delta.get("refusal")
        if isinstance(refusal, str) and refusal:
            self.refusal = (self.refusal or "") + refusal
        calls = delta.get("tool_calls")
        if isinstance(calls, dict):
            calls = [calls]
        if isinstance(calls, list):
            for call in calls:
                if isinstance(call, dict):
                    if whole:
                        # Whole calls in a list: each entry is a call of its own.
                        call = {**call, "index": len(self._order)}
                    self._apply_tool_delta(call, events)
        legacy = delta.get("function_call")
        if isinstance(legacy, dict):
            self._merge(self._legacy, None, legacy.get("name"), legacy.get("arguments"))

    def _apply_tool_delta(self, call: dict[str, Any], events: list[Event]) -> None:
        raw_function = call.get("function")
        function: dict[str, Any] = raw_function if isinstance(raw_function, dict) else {}
        raw_name = function.get("name")
        name = raw_name if isinstance(raw_name, str) and raw_name else None
        raw_id = call.get("id")
        call_id = raw_id if isinstance(raw_id, str) and raw_id else None
        arguments = function.get("arguments")
        key = self._slot_for(call.get("index"), call_id, name, arguments)
        slot = self._slots[key]
        fragment = self._merge(slot, call_id, name, arguments)
        events.append(
            ToolCallDelta(index=key, id=slot.id or None, name=slot.name, arguments=fragment)
        )

    def _slot_for(self, index: Any, call_id: str | None, name: str | None, arguments: Any) -> int:
        """The slot a tool-call fragment belongs to, opening a new one when it starts a call.

        Calls are told apart by their index first: two calls at different indexes are two calls
        even when a server gives both the same id. An id finds its call among those opened under
        the same index (several calls streamed under one index, each with its own id).
        """
        indexed = isinstance(index, int) and not isinstance(index, bool)
        if call_id is not None:
            for known, slot in self._slots.items():
                if slot.id == call_id and (not indexed or self._index_of.get(known) == index):
                    return known
        if indexed:
            held = self._by_index.get(index)
            if held is None and not name and self._order:
                # A fragment with a new index but no name cannot start a call (LM Studio sends a
                # fresh id on every fragment): it continues the last one.
                return self._order[-1]
            if held is not None and not _starts_call(self._slots[held], call_id, name, arguments):
                return held
            opened = self._new_slot()
            self._by_index[index] = opened
            self._index_of[opened] = index
            return opened
        # No index (Gemini, old Ollama): a fragment continues the last call unless it starts one.
        if self._order:
            last_key = self._order[-1]
            last = self._slots[last_key]
            renamed = name is not None and bool(last.name) and name != last.name
            if not (renamed or _starts_call(last, call_id, name, arguments)):
                return last_key
        return self._new_slot()

    def _new_slot(self) -> int:
        key = len(self._order)
        self._slots[key] = _ToolCallSlot()
        self._order.append(key)
        return key

    @staticmethod
    def _merge(slot: _ToolCallSlot, call_id: str | None, name: Any, arguments: Any) -> str:
        if call_id and not slot.id:
            slot.id = call_id
        if isinstance(name, str) and name and name != slot.name:
            # Servers that repeat the name send it whole; only a genuinely new piece is appended.
            slot.name = name if not slot.name else slot.name + name
        if isinstance(arguments, (dict, list)):
            # Old TGI sends arguments as an object: the whole value at once.
            text = json.dumps(arguments)
            slot.arguments = [text]
            return text
        if isinstance(arguments, str) and arguments:
            slot.arguments.append(arguments)
            return arguments
        return ""

    # -- results --

    @property
    def content(self) -> str:
        """Answer text released so far."""
        return self._think.content

    @property
    def has_output(self) -> bool:
        """True once any content, reasoning or tool call has arrived."""
        return bool(self.content or self.reasoning or self._order or self._legacy.name)

    @property
    def reasoning(self) -> str:
        """Reasoning released so far (from reasoning fields and inline think tags)."""
        return "".join(self._reasoning_field) + self._think.reasoning

    def tool_calls(self) -> list[ToolCall]:
        """The tool calls assembled so far, in the order they started."""
        calls = []
        used: set[str] = set()
        for slot in (self._slots[i] for i in self._order):
            if not (slot.name or slot.arguments):
                continue
            call_id = _unique(slot.id or _make_call_id(), used)
            used.add(call_id)
            calls.append(
                ToolCall(id=call_id, name=slot.name, arguments=clean_text("".join(slot.arguments)))
            )
        if not calls and self._legacy.name:
            calls.append(
                ToolCall(
                    id=_make_call_id(),
                    name=self._legacy.name.rstrip(":"),
                    arguments="".join(self._legacy.arguments),
                )
            )
        return calls

    def completion(self, ended: Ending) -> Completion:
        """What has been assembled, ending as ``ended`` (see :class:`Completion`)."""
        self._think.feed(self._content_text.flush())
        self._reasoning_field.append(self._reasoning_text.flush())
        self._think.flush()
        return Completion(
            content=self.content,
            reasoning=self.reasoning,
            tool_calls=self.tool_calls(),
            finish_reason=self.finish_reason,
            model=self.model,
            id=self.id,
            usage=self.usage,
            ended=ended,
            refusal=self.refusal,
        )


def _starts_call(
    slot: _ToolCallSlot, call_id: str | None, name: str | None, arguments: Any
) -> bool:
    """Tell whether a named fragment aimed at ``slot`` starts another call.

    A fragment without a name never starts a call. One with a new id does (Ollama and LiteLLM
    stream every parallel call under index 0, each with its own id). Without telling ids, a name
    arriving after the slot's arguments already form complete JSON starts another call if it is
    another name, or the same name with arguments that open a new object (servers that resend
    the name on every delta may add an empty or blank fragment at the end).
    """
    if name is None:
        return False
    if call_id is not None and slot.id and call_id != slot.id:
        return True
    if call_id is not None and call_id == slot.id:
        return False
    if not slot.name or not _is_complete_json("".join(slot.arguments)):
        return False
    if name != slot.name:
        return True
    return isinstance(arguments, dict) or (
        isinstance(arguments, str) and arguments.lstrip().startswith("{")
    )


def _is_complete_json(text: str) -> bool:
    if not text.strip():
        return False
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


_PLAIN_DELTA_KEYS = frozenset(("content", "role"))


def _plain_content(chunk: dict[str, Any]) -> str | None:
    """The text of a chunk that carries nothing else of interest, or ``None``."""
    if chunk.get("usage") is not None or "error" in chunk or "x_groq" in chunk:
        return None
    choices = chunk.get("choices")
    if type(choices) is not list or len(choices) != 1:
        return None
    choice = choices[0]
    if (
        type(choice) is not dict
        or choice.get("finish_reason") is not None
        or choice.get("index", 0) != 0
        or choice.get("usage") is not None
    ):
        return None
    delta = choice.get("delta")
    if type(delta) is not dict or not delta.keys() <= _PLAIN_DELTA_KEYS:
        return None
    content = delta.get("content")
    return content if type(content) is str and content else None


def _choice_index(choice: dict[str, Any]) -> int:
    index = choice.get("index", 0)
    return index if isinstance(index, int) and not isinstance(index, bool) else 0


def _unique(call_id: str, used: set[str]) -> str:
    """``call_id``, or ``call_id-2``, ``-3``... when a server gave two calls the same id.

    Each call is answered by its id, so two calls must never share one.
    """
    if call_id not in used:
        return call_id
    number = 2
    while f"{call_id}-{number}" in used:
        number += 1
    return f"{call_id}-{number}"


def _make_call_id() -> str:
    # Servers that omit ids still need one per call: each tool message refers to its call by id.
    return f"call_{uuid.uuid4().hex[:24]}"


def completion_from_response(body: Any) -> tuple[Completion, dict[str, Any] | None]:
    """Read a non-streamed ``chat.completion`` body.

    Returns the completion and the body's ``error`` object, if it carried one.
    """
    accumulator = ChunkAccumulator()
    accumulator.feed(body)
    return accumulator.completion(ended="complete"), accumulator.error
