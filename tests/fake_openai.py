"""A scripted OpenAI-compatible HTTP server on 127.0.0.1, for tests and benchmarks.

:class:`FakeOpenAI` runs a real HTTP/1.1 server (keep-alive, chunked streams) on a background
thread, answers ``POST /v1/chat/completions`` and ``GET /v1/models``, and records every request so a
test can assert on what the client sent::

    with FakeOpenAI() as server:
        server.enqueue(TextReply(["Hel", "lo"], tokens_per_second=50))
        server.enqueue(ErrorReply(429, {"error": {"message": "slow down"}}, {"retry-after": "0"}))
        ...  # point the client at server.base_url
        assert server.chat_requests[0]["stream"] is True

Replies come from a FIFO queue of response specs; when it is empty, :attr:`FakeOpenAI.default`
answers (a short "Hello from fake-model." text, streamed when the request asked for a stream). A
spec is a small value that answers both streaming and non-streaming requests:

- :class:`TextReply` -- content (and optional reasoning) tokens, with pacing and usage;
- :class:`ToolCallReply` -- tool calls with fragmented arguments;
- :class:`ErrorReply` -- an HTTP error with a JSON or text body;
- :class:`RawReply` -- exact bytes, with pauses between writes;
- :class:`MidStreamError`, :class:`Disconnect`, :class:`Hang` -- the ways streams go wrong;
- :class:`ReplayCapture` -- a byte-exact capture from ``tests/wire/`` served again;
- :class:`Dynamic` -- a function that picks the reply from the request it received.

Run ``python -m tests.fake_openai --port P --tokens N --rate R`` from the repository root to serve
from another process (a notebook, a kernel, a benchmark); it prints its base URL on the first line
of stdout and stops on SIGTERM or Ctrl-C.

One thread serves each connection. Pacing stays accurate up to roughly 10,000 paced events per
second in total (say 100 streams at 100 tokens/s); beyond that the streams run slower than asked.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import random
import re
import selectors
import signal
import socket
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import TCPServer
from types import TracebackType
from typing import Any, Literal, NamedTuple, TypeAlias, cast
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_TEXT",
    "ChunkStyle",
    "Disconnect",
    "Dynamic",
    "ErrorReply",
    "FakeOpenAI",
    "Hang",
    "MidStreamError",
    "ModelsSetting",
    "RawReply",
    "RecordedRequest",
    "ReplayCapture",
    "ResponseSpec",
    "TextReply",
    "ToolCallReply",
    "chat_chunk",
    "main",
    "make_markdown_tokens",
    "split_tokens",
    "sse",
]

HOST = "127.0.0.1"
DEFAULT_MODEL = "fake-model"
DEFAULT_TEXT = "Hello from fake-model."

#: ``"openai"``: compact JSON, first delta ``{"role": "assistant", "content": ""}``, a final
#: ``choices: []`` usage chunk when asked for. ``"llamacpp"``: what llama-cpp-python's server sends
#: (see ``tests/wire/llama-cpp-python``): ``json.dumps`` spacing, first delta ``{"role":
#: "assistant"}``, tool deltas with explicit nulls and a legacy ``function_call`` copy, no usage in
#: streams.
ChunkStyle = Literal["openai", "llamacpp"]

# Events are grouped into HTTP chunks of about this size when they are all due at once: few
# syscalls for the benchmark's fast path, yet still a streamed, chunked body.
_COALESCE_BYTES = 32 * 1024
_DONE = b"data: [DONE]\n\n"
_TOKEN_RE = re.compile(r"\s*\S+|\s+")


# --------------------------------------------------------------------------- helpers


def split_tokens(text: str) -> list[str]:
    """Split text into word-sized pieces that join back to exactly ``text``.

    Leading whitespace stays with the word that follows (``["Hello", " from", " fake-model."]``),
    as most tokenizers do; trailing whitespace becomes a piece of its own.
    """
    return _TOKEN_RE.findall(text)


def sse(data: Any) -> bytes:
    """Frame one server-sent event: ``data: <payload>\\n\\n``.

    A ``str`` is sent as it is (``sse("[DONE]")``); anything else is encoded as compact JSON.
    """
    payload = data if isinstance(data, str) else _dumps_compact(data)
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


# One encoder for all: json.dumps with keyword arguments builds a new encoder per call, which is
# most of the cost of encoding 8,000 tiny chunks.
_dumps_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _error_body(message: str, type_: str = "invalid_request_error", code: Any = None) -> bytes:
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return _dumps_compact(body).encode()


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


# --------------------------------------------------------------------------- recording


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request as the server received it.

    Attributes
    ----------
    method : str
        ``"GET"``, ``"POST"``, ...
    path : str
        The request target, query string included (``"/v1/chat/completions"``).
    headers : dict of str to str
        Header names in lower case; repeated headers are joined with ``", "``.
    body : bytes
        The raw body (de-chunked if the client sent it chunked).
    json : Any
        The body parsed as JSON, or ``None`` when it is empty or not JSON (typed ``Any`` so tests
        can index it without casts).
    """

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any  # None when the body is empty or not JSON


