"""Typed values that cross the boundaries between layers (pure data, no I/O).

A :class:`Completion` is one assistant message as the server sent it, a :class:`Message` is one
entry of a conversation, a :class:`ToolCall` / :class:`ToolResult` pair is one function call and
what it produced, and :class:`Usage` counts tokens. What a turn reports while it runs lives in
:mod:`tf_magics.events`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ._public import publish

__all__ = [
    "Completion",
    "Ending",
    "FinishKind",
    "Message",
    "Role",
    "ToolCall",
    "ToolResult",
    "ToolStatus",
    "Usage",
    "normalize_finish_reason",
]

Role = Literal["system", "user", "assistant", "tool"]

#: The few kinds of ending behind the many spellings of ``finish_reason`` (``None``: not said).
FinishKind = Literal["stop", "length", "tool_calls", "content_filter", "error", "other"]

#: How a response ended on the wire: ``"done"`` (``[DONE]``), ``"finished"`` (a finish reason but
#: no ``[DONE]``), ``"complete"`` (a non-streaming response), ``"incomplete"`` (cut off),
#: ``"interrupted"`` (stopped by the user) or ``"error"``.
Ending = Literal["done", "finished", "complete", "incomplete", "interrupted", "error"]

#: What became of a tool call: it ran (``"ok"``), failed or could not run (``"error"``), the user
#: said no (``"declined"``), or the turn stopped before it ran (``"skipped"``).
ToolStatus = Literal["ok", "error", "declined", "skipped"]

_FINISH_ALIASES: dict[str, FinishKind] = {
    "stop": "stop",
    "eos": "stop",
    "eos_token": "stop",
    "stop_sequence": "stop",
    "end_turn": "stop",
    "length": "length",
    "max_tokens": "length",
    "model_length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "tool_use": "tool_calls",
    "content_filter": "content_filter",
    "error": "error",
    "abort": "error",
}


def normalize_finish_reason(raw: str | None) -> FinishKind | None:
    """Map the many spellings servers use onto a few values.

    ``None`` and ``""`` (sent by some servers before the end) mean "not said"; an unknown value
    maps to ``"other"`` so the caller can show the raw value as it is.
    """
    if raw is None or raw == "":
        return None
    return _FINISH_ALIASES.get(raw.lower(), "other")


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts for one request, or summed over several.

    ``None`` means the server did not report that number (never guess it as 0).
    """

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    reasoning_tokens: int | None = None

    @classmethod
    def from_wire(cls, data: Any) -> Usage | None:
        """Read an OpenAI-style ``usage`` object; ``None`` when there is nothing usable."""
        if not isinstance(data, dict):
            return None

        def count(value: Any) -> int | None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return None
            return int(value)

        details = data.get("completion_tokens_details")
        reasoning = count(details.get("reasoning_tokens")) if isinstance(details, dict) else None
        usage = cls(
            prompt_tokens=count(data.get("prompt_tokens")),
            completion_tokens=count(data.get("completion_tokens")),
            total_tokens=count(data.get("total_tokens")),
            reasoning_tokens=reasoning,
        )
        if usage.prompt_tokens is None and usage.completion_tokens is None:
            return None
        if usage.total_tokens is None and None not in (
            usage.prompt_tokens,
            usage.completion_tokens,
        ):
            usage = replace(
                usage,
                total_tokens=(usage.prompt_tokens or 0) + (usage.completion_tokens or 0),
            )
        return usage

    def __add__(self, other: Usage) -> Usage:
        def add(a: int | None, b: int | None) -> int | None:
            if a is None:
                return b
            if b is None:
                return a
            return a + b

        return Usage(
            prompt_tokens=add(self.prompt_tokens, other.prompt_tokens),
            completion_tokens=add(self.completion_tokens, other.completion_tokens),
            total_tokens=add(self.total_tokens, other.total_tokens),
            reasoning_tokens=add(self.reasoning_tokens, other.reasoning_tokens),
        )

    def to_dict(self) -> dict[str, int]:
        """The reported numbers only (unknown ones are left out)."""
        fields = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }
        return {k: v for k, v in fields.items() if v is not None}


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One function call requested by the model.

    ``arguments`` is the raw JSON text exactly as received (it may be invalid or truncated);
    :meth:`parsed_arguments` decodes it.
    """

    id: str
    name: str
    arguments: str = ""

    def parsed_arguments(self) -> dict[str, Any]:
        """Decode the arguments; ``""`` means ``{}``.

        Raises
        ------
        ValueError
            If the text is not a JSON object.
        """
        text = self.arguments.strip()
        if not text:
            return {}
        value = json.loads(text)
        if not isinstance(value, dict):
            raise ValueError(f"arguments must be a JSON object, got {type(value).__name__}")
        return value

    def to_wire(self) -> dict[str, Any]:
        """The ``tool_calls`` entry to send back in the history."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(slots=True)
