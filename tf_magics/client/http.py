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
from tf_magics.cost import Price
from tf_magics.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    BadRequestError,
    ContextLengthError,
)
from tf_magics.events import Event, Notice
from tf_magics.schema import ResponseSchema
from tf_magics.types import Completion

from .chunks import ChunkAccumulator
from .error_bodies import error_for_status, parse_error_body
from .gate import RequestGate
from .models import ModelInfo, parse_models
from .request import ApiKey, RequestOptions, encode_body
from .response_format import LAST_FORM, apply_form, describe_fallback, is_rejection
from .retry import RetryableFailure, retry_after, should_retry, with_retries
from .spending import within_cap
from .stream_reader import broken_stream, read_json, read_stream

__all__ = ["MAX_CONNECTIONS", "Client"]

#: Connections per pool: the most requests one client can have in flight at once.
MAX_CONNECTIONS = 256

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
        # One pool per event loop (an httpx.AsyncClient cannot be shared between loops), per
        # scheme (a plain-http pool, a local server, never needs the TLS context, which costs
        # ~0.1 s to build) and per lane of a gate (see _pool).
        self._pools: dict[
            asyncio.AbstractEventLoop, dict[tuple[bool, int | None], httpx.AsyncClient]
        ] = {}
        #: Base URLs that rejected ``stream_options``; it is not sent to them again.
        self.rejects_stream_options: set[str] = set()
        #: Base URLs that answer streamed requests with tools with an empty stream.
        self.cannot_stream_tools: set[str] = set()
        #: ``GET /models`` answers per base URL (the first one is the default model).
        self.models_cache: dict[str, list[ModelInfo]] = {}
        #: The ``response_format`` form that works, per (base URL, model), when not the first
        #: (see :mod:`~tf_magics.client.response_format`).
        self.response_formats: dict[tuple[str, str], int] = {}

    def _pool(self, url: str, lane: int | None = None) -> httpx.AsyncClient:
        """The connection pool for ``url``'s scheme on this loop, for one lane of a gate or all.

        With many requests in flight, httpcore's shared pool hands one idle connection to several
        waiting requests and has all but one try again: at 32 in flight that costs a few
        milliseconds of CPU per request. A gate's attempts each hold a lane (see
        :class:`~tf_magics.client.gate.RequestGate`), and a lane has a pool of its own with one
        request at a time in it: a map reuses its connections without that contention.
        """
        secure = not url.startswith("http://")
        pools = self._pools.setdefault(asyncio.get_running_loop(), {})
        pool = pools.get((secure, lane))
        if pool is None or pool.is_closed:
            size = MAX_CONNECTIONS if lane is None else 2
            pool = _new_pool(self._transport, secure=secure, size=size)
            pools[(secure, lane)] = pool
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

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

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
        response_format: ResponseSchema | None = None,
        gate: RequestGate | None = None,
    ) -> Completion:
        """Send one chat-completion request and return the assembled reply.

        Streaming or not follows ``options.stream``. Deltas are reported through ``on_event`` and
        folded into ``accumulator`` as they arrive. With ``response_format``, a structured reply
        is asked for in the best form the server accepts (see
        :mod:`~tf_magics.client.response_format`; the reply is not checked here). With ``gate``,
        every attempt on the wire is made inside ``gate.attempt()``.

        A request sent counts against the spending cap (:mod:`~tf_magics.client.spending`). One
        with a ``ChatHook`` (record/replay) goes to the hook, which answers it or sends it.

        Raises
        ------
        BudgetExceededError
            When its worst case does not fit under the cap (nothing is sent).
        APIError
            Any failure; stream failures carry the partial reply in ``partial``.
        """
        extra = _extra(tools, tool_choice)

        async def live(ready: RequestOptions, sink: EventSink | None) -> Completion:
            # With a hook, ``ready`` is normally ready already: what is left costs nothing.
            ready = await ready.ready()
            worst = _body(ready, messages, extra, False, response_format, 0)  # the largest form
            return await within_cap(
                ready,
                worst,
                self.price_for(ready),
                accumulator,
                lambda: self._send_chat(
                    ready, messages, dict(extra), accumulator, sink, response_format, gate
                ),
            )

        if options.hook is None:
            return await live(options, on_event)
        # The key of a recording: the request in its first form, whatever the server took.
        body = _body(options, messages, extra, False, response_format, 0)
        return await options.hook.exchange(options, body, accumulator, on_event, live)

    def price_for(self, options: RequestOptions) -> Price | None:
        """The price of a request's model: the settings', else what its server publishes."""
        published = self.models_cache.get(options.base_url or "") or []
        return options.price({m.id: m.price for m in published if m.price is not None})

    async def _send_chat(
        self,
        options: RequestOptions,
        messages: list[dict[str, Any]],
        extra: dict[str, Any],
        accumulator: ChunkAccumulator,
        on_event: EventSink | None,
        response_format: ResponseSchema | None,
        gate: RequestGate | None,
    ) -> Completion:
        """The request, sent again in a simpler form when the server refuses a field."""
        key = (_require_base_url(options), options.model or "")
        while True:
            form = self.response_formats.get(key, 0) if response_format is not None else None
            body = self._body_now(options, messages, extra, response_format)
            stream_options = "stream_options" in body
            content = encode_body(body)
            refused = is_rejection if form is not None and form < LAST_FORM else None
            try:
                return await self._retrying(
                    options,
                    functools.partial(
                        self._attempt, options, content, accumulator, on_event, refused
                    ),
                    on_event,
                    gate,
                )
            except APIStatusError as error:
                if not _fall_back(self, error, key, stream_options, form, on_event):
                    raise

    def request_body(
        self,
        options: RequestOptions,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = None,
        response_format: ResponseSchema | None = None,
    ) -> dict[str, Any]:
        """The JSON body :meth:`chat` would send now (a dry run shows the same one)."""
        return self._body_now(options, messages, _extra(tools, tool_choice), response_format)

    def _body_now(
        self,
        options: RequestOptions,
        messages: list[dict[str, Any]],
        extra: dict[str, Any],
        response_format: ResponseSchema | None,
    ) -> dict[str, Any]:
        """The body in the form this server is known to take (its refusals remembered)."""
        base_url = (options.base_url or "").rstrip("/")
        key = (base_url, options.model or "")
        form = self.response_formats.get(key, 0) if response_format is not None else None
        stream_options = (
            options.stream and options.include_usage and base_url not in self.rejects_stream_options
        )
        return _body(options, messages, extra, stream_options, response_format, form)

    async def list_models(self, options: RequestOptions) -> list[ModelInfo]:
        """``GET /models``; an empty list when the server has none (or ``data: null``)."""
        response = await self.send(options, "GET", "/models")
        return parse_models(response.content)

    # -- the request loop --

    async def _retrying(
        self,
        options: RequestOptions,
        attempt: Callable[[int | None], Awaitable[T]],
        on_event: EventSink | None,
        gate: RequestGate | None = None,
    ) -> T:
        """Run ``attempt(lane)`` with the retry policy; inside ``gate`` when there is one."""

        async def attempt_once() -> T:
            if gate is None:
                return await attempt(None)
            # The gate holds the attempt only: the wait before a retry happens outside it.
            async with gate.attempt() as lane:
                return await attempt(lane)

        return await with_retries(
            attempt_once, max_retries=options.max_retries, on_event=on_event, sleep=self._sleep
        )

    async def _attempt(
        self,
        options: RequestOptions,
        content: bytes,
        accumulator: ChunkAccumulator,
        on_event: EventSink | None,
        refused: Callable[[APIStatusError], bool] | None = None,
        lane: int | None = None,
    ) -> Completion:
        url = f"{_require_base_url(options)}/chat/completions"
        pool = self._pool(url, lane)
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
                raise _status_failure(options, response, content, refused)
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

    async def send(
        self,
        options: RequestOptions,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
        data: dict[str, str] | None = None,
    ) -> httpx.Response:
        """One plain request under the base URL (``path`` like ``"/models"``), read whole.

        The same retry policy, key binding, redirect refusal and error reporting as a chat
        request. ``body`` is sent as JSON; ``files`` and ``data`` as a multipart form.

        Raises
        ------
        APIError
            Any failure, after the retries.
        """
        url = f"{_require_base_url(options)}{path}"
        pool = self._pool(url)
        content = None if body is None else encode_body(body)
        headers = httpx.Headers({"accept": "application/json"})
        if content is not None:
            headers["content-type"] = "application/json"

        async def attempt_once(_lane: int | None) -> httpx.Response:
            return await _plain_attempt(
                pool, options, method, url, content=content, files=files, data=data, headers=headers
            )

        return await self._retrying(options, attempt_once, None)


