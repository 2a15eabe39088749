"""One HTTP request to an OpenAI-compatible server, turned into typed events and a Completion.

:class:`Client` wraps ``httpx.AsyncClient`` (one connection pool per event loop, reused across
calls), retries failed attempts by the policy of :mod:`~tf_magics.client.retry` and reports each
wait as a :class:`~tf_magics.events.Retrying` event so a UI can say it is waiting. The response
is read by :mod:`~tf_magics.client.stream_reader` into an accumulator that the *caller* owns:
when the stream is cut, fails or is cancelled, the caller still holds everything that arrived.
"""

from __future__ import annotations

import asyncio
import functools
import json
import ssl
from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar

import httpx

from tf_magics._text import redact
from tf_magics._version import __version__
from tf_magics.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    BadRequestError,
    ContextLengthError,
)
from tf_magics.events import Event
from tf_magics.types import Completion

from .chunks import ChunkAccumulator
from .error_bodies import error_for_status, parse_error_body
from .models import ModelInfo, parse_models
from .request import ApiKey, RequestOptions, encode_body
from .retry import RetryableFailure, retry_after, should_retry, with_retries
from .stream_reader import broken_stream, read_json, read_stream

__all__ = ["Client"]

EventSink = Callable[[Event], None]
T = TypeVar("T")


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
        self._pools: dict[asyncio.AbstractEventLoop, dict[bool, httpx.AsyncClient]] = {}
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
                # Without TLS, no certificate is ever checked.
                verify=_ssl_context() if secure else False,
                headers={"user-agent": f"tf_magics/{__version__}"},
                limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
                # A redirect would re-send the conversation (and the key) to an address the
                # user never named, perhaps in cleartext: it is reported, never followed.
                follow_redirects=False,
            )
            pools[secure] = pool
        return pool

    async def aclose(self) -> None:
        """Close the pools that belong to the running event loop.

        A pool can only be closed on its own loop: a script that runs ``asyncio.run`` several
        times should close each loop's pool before it ends (``async with Chat(...)``), or its
        connections stay open until the process ends.
        """
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
        base_url = _require_base_url(options)
        body = self.request_body(options, messages, tools=tools, tool_choice=tool_choice)
        use_stream_options = "stream_options" in body
        content = encode_body(body)
        try:
            return await self._retrying(
                options, lambda: self._attempt(options, content, accumulator, on_event), on_event
            )
        except BadRequestError as error:
            if not (use_stream_options and _mentions_stream_options(error)):
                raise
        # A server that rejects stream_options still works, just without usage numbers.
        self.rejects_stream_options.add(base_url)
        body.pop("stream_options", None)
        content = encode_body(body)
        return await self._retrying(
            options, lambda: self._attempt(options, content, accumulator, on_event), on_event
        )

    def request_body(
        self,
        options: RequestOptions,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = None,
    ) -> dict[str, Any]:
        """The JSON body :meth:`chat` sends for these messages (a dry run shows the same one)."""
        extra: dict[str, Any] = {}
        if tools:
            extra["tools"] = tools
        if tool_choice is not None:
            extra["tool_choice"] = tool_choice
        base_url = (options.base_url or "").rstrip("/")
        if options.stream and options.include_usage and base_url not in self.rejects_stream_options:
            extra["stream_options"] = {"include_usage": True}
        return options.request_body(messages, **extra)

    async def list_models(self, options: RequestOptions) -> list[ModelInfo]:
        """``GET /models``; an empty list when the server has none (or ``data: null``)."""
        base_url = _require_base_url(options)
        response = await self._send(options, "GET", f"{base_url}/models", None, stream=False)
        return parse_models(response.content)

    # -- the request loop --

    async def _retrying(
        self,
        options: RequestOptions,
        attempt_once: Callable[[], Awaitable[T]],
        on_event: EventSink | None,
    ) -> T:
        return await with_retries(
            attempt_once, max_retries=options.max_retries, on_event=on_event, sleep=self._sleep
        )

    async def _attempt(
        self,
        options: RequestOptions,
        content: bytes,
        accumulator: ChunkAccumulator,
        on_event: EventSink | None,
    ) -> Completion:
        url = f"{_require_base_url(options)}/chat/completions"
        pool = self._pool(url)
        request = pool.build_request(
            "POST", url, content=content, headers=_headers(options), timeout=_timeout(options)
        )
        try:
            response = await pool.send(request, stream=True, auth=_auth(options))
        except httpx.TimeoutException as error:
            raise RetryableFailure(_timeout_error(options, error), None) from None
        except httpx.HTTPError as error:
            raise RetryableFailure(_connection_error(options, error), None) from None
        try:
            if response.is_redirect:
                raise _redirected(options, response)
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
                return await read_stream(options, response, accumulator, on_event)
            # Not a stream (the server ignored ``stream`` or we asked for none): one JSON body.
            try:
                await response.aread()
            except httpx.HTTPError as error:
                # The reply had started: not retried, reported like a broken stream.
                raise broken_stream(options, error, accumulator) from None
            return read_json(options, response, accumulator)
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
                    content=None if body is None else encode_body(body),
                    headers={"accept": "application/json"} if body is None else _headers(options),
                    timeout=_timeout(options),
                    auth=_auth(options),
                )
            except httpx.TimeoutException as error:
                raise RetryableFailure(_timeout_error(options, error), None) from None
            except httpx.HTTPError as error:
                raise RetryableFailure(_connection_error(options, error), None) from None
            if response.is_redirect:
                raise _redirected(options, response)
            if response.status_code >= 400:
                raise _status_failure(options, response, response.content)
            return response

        return await self._retrying(options, attempt_once, None)


