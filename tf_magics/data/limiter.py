"""How many requests a map keeps in flight, and how fast it starts them.

:class:`AdaptiveLimiter` is the :class:`~tf_magics.client.gate.RequestGate` of a map: the client
holds :meth:`AdaptiveLimiter.attempt` around every attempt on the wire (retries and re-asks
included), so the bounds below hold for requests, not for rows:

- never more than :attr:`~AdaptiveLimiter.window` attempts in flight; the window starts at the
  concurrency asked for;
- a 429 halves the window, and holds back every new attempt for the wait the server asked for
  (``Retry-After``; the refused request itself waits as the client's retry policy says). The
  429s of attempts that started before the last halving do not halve it again (they answer for
  the larger window, already given up), so a burst of them counts once, while a 429 at the new
  size halves it again at once. Each run of successes as long as the window grows it back by
  one, up to the concurrency asked for (additive increase, multiplicative decrease, as TCP does);
- with a requests-per-minute cap, attempts start at least ``60 / rpm`` seconds apart, so no
  minute, and no part of one, holds more than the cap.

A retry waits outside the gate: a request sitting out a ``Retry-After`` does not keep a place.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from tf_magics.client.retry import RetryableFailure
from tf_magics.errors import APIStatusError

__all__ = ["AdaptiveLimiter"]


class AdaptiveLimiter:
    """At most ``window`` attempts in flight, adapted to 429s, optionally paced per minute.

    Parameters
    ----------
    concurrency
        The most attempts in flight (the window's ceiling).
    requests_per_minute
        Start attempts at most this often (``None``: no cap).
    clock
        The event loop's clock (injected for tests).

    Attributes
    ----------
    window
        How many attempts may be in flight now.
    in_flight
        Attempts in flight now.
    peak
        The most attempts that were ever in flight at once.
    rate_limited
        429 answers seen.
    started
        Attempts started.
    """

    def __init__(
        self,
        concurrency: int,
        *,
        requests_per_minute: float | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.concurrency = concurrency
        self.window = concurrency
        self.interval = 60.0 / requests_per_minute if requests_per_minute else 0.0
        self.in_flight = 0
        self.peak = 0
        self.rate_limited = 0
        self.started = 0
        self._clock = clock
        self._next_start = 0.0
        self._paused_until = 0.0
        self._successes = 0
        self._generation = 0  # how many times the window was halved
        self._lanes = list(range(concurrency - 1, -1, -1))  # free lanes, lowest last
        self._waiters: list[asyncio.Future[None]] = []

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    @asynccontextmanager
    async def attempt(self) -> AsyncIterator[int]:
        """Hold a place for one attempt (waiting for one first); learn how it went.

        Yields the attempt's lane, a number below the concurrency no other attempt holds.
        """
        await self._enter()
        generation = self._generation
        lane = self._lanes.pop()
        try:
            yield lane
        except RetryableFailure as failure:
            self._leave(lane)
            if isinstance(failure.error, APIStatusError) and failure.error.status_code == 429:
                self._slow_down(failure.delay, generation)
            raise
        except BaseException:
            self._leave(lane)
            raise
        self._leave(lane)
        self._sped_up()

    async def _enter(self) -> None:
        while True:
            now = self._now()
            start = max(self._paused_until, self._next_start if self.interval else 0.0)
            if start > now:
                await asyncio.sleep(start - now)
                continue
            if self.in_flight < self.window:
                break
            await self._wait_for_room()
        self.in_flight += 1
        self.started += 1
        self.peak = max(self.peak, self.in_flight)
        if self.interval:
            self._next_start = max(self._now(), self._next_start) + self.interval

    async def _wait_for_room(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def _leave(self, lane: int) -> None:
        self.in_flight -= 1
        self._lanes.append(lane)
        self._wake()

    def _wake(self) -> None:
        # Everyone waiting looks again: few wait (a map runs as many workers as its
        # concurrency), and one who was woken but cancelled cannot strand the others.
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _slow_down(self, delay: float | None, generation: int) -> None:
        """A 429: halve the window unless already done for it; hold new attempts for ``delay``."""
        self.rate_limited += 1
        if delay is not None:
            # The server said how long: no attempt is worth starting before then.
            self._paused_until = max(self._paused_until, self._now() + delay)
        if generation == self._generation:
            # Sent at the present size and refused: halve. The other 429s of the same burst
            # were sent at that size too, and halve nothing more.
            self._generation += 1
            self.window = max(1, self.window // 2)
        self._successes = 0

    def _sped_up(self) -> None:
        """A success: after a window's worth of them, one more place (up to the concurrency)."""
        if self.window >= self.concurrency:
            return
        self._successes += 1
        if self._successes >= self.window:
            self._successes = 0
            self.window += 1
            self._wake()
