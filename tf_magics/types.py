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
from ._text import clean_text

__all__ = [
    "Completion",
    "Ending",
    "FinishKind",
    "Message",
    "Replayed",
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
    #: Of the prompt tokens, how many the server read from its prompt cache (billed less).
    cached_tokens: int | None = None

    @classmethod
    def from_wire(cls, data: Any) -> Usage | None:
        """Read an OpenAI-style ``usage`` object; ``None`` when there is nothing usable."""
        if not isinstance(data, dict):
            return None

        def count(value: Any) -> int | None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return None
            return int(value)

        def detail(section: str, key: str) -> int | None:
            # The wire nests it (``completion_tokens_details``); :meth:`to_dict` writes it flat.
            nested = data.get(section)
            found = count(nested.get(key)) if isinstance(nested, dict) else None
            return found if found is not None else count(data.get(key))

        reasoning = detail("completion_tokens_details", "reasoning_tokens")
        cached = detail("prompt_tokens_details", "cached_tokens")
        usage = cls(
            prompt_tokens=count(data.get("prompt_tokens")),
            completion_tokens=count(data.get("completion_tokens")),
            total_tokens=count(data.get("total_tokens")),
            reasoning_tokens=reasoning,
            cached_tokens=cached,
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
            cached_tokens=add(self.cached_tokens, other.cached_tokens),
        )

    def to_dict(self) -> dict[str, int]:
        """The reported numbers only (unknown ones are left out)."""
        fields = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cached_tokens": self.cached_tokens,
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


@dataclass(frozen=True, slots=True)
class Replayed:
    """Where a replayed reply was recorded (see :mod:`tf_magics.cache`).

    Attributes
    ----------
    recorded_at
        When it was recorded (seconds since the epoch).
    model
        The model that produced it, as its server reported it.
    server
        The server it came from: ``"local"`` for the built-in model, else its address (never
        credentials).
    model_note
        A word about the model (the built-in demo model says so).
    file
        The recording file it was read from.
    """

    recorded_at: float
    model: str | None = None
    server: str | None = None
    model_note: str | None = None
    file: str | None = None


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
    replayed
        Where it was recorded, when it came from a recording instead of a server.
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
    replayed: Replayed | None = None

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

    Only ``role``, ``content`` (with ``parts``), ``tool_calls`` and ``tool_call_id`` are sent to
    the server (:meth:`to_wire`); the other fields are bookkeeping shown to the user and kept in
    saved conversations.

    Attributes
    ----------
    content
        The text of the message.
    parts
        Other content parts sent before the text (OpenAI's multimodal form: an attachment, an
        ``image_url``), kept so that the history reproduces the request.
    """

    role: Role
    content: str = ""
    parts: list[dict[str, Any]] = field(default_factory=list)
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
    #: What the request that produced this assistant message cost (``None``: unknown).
    cost: float | None = None
    created: float = field(default_factory=time.time)

    def to_wire(self) -> dict[str, Any]:
        """The message exactly as it must be re-sent.

        Parts that are all text (attachments without images) are sent as one string, each part
        and the text separated by a blank line: every server takes a string, while some that
        cannot read images reject a list of parts even when it holds only text
        (llama-cpp-python: HTTP 500). With an image, the content is the list of parts.
        """
        wire: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.parts and all(part.get("type") == "text" for part in self.parts):
            texts = [str(part.get("text", "")) for part in self.parts]
            wire["content"] = "\n\n".join([*texts, self.content] if self.content else texts)
        elif self.parts:
            text = [{"type": "text", "text": self.content}] if self.content else []
            wire["content"] = [*self.parts, *text]
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
        if self.parts:
            data["parts"] = [dict(part) for part in self.parts]
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
            "cost": self.cost,
        }
        data.update({k: v for k, v in optional.items() if v is not None})
        data["created"] = self.created
        return data

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "message") -> Message:
        """Rebuild a message saved by :meth:`to_dict` (or an OpenAI-style message dict).

        Every field is checked: a saved conversation is untrusted input, and a bad value must
        fail here, in one line that names it, rather than break a later request.

        Raises
        ------
        ValueError
            Naming the first problem (``"messages[3].tool_call_id must be a string"``).
        """
        return _read_message(data, where)


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


# -- reading saved messages ----------------------------------------------------------------------

_ROLES = ("system", "user", "assistant", "tool")


class _Fields:
    """Typed reads of a decoded JSON object, each failure naming its path."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, dict):
            raise ValueError(f"{where} must be an object, not {_kind(data)}")
        self.data = data
        self.where = where

    def text(self, key: str, *, required: bool = False) -> str | None:
        value = self.data.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str):
            raise ValueError(f"{self.where}.{key} must be a string, not {_kind(value)}")
        return clean_text(value)

    def flag(self, key: str) -> bool:
        value = self.data.get(key)
        if value is not None and not isinstance(value, bool):
            raise ValueError(f"{self.where}.{key} must be true or false, not {_kind(value)}")
        return bool(value)

    def number(self, key: str) -> float | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{self.where}.{key} must be a number, not {_kind(value)}")
        return float(value)


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if isinstance(value, (int, float)) else "a value")


