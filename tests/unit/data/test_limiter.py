"""The map's gate: attempts in flight bounded, the window adapted to 429s, starts paced."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from tf_magics.client.retry import RetryableFailure
from tf_magics.data.limiter import AdaptiveLimiter
from tf_magics.errors import RateLimitError, ServerError


def _429(delay: float | None = None) -> RetryableFailure:
    return RetryableFailure(RateLimitError("slow down", status_code=429), delay)


async def _attempt(
    limiter: AdaptiveLimiter, seconds: float, failure: Exception | None = None
) -> None:
    async with limiter.attempt():
        await asyncio.sleep(seconds)
        if failure is not None:
            raise failure


async def _quietly(limiter: AdaptiveLimiter, seconds: float, failure: Exception) -> None:
    try:
        await _attempt(limiter, seconds, failure)
    except type(failure):
        pass


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_never_more_than_the_window_in_flight_and_all_of_it_used() -> None:
    async def main() -> AdaptiveLimiter:
        limiter = AdaptiveLimiter(5)
        await asyncio.gather(*(_attempt(limiter, 0.01) for _ in range(40)))
        return limiter

    limiter = run(main())
    assert limiter.peak == 5 and limiter.started == 40 and limiter.in_flight == 0


def test_a_burst_of_429s_halves_the_window_once_and_a_429_at_the_new_size_again() -> None:
    async def main() -> list[int]:
        limiter = AdaptiveLimiter(16)
        windows = []
        # Sixteen attempts sent at the full size, all refused: one halving for the burst.
        await asyncio.gather(*(_quietly(limiter, 0.01, _429()) for _ in range(16)))
        windows.append(limiter.window)
        # Refused again at the new size: halved again.
        await _quietly(limiter, 0.0, _429())
        windows.append(limiter.window)
        return [*windows, limiter.rate_limited]

    assert run(main()) == [8, 4, 17]


def test_successes_grow_the_window_back_one_at_a_time_up_to_the_concurrency() -> None:
    async def main() -> list[int]:
        limiter = AdaptiveLimiter(4)
        await _quietly(limiter, 0.0, _429())
        seen = [limiter.window]
        for _ in range(12):
            await _attempt(limiter, 0.0)
            seen.append(limiter.window)
        return seen

    # 2 successes at 2 -> 3, 3 at 3 -> 4, then it stays at the concurrency asked for.
    assert run(main()) == [2, 2, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4]


def test_other_failures_leave_the_window_alone() -> None:
    async def main() -> int:
        limiter = AdaptiveLimiter(4)
        failure = RetryableFailure(ServerError("busy", status_code=503), None)
        await _quietly(limiter, 0.0, failure)
        await _quietly(limiter, 0.0, ValueError("boom"))
        assert limiter.in_flight == 0
        return limiter.window

    assert run(main()) == 4


def test_retry_after_holds_back_every_new_attempt() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        limiter = AdaptiveLimiter(4)
        await _quietly(limiter, 0.0, _429(delay=0.2))
        began = loop.time()
        await _attempt(limiter, 0.0)
        return loop.time() - began

    assert run(main()) >= 0.19


def test_requests_per_minute_spaces_the_starts() -> None:
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        limiter = AdaptiveLimiter(10, requests_per_minute=1200)  # one every 50 ms
        starts: list[float] = []

        async def one() -> None:
            async with limiter.attempt():
                starts.append(loop.time())

        await asyncio.gather(*(one() for _ in range(6)))
        return starts

    starts = run(main())
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(gap >= 0.049 for gap in gaps)


def test_a_cancelled_waiter_does_not_keep_a_place() -> None:
    async def main() -> int:
        limiter = AdaptiveLimiter(1)
        holder = asyncio.ensure_future(_attempt(limiter, 0.1))
        await asyncio.sleep(0)
        waiter = asyncio.ensure_future(_attempt(limiter, 0.0))
        await asyncio.sleep(0.01)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await holder
        await asyncio.wait_for(_attempt(limiter, 0.0), 1)  # the place is free again
        return limiter.in_flight

    assert run(main()) == 0


def test_each_attempt_in_flight_holds_its_own_lane() -> None:
    async def main() -> list[set[int]]:
        limiter = AdaptiveLimiter(4)
        held: set[int] = set()
        seen: list[set[int]] = []

        async def one() -> None:
            async with limiter.attempt() as lane:
                assert lane not in held and 0 <= lane < 4
                held.add(lane)
                seen.append(set(held))
                await asyncio.sleep(0.005)
                held.discard(lane)

        await asyncio.gather(*(one() for _ in range(30)))
        return seen

    seen = run(main())
    assert max(len(lanes) for lanes in seen) == 4
