"""One recorded exchange: the request, the reply as the events it was made of, and where from.

An entry is one line of the recording file, a JSON object with sorted keys::

    {"completion": {...}, "elapsed": 1.92, "events": [{"content": "The", "t": 0.41}, ...],
     "format": "tf_magics.recording", "occurrence": 1, "recorded_at": "2025-06-01T09:30:12Z",
     "request": {"max_tokens": 40, "messages": [...], "model": "smollm2", "temperature": 0.0},
     "server": "local", "model_note": "tiny local demo model", "version": 1}

``events`` are the reply's deltas as the client saw them, each with the seconds since the request
left (``t``): answer text (``content``), reasoning (``reasoning``) and tool-call fragments
(``tool_call``). ``completion`` is the assembled reply (text, tool calls with their ids, usage,
finish reason, model). The request never holds a key or a header: they are not part of a body.

The file is shared and may be edited by hand, so :func:`read_entry` checks every field and
names the first problem; the store skips such a line instead of failing.
"""

from __future__ import annotations

import calendar
import json
import time
from dataclasses import dataclass
from typing import Any

from tf_magics.events import ContentDelta, ReasoningDelta, ToolCallDelta
from tf_magics.types import Completion, ToolCall, Usage

from .canonical import encode, request_key

__all__ = ["FORMAT", "VERSION", "Entry", "RecordedEvent", "read_entry"]

FORMAT = "tf_magics.recording"
VERSION = 1

RecordedEvent = ContentDelta | ReasoningDelta | ToolCallDelta
_ENDINGS = ("done", "finished", "complete")


@dataclass(frozen=True)
class Entry:
    """One recorded request and its reply.

    Attributes
    ----------
    request
        The canonical request (:func:`~tf_magics.cache.canonical.canonical_request`), with the
        model that was sent.
    occurrence
        The how-manieth time the recording kernel sent this same request (from 1): a loop that
        asks the same thing three times records, and replays, three replies.
    events
        ``(seconds since the request left, event)`` for each delta of the reply.
    completion
        The assembled reply.
    elapsed
        Seconds from the request to the end of the reply.
    recorded_at
        When it was recorded (seconds since the epoch).
    server
        ``"local"`` (the built-in model) or the server's address without credentials.
    model_note
        A word about the model shown in the footer (the built-in model says it is a demo).
    """

    request: dict[str, Any]
    occurrence: int
    events: tuple[tuple[float, RecordedEvent], ...]
    completion: Completion
    elapsed: float
    recorded_at: float
    server: str | None = None
    model_note: str | None = None

    @property
    def key(self) -> str:
        """The lookup key of the request (everything but the model)."""
        return request_key(self.request)

    @property
    def model(self) -> str | None:
        """The model the request named."""
        model = self.request.get("model")
        return model if isinstance(model, str) else None

    def to_line(self) -> str:
        """The entry as one line of the file (sorted keys, no newline)."""
        data: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "request": self.request,
            "occurrence": self.occurrence,
            "events": [_event_to_dict(t, event) for t, event in self.events],
            "completion": _completion_to_dict(self.completion),
            "elapsed": round(self.elapsed, 3),
            "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.recorded_at)),
            "server": self.server,
            "model_note": self.model_note,
        }
        return encode({k: v for k, v in data.items() if v is not None})


# -- writing --------------------------------------------------------------------------------------


def _event_to_dict(t: float, event: RecordedEvent) -> dict[str, Any]:
    stamp = round(t, 3)
    if isinstance(event, ContentDelta):
        return {"t": stamp, "content": event.text}
    if isinstance(event, ReasoningDelta):
        return {"t": stamp, "reasoning": event.text}
    call = {"index": event.index, "id": event.id, "name": event.name, "arguments": event.arguments}
    return {"t": stamp, "tool_call": {k: v for k, v in call.items() if v is not None}}


def _completion_to_dict(completion: Completion) -> dict[str, Any]:
    data: dict[str, Any] = {
        "content": completion.content,
        "reasoning": completion.reasoning or None,
        "tool_calls": [
            {"id": c.id, "name": c.name, "arguments": c.arguments} for c in completion.tool_calls
        ]
        or None,
        "finish_reason": completion.finish_reason,
        "model": completion.model,
        "id": completion.id,
        "usage": completion.usage.to_dict() if completion.usage else None,
        "ended": completion.ended,
        "refusal": completion.refusal,
    }
    return {k: v for k, v in data.items() if v is not None}