class Completion:
    """One assistant message as the server produced it (one request, one round).

    Attributes
    ----------
    content
        The answer text (reasoning removed).
    reasoning
        "Thinking" text, shown apart and never sent back.
    tool_calls
        Calls the model asked for; tools were called iff this is non-empty.
    finish_reason
        The raw value the server sent (``None`` if it never said).
    model
        The model the server says it used (may differ from the one requested).
    usage
        Token counts, or ``None`` if the server did not report them.
    ended
        How the response ended (see :data:`Ending`).
    """

    content: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    model: str | None = None
    id: str | None = None
    usage: Usage | None = None
    ended: Ending = "incomplete"
    refusal: str | None = None

    @property
    def finish_kind(self) -> FinishKind | None:
        """The kind of ending ``finish_reason`` names (``"eos_token"`` is a ``"stop"``)."""
        return normalize_finish_reason(self.finish_reason)

    @property
    def partial(self) -> bool:
        """True when the reply was cut off, interrupted or failed."""
        return self.ended in ("incomplete", "interrupted", "error")


@dataclass(slots=True)
class Message:
    """One message of a conversation.

    Only ``role``, ``content``, ``tool_calls``, ``tool_call_id`` and ``name`` are sent to the
    server (:meth:`to_wire`); the other fields are bookkeeping shown to the user and kept in saved
    conversations.
    """

    role: Role
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    # Bookkeeping, never sent:
    reasoning: str = ""
    usage: Usage | None = None
    model: str | None = None
    finish_reason: str | None = None
    partial: bool = False
    note: str | None = None
    is_error: bool = False
    created: float = field(default_factory=time.time)

    def to_wire(self) -> dict[str, Any]:
        """The message exactly as it must be re-sent."""
        wire: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.role == "assistant" and self.tool_calls:
            # Some servers reject ``content: null`` next to tool calls (llama-cpp-python: HTTP
            # 500); an empty string is accepted everywhere.
            wire["tool_calls"] = [call.to_wire() for call in self.tool_calls]
        if self.role == "tool":
            # Only the id links a result to its call; a ``name`` field is not part of the tool
            # message schema and strict servers reject unknown fields.
            wire["tool_call_id"] = self.tool_call_id or ""
        return wire

    def to_dict(self) -> dict[str, Any]:
        """A lossless JSON-compatible form (see :meth:`from_dict`)."""
        data: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            data["tool_calls"] = [call.to_wire() for call in self.tool_calls]
        optional: dict[str, Any] = {
            "tool_call_id": self.tool_call_id,
            "name": self.name,
            "reasoning": self.reasoning or None,
            "usage": self.usage.to_dict() if self.usage else None,
            "model": self.model,
            "finish_reason": self.finish_reason,
            "partial": self.partial or None,
            "note": self.note,
            "is_error": self.is_error or None,
        }
        data.update({k: v for k, v in optional.items() if v is not None})
        data["created"] = self.created
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Message:
        """Rebuild a message saved by :meth:`to_dict` (or an OpenAI-style message dict)."""
        role = data.get("role")
        if role not in ("system", "user", "assistant", "tool"):
            raise ValueError(f"unknown message role {role!r}")
        content = data.get("content")
        if isinstance(content, list):
            # Content parts (OpenAI multimodal form): keep the text parts.
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        calls = [
            ToolCall(
                id=str(call.get("id") or ""),
                name=str((call.get("function") or {}).get("name") or ""),
                arguments=str((call.get("function") or {}).get("arguments") or ""),
            )
            for call in data.get("tool_calls") or []
        ]
        return cls(
            role=role,
            content=content if isinstance(content, str) else "",
            tool_calls=calls,
            tool_call_id=data.get("tool_call_id"),
            name=data.get("name"),
            reasoning=data.get("reasoning") or "",
            usage=Usage.from_wire(data.get("usage")),
            model=data.get("model"),
            finish_reason=data.get("finish_reason"),
            partial=bool(data.get("partial")),
            note=data.get("note"),
            is_error=bool(data.get("is_error")),
            created=float(data.get("created") or time.time()),
        )


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What running one tool call produced, as sent back to the model.

    ``status`` is ``"ok"``, ``"error"`` (exception, invalid arguments, unknown tool),
    ``"declined"`` (the user said no) or ``"skipped"`` (the turn stopped before it ran).
    """

    call: ToolCall
    content: str
    status: ToolStatus = "ok"
    duration: float = 0.0
    value: Any = None
    note: str | None = None

    @property
    def is_error(self) -> bool:
        """True unless the tool ran and returned normally."""
        return self.status != "ok"


publish(globals(), __all__)
