"""Reading one response: a server-sent event stream, or a single JSON body, into a Completion.

Events are decoded one network read at a time (:class:`~tf_magics.client.sse.SSEDecoder`) and
folded by a :class:`~tf_magics.client.chunks.ChunkAccumulator` that the caller owns, so when a
stream breaks, fails or is cancelled, everything that arrived is still there. How a stream ended
is told apart: ``[DONE]``, a finish reason without ``[DONE]``, cut off (an error that carries the
partial reply), or empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from typing import Any

import httpx

from tf_magics._text import redact, truncate
from tf_magics.errors import APIStatusError, EmptyStreamError, IncompleteStreamError
from tf_magics.events import ContentDelta, Event, ReasoningDelta
from tf_magics.types import Completion

from .chunks import ChunkAccumulator
from .error_bodies import error_for_status, parse_error_body
from .request import RequestOptions
from .sse import SSEDecoder

__all__ = ["broken_stream", "read_json", "read_stream", "stalled"]

EventSink = Callable[[Event], None]

#: How long to wait for the end of the body after ``[DONE]`` (so the connection can be reused).
_DRAIN_SECONDS = 1.0


def raise_stream_error(
    options: RequestOptions, error: dict[str, Any], accumulator: ChunkAccumulator
) -> None:
    """Raise the error a stream reported, carrying the partial reply."""
    info = parse_error_body({"error": error}, secrets=options.secrets())
    failure = error_for_status(
        None,
        info,
        base_url=options.base_url or "",
        key_sent=options.api_key is not None,
        key_source=options.key_source,
        withheld=options.withheld_key,
    )
    failure.partial = accumulator.completion(ended="error")
    raise failure


async def read_stream(
    options: RequestOptions,
    response: httpx.Response,
    accumulator: ChunkAccumulator,
    on_event: EventSink | None,
) -> Completion:
    """Read an event stream to its end, folding it into ``accumulator``.

    Raises
    ------
    APIError
        An error event, a stream cut off, or an empty stream; each carries the partial reply.
    """
    # Decoded bytes, not raw ones: a proxy may gzip the stream.
    chunks = _within_deadlines(response.aiter_bytes(), options, accumulator)
    try:
        return await _read_events(options, chunks, accumulator, on_event)
    finally:
        await chunks.aclose()


async def _read_events(
    options: RequestOptions,
    chunks: AsyncGenerator[bytes, None],
    accumulator: ChunkAccumulator,
    on_event: EventSink | None,
) -> Completion:
    decoder = SSEDecoder()
    done = False
    received = False
    sink = _DeltaBatch(on_event) if on_event is not None else None
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
        raise broken_stream(options, error, accumulator) from None
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


def broken_stream(
    options: RequestOptions, error: httpx.HTTPError, accumulator: ChunkAccumulator
) -> IncompleteStreamError:
    """The error for a reply that stalled or broke off after it had started."""
    if isinstance(error, httpx.TimeoutException):
        return stalled(options, accumulator, options.read_timeout, "read_timeout")
    detail = redact(str(error), options.secrets()) or type(error).__name__
    return IncompleteStreamError(
        f"The reply from {options.base_url} broke off ({detail}).",
        hint=_kept(accumulator) + " Run the cell again.",
        partial=accumulator.completion(ended="incomplete"),
    )


def stalled(
    options: RequestOptions, accumulator: ChunkAccumulator, seconds: float, setting: str
) -> IncompleteStreamError:
    """The error for a reply that took longer than a time limit, saying what was kept."""
    if setting == "reply_timeout":
        what = f"did not finish within {seconds:g} s (reply_timeout)"
    elif accumulator.has_output:
        what = f"stalled: no new token for {seconds:g} s ({setting})"
    else:
        what = f"sent no token within {seconds:g} s ({setting})"
    return IncompleteStreamError(
        f"The reply from {options.base_url} {what}.",
        hint=f"{_kept(accumulator)} Run the cell again, or raise ChatSettings.{setting}.",
        partial=accumulator.completion(ended="incomplete"),
    )


def _kept(accumulator: ChunkAccumulator) -> str:
    if accumulator.has_output:
        return "The partial reply is kept."
    return "Nothing had arrived."


async def _within_deadlines(
    chunks: AsyncIterator[bytes], options: RequestOptions, accumulator: ChunkAccumulator
) -> AsyncGenerator[bytes, None]:
    """``chunks``, bounded in time: the first token, and the whole reply.

    The read timeout bounds the gap between two reads only, and a server that sends keep-alive
    comments resets it forever; these deadlines count tokens, not bytes.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    first = options.first_token_timeout or options.read_timeout
    total = options.reply_timeout
    iterator = chunks.__aiter__()
    while True:
        limits = [] if total is None else [(started + total, total, "reply_timeout")]
        if not accumulator.has_output:
            setting = "first_token_timeout" if options.first_token_timeout else "read_timeout"
            limits.append((started + first, first, setting))
        if not limits:
            # Tokens are flowing and the reply has no overall bound: read without a timer.
            async for chunk in iterator:
                yield chunk
            return
        deadline, seconds, setting = min(limits)
        try:
            chunk = await asyncio.wait_for(iterator.__anext__(), max(0.0, deadline - loop.time()))
        except StopAsyncIteration:
            return
        except asyncio.TimeoutError:
            raise stalled(options, accumulator, seconds, setting) from None
        yield chunk


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
            raise_stream_error(options, {"message": data}, accumulator)
        return False  # a keep-alive or a line we do not understand
    if name == "error" and isinstance(payload, dict) and "error" not in payload:
        payload = {"error": payload}
    _emit(accumulator.feed(payload), on_event)
    if accumulator.error is not None:
        raise_stream_error(options, accumulator.error, accumulator)
    if name == "error":
        # An error frame whatever its payload looks like (a bare string, an empty object).
        raise_stream_error(options, {"message": data.strip()}, accumulator)
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
        raise_stream_error(options, accumulator.error, accumulator)
    _check_finish(options, accumulator)


def _emit(events: list[Event], on_event: EventSink | None) -> None:
    if on_event is not None:
        for event in events:
            on_event(event)


def _check_finish(options: RequestOptions, accumulator: ChunkAccumulator) -> None:
    if accumulator.finish_reason == "error":
        raise_stream_error(
            options, {"message": "the provider ended the reply with an error"}, accumulator
        )


def read_json(
    options: RequestOptions, response: httpx.Response, accumulator: ChunkAccumulator
) -> Completion:
    """Read a whole (non-streamed) JSON body: a completion, or an error object."""
    try:
        payload = json.loads(response.content)
    except ValueError:
        raise APIStatusError(
            f"{options.base_url} sent a reply that is not JSON "
            f"({response.headers.get('content-type', 'no content type')}).",
            status_code=response.status_code,
            body=truncate(redact(response.text, options.secrets()), 500),
            hint="Check the base URL points at an OpenAI-compatible API (usually ending in /v1).",
        ) from None
    accumulator.feed(payload)
    if accumulator.error is not None:
        raise_stream_error(options, accumulator.error, accumulator)
    if isinstance(payload, dict) and not isinstance(payload.get("choices"), list):
        raise APIStatusError(
            f"{options.base_url} sent a JSON reply without choices.",
            status_code=response.status_code,
            body=payload,
            hint="Check the base URL points at an OpenAI-compatible chat-completions API.",
        )
    return accumulator.completion(ended="complete")
