"""One HTTP exchange, as the response specs and the server share it.

The server records what it received as a :class:`RecordedRequest`, hands a :class:`Call` (the
request plus what a spec needs to know about it) to the spec that answers, and writes the
:class:`Plan` the spec returns: the status, the headers, and each block of bytes with the time it
is due. Specs never touch a socket; the server never knows what a reply means.

Only :class:`RecordedRequest` is part of the package's public API; the rest is the contract
between :mod:`~tf_testing.fake_openai.specs` and :mod:`~tf_testing.fake_openai.server`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

__all__ = ["Call", "Part", "Plan", "RecordedRequest", "dumps_compact", "error_body", "json_plan"]

#: Compact JSON (``{"a":1}``), non-ASCII kept as is. One encoder for all: ``json.dumps`` with
#: keyword arguments builds a new encoder per call, which is most of the cost of encoding 8,000
#: tiny chunks.
dumps_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def error_body(
    message: str, type_: str = "invalid_request_error", code: Any = None, param: str | None = None
) -> bytes:
    """An OpenAI-shaped error body: ``{"error": {"message", "type", "param", "code"}}``."""
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return dumps_compact(body).encode()


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
class Call:
    """What a spec needs to know about the request it answers."""

    request: RecordedRequest
    stream: bool
    include_usage: bool
    requested_model: str | None

    @classmethod
    def of(cls, request: RecordedRequest) -> Call:
        """Read ``stream``, ``stream_options.include_usage`` and ``model`` from the JSON body."""
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


class Part(NamedTuple):  # a tuple: built once per token, so it must be cheap
    """One block of the response body and when it is due."""

    due: float  # seconds after the response started
    data: bytes


@dataclass
class Plan:
    """How to write one response: what, when, how it ends (built by a spec, run by the server)."""

    status: int
    headers: list[tuple[str, str]]
    parts: list[Part] = field(default_factory=list)
    # "chunked": Transfer-Encoding: chunked; "length": Content-Length; "close": body until close.
    framing: Literal["chunked", "length", "close"] = "chunked"
    send_head: bool = True
    # "abort" closes the socket without finishing the body (no terminating chunk).
    end: Literal["complete", "abort"] = "complete"
    end_at: float = 0.0  # hold the connection until this offset before ending (Hang)
    declared_length: int | None = None  # Content-Length to announce when it is not the sum of parts
    coalesce: bool = True  # may several parts due together share one HTTP chunk?


def json_plan(
    status: int, body: bytes, headers: Sequence[tuple[str, str]] = (), due: float = 0.0
) -> Plan:
    """A whole ``application/json`` body with a ``Content-Length``, sent at ``due`` seconds."""
    return Plan(
        status,
        [("content-type", "application/json"), *headers],
        [Part(due, body)],
        framing="length",
    )
