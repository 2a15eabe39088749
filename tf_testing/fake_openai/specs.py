"""The replies a test scripts, and how each one becomes bytes on the wire.

A response spec is a small frozen value that answers both streaming and non-streaming requests.
The server asks it for a :class:`~tf_testing.fake_openai.exchange.Plan` (status, headers, and each
block of bytes with the time it is due) and writes that plan; the spec never touches a socket.

- :class:`TextReply` -- content (and optional reasoning) tokens, with pacing and usage;
- :class:`ToolCallReply` -- tool calls with fragmented arguments;
- :class:`ErrorReply` -- an HTTP error with a JSON or text body;
- :class:`RawReply` -- exact bytes, with pauses between writes;
- :class:`MidStreamError`, :class:`Disconnect`, :class:`Hang` -- the ways streams go wrong;
- :class:`ReplayCapture` -- a byte-exact capture of a real server served again;
- :class:`Dynamic` -- a function that picks the reply from the request it received.

Streamed chunks come in one of two :data:`ChunkStyle` shapes (OpenAI's, llama-cpp-python's). The
framing helpers :func:`sse`, :func:`chat_chunk` and :func:`split_tokens` are public, for tests that
write a stream by hand (``RawReply.events([chat_chunk({"content": "Hi"}), "[DONE]"])``).
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeAlias

from .exchange import Call, Part, Plan, RecordedRequest, dumps_compact, json_plan

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_TEXT",
    "ChunkStyle",
    "Disconnect",
    "Dynamic",
    "ErrorReply",
    "Hang",
    "MidStreamError",
    "RawReply",
    "ReplayCapture",
    "ResponseSpec",
    "TextReply",
    "ToolCallReply",
    "chat_chunk",
    "split_tokens",
    "sse",
]

DEFAULT_MODEL = "fake-model"
DEFAULT_TEXT = "Hello from fake-model."

#: ``"openai"``: compact JSON, first delta ``{"role": "assistant", "content": ""}``, a final
#: ``choices: []`` usage chunk when asked for. ``"llamacpp"``: what llama-cpp-python's server sends
#: (see ``tests/wire/llama-cpp-python``): ``json.dumps`` spacing, first delta ``{"role":
#: "assistant"}``, tool deltas with explicit nulls and a legacy ``function_call`` copy, no usage in
#: streams.
ChunkStyle = Literal["openai", "llamacpp"]

_DONE = b"data: [DONE]\n\n"
_TOKEN_RE = re.compile(r"\s*\S+|\s+")


# --------------------------------------------------------------------------- framing helpers


def split_tokens(text: str) -> list[str]:
    """Split text into word-sized pieces that join back to exactly ``text``.

    Leading whitespace stays with the word that follows (``["Hello", " from", " fake-model."]``),
    as most tokenizers do; trailing whitespace becomes a piece of its own.
    """
    return _TOKEN_RE.findall(text)


def sse(data: Any) -> bytes:
    r"""Frame one server-sent event: ``data: <payload>\n\n``.

    A ``str`` is sent as it is (``sse("[DONE]")``); anything else is encoded as compact JSON.
    """
    payload = data if isinstance(data, str) else dumps_compact(data)
    return b"data: " + payload.encode() + b"\n\n"


def chat_chunk(
    delta: Mapping[str, Any],
    finish_reason: str | None = None,
    *,
    model: str = DEFAULT_MODEL,
    index: int = 0,
    id: str = "chatcmpl-fake",
    created: int = 0,
) -> dict[str, Any]:
    """Build one OpenAI-shaped ``chat.completion.chunk`` object (for hand-written streams).

    Examples
    --------
    >>> sse(chat_chunk({"content": "Hi"}))[:30]
    b'data: {"id":"chatcmpl-fake","o'
    """
    return {
        "id": id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [
            {"index": index, "delta": dict(delta), "logprobs": None, "finish_reason": finish_reason}
        ],
    }


def _count_prompt_tokens(request: Any) -> int:
    """A rough, deterministic prompt size: word pieces of every text plus a few per message."""
    if not isinstance(request, dict) or not isinstance(request.get("messages"), list):
        return 0
    total = 0
    for message in request["messages"]:
        total += 3
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            total += len(split_tokens(content))
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    total += len(split_tokens(part["text"]))
    return total


def _as_pieces(text: str | Sequence[str] | None) -> tuple[str, ...]:
    if text is None:
        return ()
    if isinstance(text, str):
        return tuple(split_tokens(text))
    return tuple(text)


def _split_evenly(text: str, parts: int) -> list[str]:
    """Cut ``text`` into at most ``parts`` pieces of nearly equal length (no empty pieces)."""
    if not text:
        return []
    size = max(1, math.ceil(len(text) / max(1, parts)))
    return [text[i : i + size] for i in range(0, len(text), size)]


# --------------------------------------------------------------------------- streamed chunks


def _timeline(events: Sequence[tuple[bool, bytes]], rate: float | None, delay: float) -> list[Part]:
    """Give each event its due time: token ``k`` at ``delay + k / rate``; others ride along.

    Non-token events (role chunk, finish chunk, usage, ``[DONE]``) are due with the token before
    them, or with the first token when none came before.
    """
    parts: list[Part] = []
    tokens = 0
    due = delay
    for is_token, data in events:
        if is_token:
            due = delay + (tokens / rate if rate else 0.0)
            tokens += 1
        parts.append(Part(due, data))
    return parts


def _stream_headers(request_id: str) -> list[tuple[str, str]]:
    return [
        ("content-type", "text/event-stream; charset=utf-8"),
        ("cache-control", "no-cache"),
        ("x-request-id", request_id),
    ]


class _Encoder:
    """Builds the chunk events of one streamed response in one of the :data:`ChunkStyle` shapes."""

    _SLOT = "\x00fake-openai-slot\x00"

    def __init__(self, style: ChunkStyle, model: str, usage_nulls: bool) -> None:
        self.style = style
        self.model = model
        self.id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        # OpenAI puts "usage": null in every chunk but the last when include_usage is set.
        self.usage_nulls = usage_nulls and style == "openai"

    def dumps(self, obj: Any) -> str:
        if self.style == "llamacpp":
            return json.dumps(obj)  # Python's default spacing and ASCII escapes, as captured
        return dumps_compact(obj)

    def chunk(self, delta: Mapping[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {
            "index": 0,
            "delta": dict(delta),
            "logprobs": None,
            "finish_reason": finish_reason,
        }
        if self.style == "llamacpp":
            return {
                "id": self.id,
                "model": self.model,
                "created": self.created,
                "object": "chat.completion.chunk",
                "choices": [choice],
            }
        obj: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [choice],
        }
        if self.usage_nulls:
            obj["usage"] = None
        return obj

    def event(self, delta: Mapping[str, Any], finish_reason: str | None = None) -> bytes:
        return b"data: " + self.dumps(self.chunk(delta, finish_reason)).encode() + b"\n\n"

    def text_events(self, key: str, pieces: Sequence[str]) -> list[bytes]:
        """One ``{key: piece}`` delta event per piece.

        The chunk is encoded once around a placeholder and each piece is spliced in: an 8,000-token
        reply then costs one small ``json.dumps`` per token instead of a whole chunk each.
        """
        if not pieces:
            return []
        before, after = self.dumps(self.chunk({key: self._SLOT})).split(self.dumps(self._SLOT))
        head, tail = b"data: " + before.encode(), after.encode() + b"\n\n"
        dumps = self.dumps
        return [head + dumps(piece).encode() + tail for piece in pieces]

    def usage_event(self, usage: Mapping[str, Any]) -> bytes:
        obj = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": dict(usage),
        }
        return b"data: " + self.dumps(obj).encode() + b"\n\n"

    def completion(
        self, message: Mapping[str, Any], finish_reason: str | None, usage: Any
    ) -> bytes:
        obj: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": dict(message),
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
        }
        if usage is not None:
            obj["usage"] = usage
        return dumps_compact(obj).encode()


def _usage(
    setting: Mapping[str, Any] | Literal["auto"] | None,
    call: Call,
    completion_tokens: int,
    reasoning_tokens: int = 0,
) -> dict[str, Any] | None:
    if setting is None:
        return None
    if setting != "auto":
        return dict(setting)
    prompt = _count_prompt_tokens(call.request.json)
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
    }
    if reasoning_tokens:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning_tokens}
    return usage


# --------------------------------------------------------------------------- response specs


@dataclass(frozen=True)
class TextReply:
    """A text answer, streamed as one delta per token or sent as one ``chat.completion``.

    Parameters
    ----------
    text : str or sequence of str
        The reply; a ``str`` is cut with :func:`split_tokens`, a sequence gives the exact pieces.
    tokens_per_second : float, optional
        Pace the stream: token ``k`` is written ``first_token_delay + k / tokens_per_second``
        seconds after the headers. ``None`` writes everything at once. A non-streaming answer
        waits the whole duration, then sends the body.
    first_token_delay : float
        Seconds between the response headers and the first chunk.
    usage : dict, ``"auto"`` or None
        ``"auto"`` computes counts (pieces of the reply; a rough count of the prompt). Streams carry
        it in a final ``choices: []`` chunk only when the request set
        ``stream_options.include_usage`` (never in the ``"llamacpp"`` style, like that server); a
        non-streaming body always has it. ``None`` never sends usage.
    finish_reason : str or None
        Sent on a final empty-delta chunk; ``None`` sends no finish chunk at all.
    finish_on_last_chunk : bool
        Put ``finish_reason`` on the last content chunk instead of a chunk of its own.
    send_done : bool
        End the stream with ``data: [DONE]``.
    model : str or None
        The model named in the reply; ``None`` echoes the request's ``model``.
    reasoning : str or sequence of str, optional
        Reasoning pieces, sent before the content under ``delta.<reasoning_field>`` (and in
        ``message.<reasoning_field>`` when not streaming).
    reasoning_field : str
        ``"reasoning_content"`` (DeepSeek, llama.cpp) or ``"reasoning"`` (newer vLLM, Ollama).
    role_chunk : bool
        Start with a delta that carries only the role.
    chunk_style : {"openai", "llamacpp"}
        See :data:`ChunkStyle`.
    """

    text: str | Sequence[str] = DEFAULT_TEXT
    tokens_per_second: float | None = None
    first_token_delay: float = 0.0
    usage: Mapping[str, Any] | Literal["auto"] | None = "auto"
    finish_reason: str | None = "stop"
    finish_on_last_chunk: bool = False
    send_done: bool = True
    model: str | None = DEFAULT_MODEL
    reasoning: str | Sequence[str] | None = None
    reasoning_field: str = "reasoning_content"
    role_chunk: bool = True
    chunk_style: ChunkStyle = "openai"

    @property
    def pieces(self) -> tuple[str, ...]:
        """The content tokens, as streamed."""
        return _as_pieces(self.text)

    @property
    def content(self) -> str:
        """The whole content text."""
        return "".join(self.pieces)

    def _model(self, call: Call) -> str:
        return self.model if self.model is not None else (call.requested_model or DEFAULT_MODEL)

    def _stream_events(self, call: Call, enc: _Encoder) -> list[tuple[bool, bytes]]:
        pieces, thoughts = self.pieces, _as_pieces(self.reasoning)
        events: list[tuple[bool, bytes]] = []
        if self.role_chunk:
            role = (
                {"role": "assistant", "content": ""}
                if self.chunk_style == "openai"
                else {"role": "assistant"}
            )
            events.append((False, enc.event(role)))
        events += [(True, e) for e in enc.text_events(self.reasoning_field, thoughts)]
        finish_inline = (
            self.finish_on_last_chunk and bool(pieces) and self.finish_reason is not None
        )
        body = pieces[:-1] if finish_inline else pieces
        events += [(True, e) for e in enc.text_events("content", body)]
        if finish_inline:
            events.append((True, enc.event({"content": pieces[-1]}, self.finish_reason)))
        elif self.finish_reason is not None:
            events.append((False, enc.event({}, self.finish_reason)))
        usage = _usage(self.usage, call, len(pieces) + len(thoughts), len(thoughts))
        if usage is not None and call.include_usage and self.chunk_style == "openai":
            events.append((False, enc.usage_event(usage)))
        if self.send_done:
            events.append((False, _DONE))
        return events

    def _plan(self, call: Call) -> Plan:
        enc = _Encoder(self.chunk_style, self._model(call), usage_nulls=call.include_usage)
        if call.stream:
            parts = _timeline(
                self._stream_events(call, enc), self.tokens_per_second, self.first_token_delay
            )
            return Plan(200, _stream_headers(enc.id), parts)
        pieces, thoughts = self.pieces, _as_pieces(self.reasoning)
        message: dict[str, Any] = {"role": "assistant", "content": "".join(pieces)}
        if thoughts:
            message[self.reasoning_field] = "".join(thoughts)
        usage = _usage(self.usage, call, len(pieces) + len(thoughts), len(thoughts))
        n = len(pieces) + len(thoughts)
        due = self.first_token_delay + (
            n / self.tokens_per_second if self.tokens_per_second else 0.0
        )
        return json_plan(200, enc.completion(message, self.finish_reason, usage), due=due)


@dataclass(frozen=True)
class ToolCallReply:
    """An assistant turn that calls tools, streamed or as ``message.tool_calls``.

    Parameters
    ----------
    calls : sequence of (name, arguments)
        One tool call per item; ``arguments`` is JSON text (sent as is, valid or not) or a dict
        (encoded for you).
    fragments : int
        Split each arguments string into at most this many deltas.
    repeat_id_and_name : bool, optional
        Repeat ``id``, ``type`` and ``function.name`` in every delta (llama-cpp-python, TGI,
        DeepSeek). ``None`` follows the style: off for ``"openai"``, on for ``"llamacpp"``.
    content_before : str or sequence of str, optional
        Text streamed before the calls (and ``message.content`` when not streaming).
    finish_reason : str or None
        ``"tool_calls"`` unless you want to mimic a server that says otherwise.
    ids : sequence of str, optional
        Call ids; random ``call_...`` ids by default.
    tokens_per_second, first_token_delay, usage, send_done, model, role_chunk, chunk_style
        As for :class:`TextReply` (every delta counts as a token for pacing).
    """

    calls: Sequence[tuple[str, str | Mapping[str, Any]]]
    fragments: int = 3
    repeat_id_and_name: bool | None = None
    content_before: str | Sequence[str] | None = None
    finish_reason: str | None = "tool_calls"
    ids: Sequence[str] | None = None
    tokens_per_second: float | None = None
    first_token_delay: float = 0.0
    usage: Mapping[str, Any] | Literal["auto"] | None = "auto"
    send_done: bool = True
    model: str | None = DEFAULT_MODEL
    role_chunk: bool = True
    chunk_style: ChunkStyle = "openai"

    def _resolved(self) -> list[tuple[str, str, str]]:
        ids = list(self.ids or [])
        out = []
        for i, (name, arguments) in enumerate(self.calls):
            text = arguments if isinstance(arguments, str) else dumps_compact(arguments)
            call_id = ids[i] if i < len(ids) else f"call_{uuid.uuid4().hex[:24]}"
            out.append((call_id, name, text))
        return out

    def _stream_events(self, call: Call, enc: _Encoder) -> list[tuple[bool, bytes]]:
        llama = self.chunk_style == "llamacpp"
        repeat = self.repeat_id_and_name if self.repeat_id_and_name is not None else llama
        nulls = {"role": None, "content": None, "function_call": None, "tool_calls": None}
        pieces = _as_pieces(self.content_before)
        events: list[tuple[bool, bytes]] = []
        if self.role_chunk:
            role: dict[str, Any] = {"role": "assistant", "content": "" if pieces else None}
            events.append((False, enc.event({**nulls, **role} if llama else role)))
        events += [(True, e) for e in enc.text_events("content", pieces)]

        def delta(index: int, call_id: str, name: str, arguments: str, full: bool) -> bytes:
            entry: dict[str, Any] = {"index": index}
            if full:
                entry.update(
                    id=call_id, type="function", function={"name": name, "arguments": arguments}
                )
            else:
                entry["function"] = {"arguments": arguments}
            if llama:
                legacy = {"name": name, "arguments": arguments}
                return enc.event({**nulls, "function_call": legacy, "tool_calls": [entry]})
            return enc.event({"tool_calls": [entry]})

        tokens = 0
        for index, (call_id, name, arguments) in enumerate(self._resolved()):
            frags = _split_evenly(arguments, self.fragments)
            if llama:
                frags.append("")  # llama-cpp-python ends each call with an empty fragment
                events += [
                    (True, delta(index, call_id, name, f, repeat or k == 0))
                    for k, f in enumerate(frags)
                ]
            elif repeat:
                events += [(True, delta(index, call_id, name, f, True)) for f in frags or [""]]
            else:
                events.append((True, delta(index, call_id, name, "", True)))
                events += [(True, delta(index, call_id, name, f, False)) for f in frags]
            tokens += len(frags) + 1
        if self.finish_reason is not None:
            events.append((False, enc.event(nulls if llama else {}, self.finish_reason)))
        usage = _usage(self.usage, call, len(pieces) + tokens)
        if usage is not None and call.include_usage and not llama:
            events.append((False, enc.usage_event(usage)))
        if self.send_done:
            events.append((False, _DONE))
        return events

    def _plan(self, call: Call) -> Plan:
        model = self.model if self.model is not None else (call.requested_model or DEFAULT_MODEL)
        enc = _Encoder(self.chunk_style, model, usage_nulls=call.include_usage)
        if call.stream:
            parts = _timeline(
                self._stream_events(call, enc), self.tokens_per_second, self.first_token_delay
            )
            return Plan(200, _stream_headers(enc.id), parts)
        resolved = self._resolved()
        pieces = _as_pieces(self.content_before)
        message: dict[str, Any] = {
            "role": "assistant",
            "content": "".join(pieces) if pieces else None,
            "tool_calls": [
                {"id": i, "type": "function", "function": {"name": n, "arguments": a}}
                for i, n, a in resolved
            ],
        }
        if self.chunk_style == "llamacpp" and resolved:
            # Captured quirk: a legacy copy of the first call whose name ends in ":".
            message["function_call"] = {"name": resolved[0][1] + ":", "arguments": resolved[0][2]}
        n = len(pieces) + sum(len(_split_evenly(a, self.fragments)) + 1 for _, _, a in resolved)
        due = self.first_token_delay + (
            n / self.tokens_per_second if self.tokens_per_second else 0.0
        )
        return json_plan(
            200, enc.completion(message, self.finish_reason, _usage(self.usage, call, n)), due=due
        )


@dataclass(frozen=True)
class ErrorReply:
    """An HTTP error response.

    Parameters
    ----------
    status : int
        e.g. 400, 401, 429, 500, 503.
    body : dict or str
        A dict is sent as JSON (``application/json``); a str as ``text/plain`` (a proxy's page).
    headers : mapping of str to str
        Extra headers, e.g. ``{"retry-after": "1"}`` or ``{"retry-after-ms": "20"}``; a
        ``content-type`` here replaces the default one.

    Examples
    --------
    >>> ErrorReply(400, {"error": {"message": "too long", "code": "context_length_exceeded"}})
    ... # doctest: +ELLIPSIS
    ErrorReply(status=400, ...)
    """

    status: int
    body: Mapping[str, Any] | str = field(default_factory=lambda: {"error": {"message": "error"}})
    headers: Mapping[str, str] = field(default_factory=dict)

    def _plan(self, call: Call) -> Plan:
        if isinstance(self.body, str):
            data, content_type = self.body.encode(), "text/plain; charset=utf-8"
        else:
            data, content_type = dumps_compact(dict(self.body)).encode(), "application/json"
        extra = [(k.lower(), v) for k, v in self.headers.items()]
        if not any(k == "content-type" for k, _ in extra):
            extra.insert(0, ("content-type", content_type))
        return Plan(self.status, extra, [Part(0.0, data)], framing="length")


@dataclass(frozen=True)
class RawReply:
    """Exact bytes, written as given: for framing, split-read and malformed-stream tests.

    Parameters
    ----------
    status : int
        The HTTP status.
    headers : mapping of str to str
        Sent as they are; no ``content-type`` is added (give one explicitly).
    chunks : sequence of bytes or float
        Each ``bytes`` item is written as it is (as one HTTP chunk when ``framing="chunked"``, so
        a pause between two items makes the client see two reads); a float sleeps that many
        seconds first. Empty items are skipped (an empty HTTP chunk would end the body).
    framing : {"chunked", "length", "close"}
        ``Transfer-Encoding: chunked``, a ``Content-Length`` of all the bytes, or a body that
        ends when the server closes the connection.
    """

    status: int = 200
    headers: Mapping[str, str] = field(
        default_factory=lambda: {"content-type": "text/event-stream"}
    )
    chunks: Sequence[bytes | float] = ()
    framing: Literal["chunked", "length", "close"] = "chunked"

    @classmethod
    def events(
        cls,
        events: Sequence[Any],
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> RawReply:
        """A ``text/event-stream`` reply built from events.

        A float pauses, ``bytes`` go as they are, anything else is framed with :func:`sse` (so
        ``"[DONE]"`` works).
        """
        chunks: list[bytes | float] = []
        for event in events:
            if isinstance(event, (bytes, float)):
                chunks.append(event)
            else:
                chunks.append(sse(event))
        return cls(status, dict(headers or {"content-type": "text/event-stream"}), chunks)

    def _plan(self, call: Call) -> Plan:
        parts: list[Part] = []
        due = 0.0
        for item in self.chunks:
            if isinstance(item, (bytes, bytearray)):
                if item:
                    parts.append(Part(due, bytes(item)))
            else:
                due += float(item)
        plan = Plan(self.status, [(k.lower(), v) for k, v in self.headers.items()], parts)
        plan.framing, plan.coalesce, plan.end_at = self.framing, False, due
        return plan


@dataclass(frozen=True)
class MidStreamError:
    """A stream that sends some content, then ``data: {"error": {...}}``, then ``[DONE]``.

    This is how OpenAI and vLLM report a failure after the HTTP 200 is out. A non-streaming request
    gets an HTTP 200 whose JSON body is ``{"error": {...}}``.

    Parameters
    ----------
    after_tokens : int
        Content tokens sent before the error (0: right after the role chunk).
    error : dict
        The inner error object.
    text : str or sequence of str
        Where the tokens come from.
    send_done : bool
        Follow the error with ``data: [DONE]``.
    tokens_per_second, first_token_delay, chunk_style
        As for :class:`TextReply`.
    """

    after_tokens: int = 3
    error: Mapping[str, Any] = field(
        default_factory=lambda: {
            "message": "The server had an error while processing your request.",
            "type": "server_error",
        }
    )
    text: str | Sequence[str] = "Partial answer that will be cut short by an error."
    send_done: bool = True
    tokens_per_second: float | None = None
    first_token_delay: float = 0.0
    chunk_style: ChunkStyle = "openai"

    def _plan(self, call: Call) -> Plan:
        payload = {"error": dict(self.error)}
        if not call.stream:
            return json_plan(200, dumps_compact(payload).encode())
        events = _truncated_text_events(
            call,
            self.text,
            self.after_tokens,
            self.tokens_per_second,
            self.first_token_delay,
            self.chunk_style,
        )
        events.append((False, sse(payload)))
        if self.send_done:
            events.append((False, _DONE))
        parts = _timeline(events, self.tokens_per_second, self.first_token_delay)
        return Plan(200, _stream_headers("req-error"), parts)


@dataclass(frozen=True)
class Disconnect:
    """A reply cut off by a dropped connection: no ``[DONE]``, no terminating chunk.

    Parameters
    ----------
    after_tokens : int
        Content tokens sent before the socket is closed (0: right after the role chunk). A
        non-streaming request gets half of its ``Content-Length`` body instead.
    before_headers : bool
        Close before sending anything at all (the client sees "server disconnected without
        sending a response", which is worth a retry).
    text, tokens_per_second, first_token_delay, chunk_style
        As for :class:`MidStreamError`.
    """

    after_tokens: int = 3
    before_headers: bool = False
    text: str | Sequence[str] = "Partial answer that will be cut short by a dropped connection."
    tokens_per_second: float | None = None
    first_token_delay: float = 0.0
    chunk_style: ChunkStyle = "openai"

    def _plan(self, call: Call) -> Plan:
        if self.before_headers:
            return Plan(0, [], send_head=False, end="abort")
        if not call.stream:
            body = TextReply(self.text, chunk_style=self.chunk_style)._plan(call).parts[0].data
            plan = json_plan(200, body[: len(body) // 2])
            plan.end, plan.declared_length = "abort", len(body)
            return plan
        events = _truncated_text_events(
            call,
            self.text,
            self.after_tokens,
            self.tokens_per_second,
            self.first_token_delay,
            self.chunk_style,
        )
        parts = _timeline(events, self.tokens_per_second, self.first_token_delay)
        return Plan(200, _stream_headers("req-disconnect"), parts, end="abort")


def _truncated_text_events(
    call: Call,
    text: str | Sequence[str],
    after_tokens: int,
    rate: float | None,
    delay: float,
    style: ChunkStyle,
) -> list[tuple[bool, bytes]]:
    """The role chunk and the first ``after_tokens`` content events of a :class:`TextReply`."""
    reply = TextReply(text, tokens_per_second=rate, first_token_delay=delay, chunk_style=style)
    enc = _Encoder(style, DEFAULT_MODEL, usage_nulls=call.include_usage)
    kept: list[tuple[bool, bytes]] = []
    tokens = 0
    for is_token, data in reply._stream_events(call, enc):
        if is_token:
            if tokens == after_tokens:
                break
            tokens += 1
        elif kept:  # only the role chunk may precede; stop at the finish chunk
            break
        kept.append((is_token, data))
    return kept


@dataclass(frozen=True)
class Hang:
    """Accept the request, then stall: for timeout and interrupt tests.

    The stall ends early when the client goes away or the server closes; then the connection is
    closed without a complete body.

    Parameters
    ----------
    seconds : float
        How long to stall (``math.inf``: until the client or the server gives up).
    send_headers : bool
        Send a 200 head first (``text/event-stream`` for a streaming request, JSON otherwise), so
        the stall happens while reading the body; ``False`` stalls before any byte.
    """

    seconds: float = math.inf
    send_headers: bool = True

    def _plan(self, call: Call) -> Plan:
        content_type = "text/event-stream; charset=utf-8" if call.stream else "application/json"
        return Plan(
            200,
            [("content-type", content_type)],
            send_head=self.send_headers,
            end="abort",
            end_at=self.seconds,
        )


# Headers of a capture that describe that connection, not the response; the fake sets its own.
_HOP_HEADERS = frozenset(
    {"transfer-encoding", "content-length", "connection", "date", "server", "keep-alive"}
)


@dataclass(frozen=True)
class ReplayCapture:
    r"""Serve a byte-exact capture (``NAME.response.http``) again.

    A capture is a status line, CRLF headers, a blank line and the body. The body is already
    de-chunked even when the headers say ``Transfer-Encoding: chunked``; it is served chunked in
    that case, else with a fresh ``Content-Length`` (redacted captures carry a stale one). The
    status, content type and other end-to-end headers are kept.

    Parameters
    ----------
    path : str or Path
        The capture file (read once, when the spec is made).
    split_events : bool
        Write each ``\n\n``-terminated event as its own HTTP chunk (several reads on the
        client) instead of the whole body at once.

    Attributes
    ----------
    status : int
    headers : tuple of (str, str)
        Lower-case names, connection-level headers left out.
    body : bytes
    chunked : bool
        Whether the capture was sent with ``Transfer-Encoding: chunked``.
    """

    path: str | Path
    split_events: bool = False
    status: int = field(init=False)
    headers: tuple[tuple[str, str], ...] = field(init=False)
    body: bytes = field(init=False)
    chunked: bool = field(init=False)

    def __post_init__(self) -> None:
        raw = Path(self.path).read_bytes()
        head, sep, body = raw.partition(b"\r\n\r\n")
        if not sep:
            head, _, body = raw.partition(b"\n\n")
        lines = head.decode("latin-1").splitlines()
        headers: list[tuple[str, str]] = []
        chunked = False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "transfer-encoding":
                chunked = "chunked" in value.lower()
            if name not in _HOP_HEADERS:
                headers.append((name, value))
        # A frozen dataclass sets its derived fields through object.__setattr__.
        object.__setattr__(self, "status", int(lines[0].split()[1]))
        object.__setattr__(self, "headers", tuple(headers))
        object.__setattr__(self, "body", body)
        object.__setattr__(self, "chunked", chunked)

    @property
    def content_type(self) -> str | None:
        """The captured ``content-type`` header."""
        return next((v for k, v in self.headers if k == "content-type"), None)

    def _plan(self, call: Call) -> Plan:
        if self.split_events:
            pieces = [p for p in re.split(rb"(?<=\n\n)", self.body) if p]
        else:
            pieces = [self.body] if self.body else []
        plan = Plan(self.status, list(self.headers), [Part(0.0, p) for p in pieces])
        plan.framing = "chunked" if self.chunked else "length"
        plan.coalesce = not self.split_events
        return plan


@dataclass(frozen=True)
class Dynamic:
    """Choose the reply when the request arrives.

    Parameters
    ----------
    fn : callable
        Called with the :class:`RecordedRequest`; returns the spec to answer with (which may itself
        be a :class:`Dynamic`). If it raises, the client gets a 500 and the exception lands in
        :attr:`FakeOpenAI.errors`.

    Examples
    --------
    >>> def answer(request):
    ...     if request.json["messages"][-1]["role"] == "tool":
    ...         return TextReply("It is sunny.")
    ...     return ToolCallReply([("get_weather", '{"city": "Paris"}')])
    >>> spec = Dynamic(answer)
    """

    fn: Callable[[RecordedRequest], ResponseSpec]

    def _plan(self, call: Call) -> Plan:
        return self.fn(call.request)._plan(call)


ResponseSpec: TypeAlias = (
    TextReply
    | ToolCallReply
    | ErrorReply
    | RawReply
    | MidStreamError
    | Disconnect
    | Hang
    | ReplayCapture
    | Dynamic
)