# -- helpers (module level: no state) --


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Building a context (loading the CA bundle) costs ~0.1 s; every pool shares one.
    return httpx.create_ssl_context()


async def _plain_attempt(
    pool: httpx.AsyncClient,
    options: RequestOptions,
    method: str,
    url: str,
    **request: Any,
) -> httpx.Response:
    """One attempt of a plain request, its failures sorted as the retry policy needs them."""
    try:
        response = await pool.request(
            method, url, timeout=_timeout(options), auth=_auth(options), **request
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


def _new_pool(
    transport: httpx.AsyncBaseTransport | None, *, secure: bool, size: int
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=transport,
        # Without TLS, no certificate is ever checked.
        verify=_ssl_context() if secure else False,
        headers={"user-agent": f"tf_magics/{__version__}"},
        # Room for many requests at once (asyncio.gather of aask calls), all kept alive.
        limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
        # A redirect would re-send the conversation (and the key) to an address the user never
        # named, perhaps in cleartext: it is reported, never followed.
        follow_redirects=False,
    )


def _extra(tools: list[dict[str, Any]] | None, tool_choice: Any) -> dict[str, Any]:
    """The body fields for the tools offered (none when there are none)."""
    extra: dict[str, Any] = {}
    if tools:
        extra["tools"] = tools
    if tool_choice is not None:
        extra["tool_choice"] = tool_choice
    return extra


def _fall_back(
    client: Client,
    error: APIStatusError,
    key: tuple[str, str],
    stream_options: bool,
    form: int | None,
    on_event: EventSink | None,
) -> bool:
    """Remember what the server refused (on ``client``); True when it is worth sending again."""
    if stream_options and isinstance(error, BadRequestError) and _mentions_stream_options(error):
        # A server that rejects stream_options still works, just without usage numbers.
        client.rejects_stream_options.add(key[0])
        return True
    if form is not None and form < LAST_FORM and is_rejection(error):
        client.response_formats[key] = max(client.response_formats.get(key, 0), form + 1)
        if on_event is not None:
            on_event(Notice(describe_fallback(key[0], form + 1, error), "info"))
        return True
    return False


def _body(
    options: RequestOptions,
    messages: list[dict[str, Any]],
    extra: dict[str, Any],
    stream_options: bool,
    response_format: ResponseSchema | None,
    form: int | None,
) -> dict[str, Any]:
    """The request body: the options, the extra fields, and the structured-reply form."""
    fields = dict(extra)
    if stream_options:
        fields["stream_options"] = {"include_usage": True}
    if response_format is not None and form is not None:
        format_fields, messages = apply_form(response_format, form, messages)
        fields.update(format_fields)
    return options.request_body(messages, **fields)


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


def _status_failure(
    options: RequestOptions,
    response: httpx.Response,
    content: bytes,
    refused: Callable[[APIStatusError], bool] | None = None,
) -> Exception:
    """The error for a 4xx/5xx response: a :class:`RetryableFailure` when worth retrying.

    ``refused`` tells a refusal of an optional field (which the caller falls back from at once)
    from a failure: llama-cpp-python refuses a ``response_format`` it does not know with a 500.
    """
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
    if refused is not None and refused(error):
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
