"""One HTTP request to an OpenAI-compatible server, turned into typed events and a Completion.

:class:`Client` wraps ``httpx.AsyncClient`` (one connection pool per event loop, reused across
calls). It retries like the official SDK — connection errors, timeouts, 408, 409, 429 and 5xx, at
most ``max_retries`` times, only before any reply byte was consumed, honouring ``retry-after-ms`` /
``retry-after`` up to 60 s and ``x-should-retry`` — and reports each wait as a
:class:`~tf_magics._types.Retrying` event so a UI can say it is waiting.

Streaming replies are parsed with :class:`~tf_magics._sse.SSEDecoder` and folded by a
:class:`~tf_magics._stream.ChunkAccumulator` that the *caller* owns: when the stream is cut, fails
or is cancelled, the caller still holds everything that arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import email.utils
import functools
import json
import random
import ssl
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from . import __version__
from ._error_bodies import ErrorInfo, error_for_status, parse_error_body
from ._sse import SSEDecoder
from ._stream import ChunkAccumulator
from ._types import Completion, ContentDelta, Event, ReasoningDelta, Retrying
from .errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    BadRequestError,
    ContextLengthError,
    EmptyStreamError,
    IncompleteStreamError,
)
from .settings import RequestOptions

__all__ = ["Client", "ModelInfo"]

EventSink = Callable[[Event], None]
T = TypeVar("T")

_RETRY_STATUSES = {408, 409, 429}
_MAX_RETRY_AFTER = 60.0
#: How long to wait for the end of the body after ``[DONE]`` (so the connection can be reused).
_DRAIN_SECONDS = 1.0


@dataclass(frozen=True)
class ModelInfo:
    """One entry of ``GET /models``."""

    id: str
    owned_by: str | None = None
    context_length: int | None = None


class _Retry(Exception):
    """Internal: this attempt failed in a retryable way."""

    def __init__(self, error: APIError, delay: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.delay = delay


class Client:
    """Async client for ``/chat/completions`` and ``/models``.

    Parameters
    ----------
    transport
        An httpx transport to use instead of the network (tests use a real loopback server; a
        transport is for pure unit tests).
    sleep
        Coroutine used to wait between retries (injected so tests need not wait).
    """

    def __init__(
        self,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._transport = transport
        self._sleep = sleep
        # One pool per event loop (an httpx.AsyncClient cannot be shared between loops) and per
        # scheme: a plain-http pool (a local server) never needs the TLS context, which costs
        # ~0.1 s to build.
        self._pools: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[bool, httpx.AsyncClient]
        ] = weakref.WeakKeyDictionary()
        #: Base URLs that rejected ``stream_options``; it is not sent to them again.
        self.rejects_stream_options: set[str] = set()
        #: Base URLs that answer streamed requests with tools with an empty stream.
        self.cannot_stream_tools: set[str] = set()
        #: ``GET /models`` answers per base URL (the first one is the default model).
        self.models_cache: dict[str, list[ModelInfo]] = {}

    def _pool(self, url: str) -> httpx.AsyncClient:
        secure = not url.startswith("http://")
        pools = self._pools.setdefault(asyncio.get_running_loop(), {})
        pool = pools.get(secure)
        if pool is None or pool.is_closed:
            pool = httpx.AsyncClient(
                transport=self._transport,
                # Without TLS, no certificate is ever checked; and no redirect is followed, so
                # a plain-http pool can never be led to an https URL.
                verify=_ssl_context() if secure else False,
                headers={"user-agent": f"tf_magics/{__version__}"},
                limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
                follow_redirects=secure,
            )
            pools[secure] = pool
        return pool

    async def aclose(self) -> None:
        """Close the pools that belong to the running event loop."""
        pools = self._pools.pop(asyncio.get_running_loop(), {})
        for pool in pools.values():
            await pool.aclose()

    # -- public API --

    async def chat(
        self,
        options: RequestOptions,
        messages: list[dict[str, Any]],
        accumulator: ChunkAccumulator,
        *,
        on_event: EventSink | None = None,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = None,
    ) -> Completion:
        """Send one chat-completion request and return the assembled reply.

        Streaming or not follows ``options.stream``. Deltas are reported through ``on_event`` and
        folded into ``accumulator`` as they arrive.

        Raises
        ------
        APIError
            Any failure; stream failures carry the partial reply in ``partial``.
        """
        extra: dict[str, Any] = {}
        if tools:
            extra["tools"] = tools
        if tool_choice is not None:
            extra["tool_choice"] = tool_choice
        base_url = _require_base_url(options)
        use_stream_options = (
            options.stream and options.include_usage and base_url not in self.rejects_stream_options
        )
        if use_stream_options:
            extra["stream_options"] = {"include_usage": True}
        body = options.request_body(messages, **extra)
        try:
            return await self._with_retries(
                options, lambda: self._attempt(options, body, accumulator, on_event), on_event
            )
        except BadRequestError as error:
            if not (use_stream_options and _mentions_stream_options(error)):
                raise
        # A server that rejects stream_options still works, just without usage numbers.
        self.rejects_stream_options.add(base_url)
        body.pop("stream_options", None)
        return await self._with_retries(
            options, lambda: self._attempt(options, body, accumulator, on_event), on_event
        )

    async def list_models(self, options: RequestOptions) -> list[ModelInfo]:
        """``GET /models``; an empty list when the server has none (or ``data: null``)."""
        base_url = _require_base_url(options)
        response = await self._send(options, "GET", f"{base_url}/models", None, stream=False)
        try:
            payload = json.loads(response.content)
        except ValueError:
            return []
        data = payload.get("data") if isinstance(payload, dict) else payload
        models = []
        for item in data if isinstance(data, list) else []:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                models.append(
                    ModelInfo(
                        id=item["id"],
                        owned_by=item["owned_by"]
                        if isinstance(item.get("owned_by"), str)
                        else None,
                        context_length=_context_length(item),
                    )
                )
        return models

    # -- the request loop --

    async def _with_retries(
        self,
        options: RequestOptions,
        attempt_once: Callable[[], Awaitable[T]],
        on_event: EventSink | None,
    ) -> T:
        """Run ``attempt_once`` until it succeeds, fails for good, or the retries run out."""
        attempts = options.max_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                return await attempt_once()
            except _Retry as retry:
                if attempt == attempts:
                    raise retry.error from None
                delay = retry.delay if retry.delay is not None else _backoff(attempt)
                if on_event is not None:
                    on_event(Retrying(attempt, attempts - 1, delay, str(retry.error)))
                await self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(
        self,
        options: RequestOptions,
        body: dict[str, Any],
        accumulator: ChunkAccumulator,
        on_event: EventSink | None,
    ) -> Completion:
        url = f"{_require_base_url(options)}/chat/completions"
        pool = self._pool(url)
        headers = _headers(options, stream=bool(body.get("stream")))
        request = pool.build_request(
            "POST", url, json=body, headers=headers, timeout=_timeout(options)
        )
        try:
            response = await pool.send(request, stream=True)
        except httpx.TimeoutException as error:
            raise _Retry(_timeout_error(options, error), None) from None
        except httpx.HTTPError as error:
            raise _Retry(_connection_error(options, error), None) from None
        try:
            if response.status_code >= 400:
                try:
                    await response.aread()
                    content = response.content
                except httpx.HTTPError:
                    content = b""  # the error body broke off: the status alone must do
                raise _status_failure(options, response, content)
            content_type = response.headers.get("content-type", "").lower()
            if content_type.startswith("text/event-stream"):
                # Parsed as a stream even when none was asked for (a server that ignores it).
                return await _read_stream(options, response, accumulator, on_event)
            # Not a stream (the server ignored ``stream`` or we asked for none): one JSON body.
            try:
                await response.aread()
            except httpx.HTTPError as error:
                # The reply had started: not retried, reported like a broken stream.
                raise _broken_stream(options, error, accumulator) from None
            return _read_json(options, response, accumulator)
        finally:
            await response.aclose()

    async def _send(
        self, options: RequestOptions, method: str, url: str, body: Any, *, stream: bool
    ) -> httpx.Response:
        """A simple request with the same retry policy, read whole."""
        pool = self._pool(url)

        async def attempt_once() -> httpx.Response:
            try:
                response = await pool.request(
                    method,
                    url,
                    json=body,
                    headers=_headers(options, stream=stream),
                    timeout=_timeout(options),
                )
            except httpx.TimeoutException as error:
                raise _Retry(_timeout_error(options, error), None) from None
            except httpx.HTTPError as error:
                raise _Retry(_connection_error(options, error), None) from None
            if response.status_code >= 400:
                raise _status_failure(options, response, response.content)
            return response

        return await self._with_retries(options, attempt_once, None)


# -- helpers (module level: no state) --


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Building a context (loading the CA bundle) costs ~0.1 s; every pool shares one.
    return httpx.create_ssl_context()


def _require_base_url(options: RequestOptions) -> str:
    if not options.base_url:
        raise APIConnectionError("No base URL is configured.")
    return options.base_url.rstrip("/")


def _headers(options: RequestOptions, *, stream: bool) -> dict[str, str]:
    headers = {"accept": "text/event-stream" if stream else "application/json"}
    if options.api_key:
        headers["authorization"] = f"Bearer {options.api_key}"
    return headers


def _timeout(options: RequestOptions) -> httpx.Timeout:
    return httpx.Timeout(
        connect=options.connect_timeout,
        read=options.read_timeout,
        write=options.read_timeout,
        pool=options.connect_timeout,
    )


def _backoff(attempt: int) -> float:
    # The official SDK's schedule: 0.5 s doubling, capped at 8 s, minus up to 25 % jitter.
    base: float = min(0.5 * 2.0 ** (attempt - 1), 8.0)
    return base * (1 - 0.25 * random.random())


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after-ms")
    if value:
        try:
            seconds = float(value) / 1000
        except ValueError:
            seconds = -1.0
        if 0 <= seconds <= _MAX_RETRY_AFTER:
            return seconds
    value = headers.get("retry-after")
    if value:
        try:
            seconds = float(value)
        except ValueError:
            seconds = _seconds_until(value)
        if 0 <= seconds <= _MAX_RETRY_AFTER:
            return seconds
    return None


def _seconds_until(http_date: str) -> float:
    """Seconds from now until an HTTP date (``-1`` when it cannot be read)."""
    try:
        when = email.utils.parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError, OverflowError):
        return -1.0
    if when.tzinfo is None:  # "-0000": UTC, by RFC 5322
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.timestamp() - time.time()


def _status_failure(options: RequestOptions, response: httpx.Response, content: bytes) -> Exception:
    """The error for a 4xx/5xx response: a :class:`_Retry` when worth retrying."""
    info = parse_error_body(content)
    error = error_for_status(
        response.status_code,
        info,
        base_url=options.base_url or "",
        key_sent=bool(options.api_key),
        key_source=options.key_source,
        secret=options.api_key,
    )
    # A prompt too long for the model fails the same way every time, whatever the status.
    if _should_retry(response, info) and not isinstance(error, ContextLengthError):
        return _Retry(error, _retry_after(response.headers))
    return error


def _should_retry(response: httpx.Response, info: ErrorInfo) -> bool:
    explicit = response.headers.get("x-should-retry")
    if explicit == "true":
        return True
    if explicit == "false":
        return False
    status = response.status_code
    if status == 429 and "insufficient_quota" in (info.code, info.type):
        return False
    return status in _RETRY_STATUSES or status >= 500


def _timeout_error(options: RequestOptions, error: Exception) -> APITimeoutError:
    kind = "connect" if isinstance(error, httpx.ConnectTimeout) else "read"
    limit = options.connect_timeout if kind == "connect" else options.read_timeout
    return APITimeoutError(
        f"No answer from {options.base_url} within {limit:g} s ({kind} timeout).",
        hint="Check the server is up, or raise ChatSettings.read_timeout / connect_timeout.",
    )


def _connection_error(options: RequestOptions, error: Exception) -> APIConnectionError:
    detail = _redact(str(error), options.api_key) or type(error).__name__
    return APIConnectionError(
        f"Could not connect to {options.base_url} ({detail}).",
        hint=f"Is the server running? The base URL comes from {options.base_url_source}.",
    )


def _mentions_stream_options(error: APIStatusError) -> bool:
    text = f"{error.message} {json.dumps(error.body, default=str)}".lower()
    return "stream_options" in text or "include_usage" in text


def _redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def _context_length(item: dict[str, Any]) -> int | None:
    for value in (
        item.get("max_model_len"),  # vLLM
        item.get("context_length"),  # OpenRouter
        item.get("context_window"),  # Groq
        (item.get("meta") or {}).get("n_ctx") if isinstance(item.get("meta"), dict) else None,
    ):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _raise_stream_error(
    options: RequestOptions, error: dict[str, Any], accumulator: ChunkAccumulator
) -> None:
    info = parse_error_body({"error": error})
    failure = error_for_status(
        None,
        info,
        base_url=options.base_url or "",
        key_sent=bool(options.api_key),
        key_source=options.key_source,
        secret=options.api_key,
    )
    failure.partial = accumulator.completion(ended="error")
    raise failure


async def _read_stream(
    options: RequestOptions,
    response: httpx.Response,
    accumulator: ChunkAccumulator,
    on_event: EventSink | None,
) -> Completion:
    decoder = SSEDecoder()
    done = False
    received = False
    sink = _DeltaBatch(on_event) if on_event is not None else None
    # Decoded bytes, not raw ones: a proxy may gzip the stream.
    chunks = response.aiter_bytes()
    try:
        async for raw in chunks:
            received = received or bool(raw)
            _apply_payloads(options, decoder.feed_json(raw), accumulator, sink)
            for event in decoder.take_events():
                if _apply_event(options, event.event, event.data, accumulator, sink):
                    done = True
                    break
            if sink is not None:
                sink.flush()
            if done:
                break
        else:
            for event in decoder.flush():
                if _apply_event(options, event.event, event.data, accumulator, sink):
                    done = True
                    break
    except httpx.HTTPError as error:
        raise _broken_stream(options, error, accumulator) from None
    finally:
        if sink is not None:
            sink.flush()
    if done:
        await _drain(chunks)
        return accumulator.completion(ended="done")
    if accumulator.finish_reason is not None:
        return accumulator.completion(ended="finished")
    if accumulator.chunks == 0 and not received:
        raise EmptyStreamError(
            f"{options.base_url} answered 200 with an empty stream.",
            hint="llama-cpp-python does this when the prompt exceeds its context window "
            "(trim the history) or when it cannot stream tool calls.",
            partial=accumulator.completion(ended="incomplete"),
        )
    raise IncompleteStreamError(
        f"The stream from {options.base_url} ended before the reply was finished.",
        hint="The partial reply is kept; run the cell again.",
        partial=accumulator.completion(ended="incomplete"),
    )


class _DeltaBatch:
    """Joins the text deltas of one network read into one event.

    A fast server packs a hundred tokens into one read: handing them on one by one would make
    the consumer (a queue to another thread, then the live view) pay per token, not per read.
    A slow stream is unchanged (one token per read).
    """

    def __init__(self, sink: EventSink) -> None:
        self._sink = sink
        self._kind: type[ContentDelta] | type[ReasoningDelta] | None = None
        self._parts: list[str] = []

    def __call__(self, event: Event) -> None:
        if isinstance(event, ContentDelta | ReasoningDelta):
            if type(event) is not self._kind:
                self.flush()
                self._kind = type(event)
            self._parts.append(event.text)
            return
        self.flush()
        self._sink(event)

    def flush(self) -> None:
        """Hand on what was gathered."""
        if self._kind is not None and self._parts:
            self._sink(self._kind("".join(self._parts)))
        self._kind, self._parts = None, []


def _broken_stream(
    options: RequestOptions, error: httpx.HTTPError, accumulator: ChunkAccumulator
) -> IncompleteStreamError:
    """The error for a reply that stalled or broke off after it had started."""
    if isinstance(error, httpx.TimeoutException):
        return IncompleteStreamError(
            f"The reply from {options.base_url} stalled for {options.read_timeout:g} s.",
            hint="The partial reply is kept; run the cell again or raise read_timeout.",
            partial=accumulator.completion(ended="incomplete"),
        )
    detail = _redact(str(error), options.api_key) or type(error).__name__
    return IncompleteStreamError(
        f"The reply from {options.base_url} broke off ({detail}).",
        hint="The partial reply is kept; run the cell again.",
        partial=accumulator.completion(ended="incomplete"),
    )


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    """Read what follows ``[DONE]`` (normally just the end of the body), briefly.

    An unfinished body cannot go back to the pool: without this, every streamed reply would
    cost a new connection. A server that keeps the body open after ``[DONE]`` is given up on.
    """

    async def consume() -> None:
        async for _ in chunks:
            pass

    # On failure the reply is still complete; the connection is simply not reused.
    with contextlib.suppress(httpx.HTTPError, asyncio.TimeoutError):
        await asyncio.wait_for(consume(), _DRAIN_SECONDS)


def _apply_event(
    options: RequestOptions,
    name: str,
    data: str,
    accumulator: ChunkAccumulator,
    on_event: EventSink | None,
) -> bool:
    """Apply one SSE event; True when it was the end marker."""
    if data.strip() == "[DONE]":
        return True
    try:
        payload = json.loads(data)
    except ValueError:
        if name == "error":
            _raise_stream_error(options, {"message": data}, accumulator)
        return False  # a keep-alive or a line we do not understand
    if name == "error" and isinstance(payload, dict) and "error" not in payload:
        payload = {"error": payload}
    _emit(accumulator.feed(payload), on_event)
    if accumulator.error is not None:
        _raise_stream_error(options, accumulator.error, accumulator)
    if name == "error":
        # An error frame whatever its payload looks like (a bare string, an empty object).
        _raise_stream_error(options, {"message": data.strip()}, accumulator)
    _check_finish(options, accumulator)
    return False


def _apply_payloads(
    options: RequestOptions,
    payloads: Iterator[Any],
    accumulator: ChunkAccumulator,
    on_event: EventSink | None,
) -> None:
    """Apply the decoded payloads of plain ``message`` events (never the end marker)."""
    _emit(accumulator.feed_many(payloads), on_event)
    if accumulator.error is not None:
        _raise_stream_error(options, accumulator.error, accumulator)
    _check_finish(options, accumulator)


def _emit(events: list[Event], on_event: EventSink | None) -> None:
    if on_event is not None:
        for event in events:
            on_event(event)


def _check_finish(options: RequestOptions, accumulator: ChunkAccumulator) -> None:
    if accumulator.finish_reason == "error":
        _raise_stream_error(
            options, {"message": "the provider ended the reply with an error"}, accumulator
        )


def _read_json(
    options: RequestOptions, response: httpx.Response, accumulator: ChunkAccumulator
) -> Completion:
    try:
        payload = json.loads(response.content)
    except ValueError:
        raise APIStatusError(
            f"{options.base_url} sent a reply that is not JSON "
            f"({response.headers.get('content-type', 'no content type')}).",
            status_code=response.status_code,
            body=_redact(response.text[:500], options.api_key),
            hint="Check the base URL points at an OpenAI-compatible API (usually ending in /v1).",
        ) from None
    accumulator.feed(payload)
    if accumulator.error is not None:
        _raise_stream_error(options, accumulator.error, accumulator)
    if isinstance(payload, dict) and not isinstance(payload.get("choices"), list):
        raise APIStatusError(
            f"{options.base_url} sent a JSON reply without choices.",
            status_code=response.status_code,
            body=payload,
            hint="Check the base URL points at an OpenAI-compatible chat-completions API.",
        )
    return accumulator.completion(ended="complete")