# -- helpers (module level: no state) --


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Building a context (loading the CA bundle) costs ~0.1 s; every pool shares one.
    return httpx.create_ssl_context()


def _require_base_url(options: RequestOptions) -> str:
    if not options.base_url:
        raise APIConnectionError("No base URL is configured.")
    return options.base_url.rstrip("/")


def _headers(options: RequestOptions, *, stream: bool | None = None) -> httpx.Headers:
    """The request headers, without the key.

    :class:`_BearerAuth` adds the key inside httpx, so no frame of ours holds it (a verbose
    traceback prints the locals of every frame).
    """
    streaming = options.stream if stream is None else stream
    accept = "text/event-stream" if streaming else "application/json"
    return httpx.Headers({"accept": accept, "content-type": "application/json"})


class _BearerAuth(httpx.Auth):
    """Adds the ``Authorization`` header as the request leaves; its repr shows no key."""

    def __init__(self, key: ApiKey) -> None:
        self._key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["authorization"] = "Bearer " + self._key.reveal()
        yield request

    def __repr__(self) -> str:
        return f"<bearer auth: {self._key!r}>"


def _auth(options: RequestOptions) -> httpx.Auth | None:
    return _BearerAuth(options.api_key) if options.api_key is not None else None


def _redirected(options: RequestOptions, response: httpx.Response) -> APIConnectionError:
    """The error for a redirect: reported, never followed."""
    target = redact(response.headers.get("location", "(no location)"), options.secrets())
    return APIConnectionError(
        f"{options.base_url} answered {response.status_code} and points elsewhere ({target}); "
        "tf_magics does not follow redirects, so the conversation and the key stay where "
        "you sent them.",
        hint="If that address is the right one, use it as the base URL.",
    )


def _timeout(options: RequestOptions) -> httpx.Timeout:
    return httpx.Timeout(
        connect=options.connect_timeout,
        read=options.read_timeout,
        write=options.read_timeout,
        pool=options.connect_timeout,
    )


def _status_failure(options: RequestOptions, response: httpx.Response, content: bytes) -> Exception:
    """The error for a 4xx/5xx response: a :class:`RetryableFailure` when worth retrying."""
    info = parse_error_body(content, secrets=options.secrets())
    error = error_for_status(
        response.status_code,
        info,
        base_url=options.base_url or "",
        key_sent=options.api_key is not None,
        key_source=options.key_source,
        withheld=options.withheld_key,
    )
    # A prompt too long for the model fails the same way every time, whatever the status.
    if not should_retry(response, info) or isinstance(error, ContextLengthError):
        return error
    delay = retry_after(response.headers)
    if delay is not None and delay > options.max_retry_wait:
        # Retrying sooner than asked would only be refused again: say how long, and stop.
        error.hint = (
            f"The server asks to wait {delay:,.0f} s before trying again (more than "
            f"max_retry_wait, {options.max_retry_wait:g} s): run the cell again later, or raise "
            "ChatSettings.max_retry_wait."
        )
        return error
    return RetryableFailure(error, delay)


def _timeout_error(options: RequestOptions, error: Exception) -> APITimeoutError:
    kind = "connect" if isinstance(error, httpx.ConnectTimeout) else "read"
    limit = options.connect_timeout if kind == "connect" else options.read_timeout
    return APITimeoutError(
        f"No answer from {options.base_url} within {limit:g} s ({kind} timeout).",
        hint="Check the server is up, or raise ChatSettings.read_timeout / connect_timeout.",
    )


def _connection_error(options: RequestOptions, error: Exception) -> APIConnectionError:
    detail = redact(str(error), options.secrets()) or type(error).__name__
    return APIConnectionError(
        f"Could not connect to {options.base_url} ({detail}).",
        hint=f"Is the server running? The base URL comes from {options.base_url_source}.",
    )


def _mentions_stream_options(error: APIStatusError) -> bool:
    text = f"{error.message} {json.dumps(error.body, default=str)}".lower()
    return "stream_options" in text or "include_usage" in text