# -- reading (untrusted) --------------------------------------------------------------------------


class _Fields:
    """Typed reads of one decoded object; each failure names where it is."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, dict):
            raise ValueError(f"{where} is not an object")
        self.data = data
        self.where = where

    def get(self, key: str, kind: type | tuple[type, ...], *, required: bool = True) -> Any:
        value = self.data.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _kinds(kind)):
            raise ValueError(f"{self.where}.{key} is missing or not {_kind_name(kind)}")
        return value


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "text", int: "a whole number", float: "a number", dict: "an object"}
    names[list] = "a list"
    return " or ".join(names.get(k, k.__name__) for k in _kinds(kind))


def read_entry(line: str) -> Entry:
    """Rebuild an entry from one line of the file.

    Raises
    ------
    ValueError
        Naming the first problem (``"events[3] is not an event"``).
    """
    try:
        data = json.loads(line)
    except RecursionError:
        raise ValueError("it nests too deeply") from None
    except ValueError:
        raise ValueError("it is not JSON") from None
    fields = _Fields(data, "the line")
    if data.get("format") != FORMAT:
        raise ValueError(f"it is not a tf_magics recording (format {data.get('format')!r})")
    if data.get("version") != VERSION:
        raise ValueError(f"it was written by another version (version {data.get('version')!r})")
    request = fields.get("request", dict)
    if not isinstance(request.get("messages"), list):
        raise ValueError("request.messages is missing or not a list")
    occurrence = fields.get("occurrence", int)
    if occurrence < 1:
        raise ValueError("occurrence must be at least 1")
    events = fields.get("events", list)
    return Entry(
        request=request,
        occurrence=occurrence,
        events=tuple(_read_event(item, f"events[{n}]") for n, item in enumerate(events)),
        completion=_read_completion(fields.get("completion", dict)),
        elapsed=max(0.0, float(fields.get("elapsed", (int, float), required=False) or 0.0)),
        recorded_at=_read_time(fields.get("recorded_at", str)),
        server=fields.get("server", str, required=False),
        model_note=fields.get("model_note", str, required=False),
    )


def _read_time(text: str) -> float:
    try:
        return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        raise ValueError(
            f"recorded_at {text[:40]!r} is not a time like 2025-06-01T09:30:12Z"
        ) from None


def _read_event(item: Any, where: str) -> tuple[float, RecordedEvent]:
    fields = _Fields(item, where)
    t = max(0.0, float(fields.get("t", (int, float))))
    if "content" in item:
        return t, ContentDelta(fields.get("content", str))
    if "reasoning" in item:
        return t, ReasoningDelta(fields.get("reasoning", str))
    call = _Fields(fields.get("tool_call", dict), f"{where}.tool_call")
    return t, ToolCallDelta(
        index=call.get("index", int),
        id=call.get("id", str, required=False),
        name=call.get("name", str, required=False),
        arguments=call.get("arguments", str, required=False) or "",
    )


def _read_completion(data: dict[str, Any]) -> Completion:
    fields = _Fields(data, "completion")
    calls = fields.get("tool_calls", list, required=False) or []
    tool_calls = []
    for n, item in enumerate(calls):
        call = _Fields(item, f"completion.tool_calls[{n}]")
        tool_calls.append(
            ToolCall(
                id=call.get("id", str),
                name=call.get("name", str),
                arguments=call.get("arguments", str, required=False) or "",
            )
        )
    ended = fields.get("ended", str)
    if ended not in _ENDINGS:
        raise ValueError(f"completion.ended {ended[:20]!r} is not a finished reply")
    usage = fields.get("usage", dict, required=False)
    return Completion(
        content=fields.get("content", str, required=False) or "",
        reasoning=fields.get("reasoning", str, required=False) or "",
        tool_calls=tool_calls,
        finish_reason=fields.get("finish_reason", str, required=False),
        model=fields.get("model", str, required=False),
        id=fields.get("id", str, required=False),
        usage=Usage.from_wire(usage),
        ended=ended,
        refusal=fields.get("refusal", str, required=False),
    )
