"""When and how long to wait before trying a failed request again.

The policy is the official SDK's: retry connection errors, timeouts, 408, 409, 429 and 5xx, at most
``max_retries`` times, only before any reply byte was consumed; honour ``retry-after-ms`` /
``retry-after`` (seconds or an HTTP date) up to ``max_retry_wait`` (a longer wait is reported,
not waited for), else back off exponentially with jitter;
``x-should-retry`` overrides; never retry a 429 whose code is ``insufficient_quota``.
"""

from __future__ import annotations

import datetime
import email.utils
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx

from tf_magics.errors import APIError
from tf_magics.events import Event, Retrying

from .error_bodies import ErrorInfo

__all__ = ["RetryableFailure", "backoff", "retry_after", "should_retry", "with_retries"]

T = TypeVar("T")
EventSink = Callable[[Event], None]

_RETRY_STATUSES = {408, 409, 429}
_LONGEST = 366 * 86_400.0  # a wait longer than a year is not a wait


class RetryableFailure(Exception):
    """An attempt failed in a way worth retrying (``delay``: what the server asked for)."""

    def __init__(self, error: APIError, delay: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.delay = delay


async def with_retries(
    attempt_once: Callable[[], Awaitable[T]],
    *,
    max_retries: int,
    on_event: EventSink | None,
    sleep: Callable[[float], Awaitable[None]],
) -> T:
    """Run ``attempt_once`` until it succeeds, fails for good, or the retries run out.

    Each wait is reported as a :class:`~tf_magics.events.Retrying` event first.
    """
    attempts = max_retries + 1
    for attempt in range(1, attempts + 1):
        try:
            return await attempt_once()
        except RetryableFailure as retry:
            if attempt == attempts:
                raise retry.error from None
            delay = retry.delay if retry.delay is not None else backoff(attempt)
            if on_event is not None:
                on_event(Retrying(attempt, attempts - 1, delay, str(retry.error)))
            await sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def backoff(attempt: int) -> float:
    """Seconds before retry ``attempt`` (from 1) when the server did not say."""
    # The official SDK's schedule: 0.5 s doubling, capped at 8 s, minus up to 25 % jitter.
    base: float = min(0.5 * 2.0 ** (attempt - 1), 8.0)
    return base * (1 - 0.25 * random.random())


def retry_after(headers: httpx.Headers) -> float | None:
    """The wait the server asked for, in seconds (``None`` when it did not say, or not clearly).

    The caller decides whether a long wait is worth it (``max_retry_wait``).
    """
    value = headers.get("retry-after-ms")
    if value:
        try:
            seconds = float(value) / 1000
        except ValueError:
            seconds = -1.0
        if 0 <= seconds < _LONGEST:
            return seconds
    value = headers.get("retry-after")
    if value:
        try:
            seconds = float(value)
        except ValueError:
            seconds = _seconds_until(value)
        if 0 <= seconds < _LONGEST:
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


def should_retry(response: httpx.Response, info: ErrorInfo) -> bool:
    """Whether an error response is worth another attempt."""
    explicit = response.headers.get("x-should-retry")
    if explicit == "true":
        return True
    if explicit == "false":
        return False
    status = response.status_code
    if status == 429 and "insufficient_quota" in (info.code, info.type):
        return False
    return status in _RETRY_STATUSES or status >= 500