@dataclass(frozen=True)
class _Call:
    """What a spec needs to know about the request it answers."""

    request: RecordedRequest
    stream: bool
    include_usage: bool
    requested_model: str | None

    @classmethod
    def of(cls, request: RecordedRequest) -> _Call:
        body = request.json if isinstance(request.json, dict) else {}
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        model = body.get("model")
        return cls(
            request=request,
            stream=body.get("stream") is True,
            include_usage=include_usage,
            requested_model=model if isinstance(model, str) else None,
        )


# --------------------------------------------------------------------------- response plans


class _Part(NamedTuple):  # a tuple: built once per token, so it must be cheap
    due: float  # seconds after the response started
    data: bytes


@dataclass
class _Plan:
    """How to write one response: what, when, how it ends (built by a spec, run by the handler)."""

    status: int
    headers: list[tuple[str, str]]
    parts: list[_Part] = field(default_factory=list)
    # "chunked": Transfer-Encoding: chunked; "length": Content-Length; "close": body until close.
    framing: Literal["chunked", "length", "close"] = "chunked"
    send_head: bool = True
    # "abort" closes the socket without finishing the body (no terminating chunk).
    end: Literal["complete", "abort"] = "complete"
    end_at: float = 0.0  # hold the connection until this offset before ending (Hang)
    declared_length: int | None = None  # Content-Length to announce when it is not the sum of parts
    coalesce: bool = True  # may several parts due together share one HTTP chunk?


def _json_plan(
    status: int, body: bytes, headers: Sequence[tuple[str, str]] = (), due: float = 0.0
) -> _Plan:
    return _Plan(
        status,
        [("content-type", "application/json"), *headers],
        [_Part(due, body)],
        framing="length",
    )


def _timeline(
    events: Sequence[tuple[bool, bytes]], rate: float | None, delay: float
) -> list[_Part]:
    """Give each event its due time: token ``k`` at ``delay + k / rate``; others ride along.

    Non-token events (role chunk, finish chunk, usage, ``[DONE]``) are due with the token before
    them, or with the first token when none came before.
    """
    parts: list[_Part] = []
    tokens = 0
    due = delay
    for is_token, data in events:
        if is_token:
            due = delay + (tokens / rate if rate else 0.0)
            tokens += 1
        parts.append(_Part(due, data))
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
        return _dumps_compact(obj)

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
        return _dumps_compact(obj).encode()