def _read_message(data: Any, where: str) -> Message:
    fields = _Fields(data, where)
    role = data.get("role")
    if role not in _ROLES:
        raise ValueError(f"{where}.role must be one of {', '.join(_ROLES)}, not {role!r}")
    content, parts = _read_content(data.get("content"), role, f"{where}.content")
    saved_parts = data.get("parts")
    if saved_parts is not None:
        # Saved parts keep their text parts (attachments) as parts, in order.
        parts = [*_read_parts(saved_parts, f"{where}.parts", keep_text=True)[1], *parts]
    usage = data.get("usage")
    if usage is not None and not isinstance(usage, dict):
        raise ValueError(f"{where}.usage must be an object, not {_kind(usage)}")
    tool_call_id = fields.text("tool_call_id", required=role == "tool")
    return Message(
        role=role,
        content=content,
        parts=parts,
        tool_calls=_read_calls(data.get("tool_calls"), role, f"{where}.tool_calls"),
        tool_call_id=tool_call_id,
        name=fields.text("name"),
        reasoning=fields.text("reasoning") or "",
        usage=Usage.from_wire(usage),
        model=fields.text("model"),
        finish_reason=fields.text("finish_reason"),
        partial=fields.flag("partial"),
        note=fields.text("note"),
        is_error=fields.flag("is_error"),
        cost=fields.number("cost"),
        created=fields.number("created") or time.time(),
    )


def _read_content(value: Any, role: str, where: str) -> tuple[str, list[dict[str, Any]]]:
    if isinstance(value, str):
        return clean_text(value), []
    if value is None and role in ("assistant", "tool"):
        return "", []  # an assistant message with tool calls may carry no text
    if isinstance(value, list):
        return _read_parts(value, where)
    raise ValueError(f"{where} must be text or a list of content parts, not {_kind(value)}")


def _read_parts(
    value: Any, where: str, *, keep_text: bool = False
) -> tuple[str, list[dict[str, Any]]]:
    """The text of a list of content parts (joined), and its other parts, all checked.

    With ``keep_text``, text parts stay parts (in order) instead of joining the text.
    """
    if not isinstance(value, list):
        raise ValueError(f"{where} must be a list of content parts, not {_kind(value)}")
    texts: list[str] = []
    others: list[dict[str, Any]] = []
    for position, part in enumerate(value):
        fields = _Fields(part, f"{where}[{position}]")
        kind = part.get("type")
        if kind == "text" and keep_text:
            others.append({"type": "text", "text": fields.text("text", required=True) or ""})
        elif kind == "text":
            texts.append(fields.text("text", required=True) or "")
        elif kind == "image_url":
            image = _Fields(part.get("image_url"), f"{where}[{position}].image_url")
            url = image.text("url", required=True)
            others.append({"type": "image_url", "image_url": {**image.data, "url": url}})
        else:
            raise ValueError(f"{where}[{position}].type must be text or image_url, not {kind!r}")
    return "".join(texts), others


def _read_calls(value: Any, role: str, where: str) -> list[ToolCall]:
    if value is None or value == []:
        return []
    if role != "assistant":
        raise ValueError(f"{where}: only assistant messages carry tool calls")
    if not isinstance(value, list):
        raise ValueError(f"{where} must be a list, not {_kind(value)}")
    calls = []
    for position, call in enumerate(value):
        fields = _Fields(call, f"{where}[{position}]")
        function = _Fields(call.get("function"), f"{where}[{position}].function")
        arguments = function.data.get("arguments")
        if isinstance(arguments, (dict, list)):
            arguments = json.dumps(arguments, ensure_ascii=False)  # some servers send objects
        elif arguments is not None and not isinstance(arguments, str):
            raise ValueError(
                f"{where}[{position}].function.arguments must be a string, not {_kind(arguments)}"
            )
        calls.append(
            ToolCall(
                id=fields.text("id", required=True) or "",
                name=function.text("name", required=True) or "",
                arguments=clean_text(arguments or ""),
            )
        )
    return calls