def _usage(
    setting: Mapping[str, Any] | Literal["auto"] | None,
    call: _Call,
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

    def _model(self, call: _Call) -> str:
        return self.model if self.model is not None else (call.requested_model or DEFAULT_MODEL)

    def _stream_events(self, call: _Call, enc: _Encoder) -> list[tuple[bool, bytes]]:
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

    def _plan(self, call: _Call) -> _Plan:
        enc = _Encoder(self.chunk_style, self._model(call), usage_nulls=call.include_usage)
        if call.stream:
            parts = _timeline(
                self._stream_events(call, enc), self.tokens_per_second, self.first_token_delay
            )
            return _Plan(200, _stream_headers(enc.id), parts)
        pieces, thoughts = self.pieces, _as_pieces(self.reasoning)
        message: dict[str, Any] = {"role": "assistant", "content": "".join(pieces)}
        if thoughts:
            message[self.reasoning_field] = "".join(thoughts)
        usage = _usage(self.usage, call, len(pieces) + len(thoughts), len(thoughts))
        n = len(pieces) + len(thoughts)
        due = self.first_token_delay + (
            n / self.tokens_per_second if self.tokens_per_second else 0.0
        )
        return _json_plan(200, enc.completion(message, self.finish_reason, usage), due=due)


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
            text = arguments if isinstance(arguments, str) else _dumps_compact(arguments)
            call_id = ids[i] if i < len(ids) else f"call_{uuid.uuid4().hex[:24]}"
            out.append((call_id, name, text))
        return out

    def _stream_events(self, call: _Call, enc: _Encoder) -> list[tuple[bool, bytes]]:
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

    def _plan(self, call: _Call) -> _Plan:
        model = self.model if self.model is not None else (call.requested_model or DEFAULT_MODEL)
        enc = _Encoder(self.chunk_style, model, usage_nulls=call.include_usage)
        if call.stream:
            parts = _timeline(
                self._stream_events(call, enc), self.tokens_per_second, self.first_token_delay
            )
            return _Plan(200, _stream_headers(enc.id), parts)
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
        return _json_plan(
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

    def _plan(self, call: _Call) -> _Plan:
        if isinstance(self.body, str):
            data, content_type = self.body.encode(), "text/plain; charset=utf-8"
        else:
            data, content_type = _dumps_compact(dict(self.body)).encode(), "application/json"
        extra = [(k.lower(), v) for k, v in self.headers.items()]
        if not any(k == "content-type" for k, _ in extra):
            extra.insert(0, ("content-type", content_type))
        return _Plan(self.status, extra, [_Part(0.0, data)], framing="length")


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
        """A ``text/event-stream`` reply from events: a float pauses, ``bytes`` go as they are,
        anything else is framed with :func:`sse` (so ``"[DONE]"`` works)."""
        chunks: list[bytes | float] = []
        for event in events:
            if isinstance(event, (bytes, float)):
                chunks.append(event)
            else:
                chunks.append(sse(event))
        return cls(status, dict(headers or {"content-type": "text/event-stream"}), chunks)

    def _plan(self, call: _Call) -> _Plan:
        parts: list[_Part] = []
        due = 0.0
        for item in self.chunks:
            if isinstance(item, (bytes, bytearray)):
                if item:
                    parts.append(_Part(due, bytes(item)))
            else:
                due += float(item)
        plan = _Plan(self.status, [(k.lower(), v) for k, v in self.headers.items()], parts)
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

    def _plan(self, call: _Call) -> _Plan:
        payload = {"error": dict(self.error)}
        if not call.stream:
            return _json_plan(200, _dumps_compact(payload).encode())
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
        return _Plan(200, _stream_headers("req-error"), parts)


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

    def _plan(self, call: _Call) -> _Plan:
        if self.before_headers:
            return _Plan(0, [], send_head=False, end="abort")
        if not call.stream:
            body = TextReply(self.text, chunk_style=self.chunk_style)._plan(call).parts[0].data
            plan = _json_plan(200, body[: len(body) // 2])
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
        return _Plan(200, _stream_headers("req-disconnect"), parts, end="abort")


def _truncated_text_events(
    call: _Call,
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

    def _plan(self, call: _Call) -> _Plan:
        content_type = "text/event-stream; charset=utf-8" if call.stream else "application/json"
        return _Plan(
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
    """Serve a byte-exact capture (``NAME.response.http``) again.

    A capture is a status line, CRLF headers, a blank line and the body. The body is already
    de-chunked even when the headers say ``Transfer-Encoding: chunked``; it is served chunked in
    that case, else with a fresh ``Content-Length`` (redacted captures carry a stale one). The
    status, content type and other end-to-end headers are kept.

    Parameters
    ----------
    path : str or Path
        The capture file (read once, when the spec is made).
    split_events : bool
        Write each ``\\n\\n``-terminated event as its own HTTP chunk (several reads on the
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

    def _plan(self, call: _Call) -> _Plan:
        if self.split_events:
            pieces = [p for p in re.split(rb"(?<=\n\n)", self.body) if p]
        else:
            pieces = [self.body] if self.body else []
        plan = _Plan(self.status, list(self.headers), [_Part(0.0, p) for p in pieces])
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

    def _plan(self, call: _Call) -> _Plan:
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

#: What ``GET /v1/models`` answers: model ids (or full model dicts), ``None`` for ``data: null``,
#: or any spec (``ErrorReply(404, ...)``).
ModelsSetting: TypeAlias = Sequence[str | Mapping[str, Any]] | ResponseSpec | None


# --------------------------------------------------------------------------- the HTTP side


def _frame_chunks(datas: Sequence[bytes], coalesce: bool) -> list[bytes]:
    out: list[bytes] = []
    if not coalesce:
        return [b"%x\r\n%b\r\n" % (len(d), d) for d in datas if d]
    buffer: list[bytes] = []
    size = 0
    for data in datas:
        buffer.append(data)
        size += len(data)
        if size >= _COALESCE_BYTES:
            joined = b"".join(buffer)
            out.append(b"%x\r\n%b\r\n" % (len(joined), joined))
            buffer, size = [], 0
    if size:
        joined = b"".join(buffer)
        out.append(b"%x\r\n%b\r\n" % (len(joined), joined))
    return out


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-openai"
    # Paced streams write small packets; Nagle plus delayed ACKs would hold them back ~40 ms.
    disable_nagle_algorithm = True
    _selector: selectors.BaseSelector | None = None

    @property
    def fake(self) -> FakeOpenAI:
        return cast(_Server, self.server).fake

    def setup(self) -> None:
        super().setup()
        self.fake._track(self.connection, add=True)

    def finish(self) -> None:
        if self._selector is not None:
            self._selector.close()
        try:
            super().finish()
        except OSError:
            pass  # the client (or an abort) already closed the socket
        finally:
            self.fake._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read recorded requests, not an access log on stderr

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    # -- reading

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            pieces: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(pieces)
                pieces.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        body = self._read_body()
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        try:
            parsed: Any = json.loads(body) if body else None
        except ValueError:
            parsed = None
        request = RecordedRequest(self.command, self.path, headers, body, parsed)
        self.fake._record(request)
        try:
            plan = self.fake._plan_for(request)
        except (
            Exception
        ) as exc:  # a Dynamic callback or a bad spec: answer, and let the test see it
            self.fake._record_error(exc)
            plan = _json_plan(500, _error_body(f"fake server error: {exc!r}", "server_error"))
        self._execute(plan)

    # -- writing

    def _head(self, plan: _Plan) -> bytes:
        try:
            reason = HTTPStatus(plan.status).phrase
        except ValueError:
            reason = "Unknown"
        lines = [
            f"HTTP/1.1 {plan.status} {reason}",
            f"server: {self.server_version}",
            f"date: {self.date_time_string()}",
        ]
        lines += [f"{name}: {value}" for name, value in plan.headers]
        if plan.framing == "chunked":
            lines.append("transfer-encoding: chunked")
        elif plan.framing == "length":
            length = plan.declared_length
            if length is None:
                length = sum(len(p.data) for p in plan.parts)
            lines.append(f"content-length: {length}")
        else:
            lines.append("connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _frame(self, plan: _Plan, datas: list[bytes]) -> list[bytes]:
        if plan.framing == "chunked":
            return _frame_chunks(datas, plan.coalesce)
        return datas

    def _execute(self, plan: _Plan) -> None:
        start = time.perf_counter()
        pending: list[bytes] = [self._head(plan)] if plan.send_head else []
        index, parts = 0, plan.parts
        try:
            while index < len(parts):
                wait = start + parts[index].due - time.perf_counter()
                if wait > 0:
                    self._write(pending)
                    pending = []
                    if not self._wait(wait):
                        self._abort()
                        return
                # Everything already due goes out in one write: a slow wake-up catches up at once.
                now = time.perf_counter() - start + 0.0005
                batch = []
                while index < len(parts) and parts[index].due <= now:
                    batch.append(parts[index].data)
                    index += 1
                pending += self._frame(plan, batch)
            hold = start + plan.end_at - time.perf_counter()
            if hold > 0:
                self._write(pending)
                pending = []
                if not self._wait(hold):
                    self._abort()
                    return
            if plan.end == "abort":
                self._write(pending)
                self._abort()
                return
            if plan.framing == "chunked":
                pending.append(b"0\r\n\r\n")
            self._write(pending)
            if plan.framing == "close":
                self._abort()
        except OSError:
            self.close_connection = True  # the client hung up mid-response: not an error here

    def _write(self, datas: list[bytes]) -> None:
        if datas:
            data = b"".join(datas)
            self.wfile.write(data)
            if self.fake.on_write is not None:
                self.fake.on_write(data)

    def _abort(self) -> None:
        """Close the connection now, whatever the framing promised."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_WR)

    def _wait(self, seconds: float) -> bool:
        """Sleep, but wake when the client disconnects or the server closes; ``False`` then."""
        deadline = time.perf_counter() + seconds
        if self._selector is None:
            # One selector per connection: paced streams wait once per token, and setting one up
            # per wait costs more than the wait itself when hundreds of streams run at once.
            self._selector = selectors.DefaultSelector()
            self._selector.register(self.connection, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return True
            if self.fake._stopping.is_set():
                return False
            if self._selector.select(min(remaining, 0.25)):
                try:
                    peeked = self.connection.recv(1, socket.MSG_PEEK)
                except OSError:
                    return False
                if not peeked:
                    return False  # EOF: the client is gone
                # The client sent more bytes early (a pipelined request): plain sleep.
                return not self.fake._stopping.wait(max(0.0, deadline - time.perf_counter()))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # many clients connect at once in concurrency tests

    def __init__(self, fake: FakeOpenAI, port: int) -> None:
        self.fake = fake
        super().__init__((HOST, port), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (getfqdn), which can stall; skip it.
        TCPServer.server_bind(self)
        self.server_name, self.server_port = HOST, self.server_address[1]

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            return  # clients that disconnect are part of the tests, not failures
        if exc is not None:
            self.fake._record_error(exc)
        super().handle_error(request, client_address)


class FakeOpenAI:
    """A scripted OpenAI-compatible server on ``127.0.0.1``, running on a background thread.

    Parameters
    ----------
    port : int
        0 picks a free port.
    default : ResponseSpec, optional
        The reply when the queue is empty; ``TextReply("Hello from fake-model.")`` by default.
    models : sequence of str or dict, spec, or None
        What ``GET /v1/models`` answers: model ids (or whole model objects), ``None`` for
        ``{"object": "list", "data": null}``, or a spec such as ``ErrorReply(404, ...)``.
    api_key : str, optional
        When set, every request without ``Authorization: Bearer <api_key>`` gets a 401.

    Attributes
    ----------
    on_write : callable, optional
        Called on the connection's thread with each block of response bytes right after it was
        written (benchmarks timestamp the first content chunk with it).

    Examples
    --------
    >>> with FakeOpenAI() as server:
    ...     server.enqueue(TextReply("Hi there", tokens_per_second=100))
    ...     url = server.base_url  # "http://127.0.0.1:PORT/v1"
    """

    def __init__(
        self,
        *,
        port: int = 0,
        default: ResponseSpec | None = None,
        models: ModelsSetting = (DEFAULT_MODEL,),
        api_key: str | None = None,
    ) -> None:
        self._port = port
        self._initial = (default or TextReply(), models)
        self.default: ResponseSpec = self._initial[0]
        self.models: ModelsSetting = models
        self.api_key = api_key
        self.on_write: Callable[[bytes], None] | None = None
        self._lock = threading.Condition()
        self._queue: deque[ResponseSpec] = deque()
        self._requests: list[RecordedRequest] = []
        self._errors: list[BaseException] = []
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> FakeOpenAI:
        """Bind the port and start serving (idempotent); returns ``self``."""
        if self._server is None:
            self._stopping.clear()
            self._server = _Server(self, self._port)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                # close() waits up to one poll interval; short, so fixtures tear down quickly.
                kwargs={"poll_interval": 0.01},
                name=f"fake-openai:{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, cut open connections (stalled replies end at once) and free the port."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
        deadline = time.monotonic() + 5
        with self._lock:
            while self._connections and time.monotonic() < deadline:
                self._lock.wait(0.05)

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- addresses

    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        if self._server is None:
            raise RuntimeError(
                "FakeOpenAI is not running; call start() or use it as a context manager"
            )
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no path)."""
        return f"http://{HOST}:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, what an OpenAI client takes as its base URL."""
        return f"{self.url}/v1"

    # -- scripting

    def enqueue(self, *specs: ResponseSpec) -> None:
        """Queue replies for the next chat-completion requests, in order."""
        with self._lock:
            self._queue.extend(specs)

    @property
    def pending(self) -> int:
        """How many queued replies have not been used yet."""
        with self._lock:
            return len(self._queue)

    def reset(self) -> None:
        """Forget recordings, errors and queued replies; restore the default reply and models."""
        with self._lock:
            self._queue.clear()
            self._requests.clear()
            self._errors.clear()
            self.default, self.models = self._initial

    # -- recording

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[Any]:
        """The JSON bodies of the chat-completion requests, oldest first."""
        return [
            r.json
            for r in self.requests
            if _route(r.path) == "/v1/chat/completions" and r.method == "POST"
        ]

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions raised while answering (a failing :class:`Dynamic`); empty when healthy."""
        with self._lock:
            return list(self._errors)

    def clear(self) -> None:
        """Forget the recorded requests and errors (the queue is kept)."""
        with self._lock:
            self._requests.clear()
            self._errors.clear()

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least ``count`` requests were received; raise ``TimeoutError`` if not."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._requests) >= count, timeout):
                raise TimeoutError(f"got {len(self._requests)} of {count} requests in {timeout} s")
            return list(self._requests)

    # -- used by the handler

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()

    def _record_error(self, exc: BaseException) -> None:
        with self._lock:
            self._errors.append(exc)

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)
                self._lock.notify_all()

    def _plan_for(self, request: RecordedRequest) -> _Plan:
        route = _route(request.path)
        call = _Call.of(request)
        if (
            self.api_key is not None
            and request.headers.get("authorization") != f"Bearer {self.api_key}"
        ):
            body = _error_body(
                "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"
            )
            return _json_plan(401, body)
        if route == "/v1/chat/completions":
            if request.method != "POST":
                return _json_plan(405, _error_body(f"Method {request.method} not allowed."))
            if not isinstance(request.json, dict):
                return _json_plan(
                    400, _error_body("We could not parse the JSON body of your request.")
                )
            with self._lock:
                spec = self._queue.popleft() if self._queue else self.default
            return spec._plan(call)
        if route == "/v1/models" and request.method == "GET":
            models = self.models
            if models is None:
                return _json_plan(200, b'{"object":"list","data":null}')
            if isinstance(models, (list, tuple)):
                data = [
                    dict(m)
                    if isinstance(m, Mapping)
                    else {"id": m, "object": "model", "created": 0, "owned_by": "fake-openai"}
                    for m in models
                ]
                return _json_plan(200, _dumps_compact({"object": "list", "data": data}).encode())
            return cast(ResponseSpec, models)._plan(call)
        return _json_plan(
            404, _error_body(f"Unknown route: {request.method} {route}", code="not_found")
        )


def _route(path: str) -> str:
    return urlsplit(path).path.rstrip("/") or "/"


# --------------------------------------------------------------------------- long markdown replies

_VOCABULARY = (
    "the model stream token buffer notebook kernel cell output render update display latency "
    "throughput server client request response message history context window budget schema "
    "argument result value string number list table chart figure data frame column row index "
    "cache queue thread loop event handler parser markdown syntax heading paragraph code block "
    "naïve café résumé façade → ✓ fast slow small large simple careful steady clear useful "
    "which while because after before every each many few often rarely quickly gently"
)
_WORDS = _VOCABULARY.split()
_NAMES = ["total", "items", "chunks", "tokens", "scores", "rows", "values", "events", "buffer"]


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(6, 16))]
    if rng.random() < 0.3:
        words[rng.randrange(len(words))] = f"`{rng.choice(_NAMES)}`"
    if rng.random() < 0.2:
        k = rng.randrange(len(words))
        words[k] = f"**{words[k]}**"
    if rng.random() < 0.3:
        words[rng.randrange(len(words) - 1)] += ","
    text = " ".join(words)
    return text[0].upper() + text[1:] + rng.choice([".", ".", ".", "!", "?"])


def _block(kind: str, rng: random.Random, number: int) -> str:
    if kind == "title":
        return f"# Notes on {rng.choice(_WORDS)} and {rng.choice(_WORDS)}"
    if kind == "heading":
        return f"## {number}. {' '.join(rng.choice(_WORDS) for _ in range(3)).capitalize()}"
    if kind == "paragraph":
        return " ".join(_sentence(rng) for _ in range(rng.randint(2, 5)))
    if kind == "list":
        bullet = rng.choice(["-", "*", "1."])
        return "\n".join(f"{bullet} {_sentence(rng)}" for _ in range(rng.randint(3, 6)))
    if kind == "code":
        name, arg, k = rng.choice(_NAMES), rng.choice(_NAMES), rng.randint(2, 9)
        return (
            "```python\n"
            f"def summarize_{name}({arg}: list[int]) -> dict[str, int]:\n"
            f'    """{_sentence(rng)}"""\n'
            "    total = 0\n"
            f"    for item in {arg}:\n"
            f"        if item % {k} == 0:\n"
            f"            total += item * {k}\n"
            f'    return {{"total": total, "count": len({arg})}}  # emoji-safe: 🎉\n'
            "```"
        )
    rows = "\n".join(
        f"| {rng.choice(_WORDS)} | {rng.randint(1, 9999)} | {' '.join(rng.sample(_WORDS, 2))} |"
        for _ in range(rng.randint(3, 6))
    )
    return f"| Name | Value | Notes |\n|---|---:|---|\n{rows}"


def make_markdown_tokens(n: int, seed: int = 0) -> list[str]:
    """A realistic markdown reply of exactly ``n`` tokens, the same for the same ``seed``.

    It has a title, headings, paragraphs with inline code and bold, bullet and numbered lists,
    fenced Python code and tables, plus some multi-byte characters. Blocks are never cut in the
    middle (code fences stay balanced): the end is padded with a plain paragraph.

    Parameters
    ----------
    n : int
        The number of tokens (pieces) wanted.
    seed : int
        Seeds the word choices.

    Returns
    -------
    list of str
        Pieces that join into the markdown text; leading whitespace rides with the next word and
        symbols are pieces of their own, roughly as a tokenizer cuts them.
    """
    rng = random.Random(seed)
    piece = re.compile(r"\s*(?:\w+|[^\w\s]+)|\s+")
    tokens: list[str] = []
    order = ["title", "paragraph", "heading", "list", "paragraph", "code", "table"]
    kinds = ["heading", "paragraph", "paragraph", "paragraph", "list", "code", "table"]
    number = 1
    while True:
        kind = order.pop(0) if order else rng.choice(kinds)
        number += kind == "heading"
        text = _block(kind, rng, number)
        block = piece.findall(text if not tokens else "\n\n" + text)
        if len(tokens) + len(block) > n - 4:
            break
        tokens += block
    remaining = n - len(tokens)
    words = [rng.choice(_WORDS) for _ in range(remaining)]
    filler = [("\n\n" if tokens else "") + (words[0].capitalize() if words else "")]
    filler += [" " + w for w in words[1:]]
    if remaining:
        filler[-1] += "."
    return tokens + filler[:remaining]


# --------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    """Serve from the command line until interrupted; print the base URL first."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.fake_openai",
        description="A scripted OpenAI-compatible server on 127.0.0.1 (for benchmarks and demos).",
    )
    parser.add_argument("--port", type=int, default=0, help="port to bind (0: any free port)")
    parser.add_argument("--tokens", type=int, default=None, help="reply with N tokens of markdown")
    parser.add_argument(
        "--rate", type=float, default=None, help="tokens per second (default: unpaced)"
    )
    parser.add_argument(
        "--first-token-delay", type=float, default=0.0, help="seconds before the first token"
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help="model name to report")
    parser.add_argument("--seed", type=int, default=0, help="seed for the generated markdown")
    args = parser.parse_args(argv)

    text: str | list[str] = (
        DEFAULT_TEXT if args.tokens is None else make_markdown_tokens(args.tokens, args.seed)
    )
    default = TextReply(
        text,
        tokens_per_second=args.rate,
        first_token_delay=args.first_token_delay,
        model=args.model,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with FakeOpenAI(port=args.port, default=default, models=[args.model]) as server:
        sys.stdout.write(server.base_url + "\n")
        sys.stdout.flush()
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
