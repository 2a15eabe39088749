"""Running a map's requests: a pool of workers, one independent turn per prompt, progress events.

:class:`MapRun` starts as many workers as the concurrency asked for; each takes the next prompt,
runs it as a one-off turn (the system prompt, no history, no tools; a structured one with a
schema, checked and asked again like any turn) and records its value or its error. Every attempt
on the wire goes through the run's :class:`~tf_magics.data.limiter.AdaptiveLimiter`, which keeps
the requests in flight within the window and adapts it to 429s.

Nothing is kept per prompt but its value, its error and a done flag (no reply, no conversation):
a map of 100,000 rows costs little beyond its result. Progress is reported as
:class:`~tf_magics.events.MapProgress` events at most ten times a second, and once at the end.

Cancelling the run (Ctrl-C) cancels every worker at once and waits for them, so no request is
left running when :meth:`MapRun.run` returns; with ``on_error="raise"`` the first failure does the
same, and is raised as :class:`RowFailed`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from tf_magics.conversation import Conversation
from tf_magics.cost import Price, cost_of
from tf_magics.engine import Bridge, TurnLoop
from tf_magics.errors import BudgetExceededError, RateLimitError
from tf_magics.events import Event, MapProgress, Notice, Retrying
from tf_magics.reply import Reply
from tf_magics.types import Usage

from .limiter import AdaptiveLimiter
from .summary import RowError

if TYPE_CHECKING:
    from tf_magics.client import RequestOptions
    from tf_magics.client.http import Client
    from tf_magics.schema import ResponseSchema

__all__ = ["MapRun", "OnError", "RowFailed"]

T = TypeVar("T")
OnError = Literal["record", "raise"]
_REPORT_SECONDS = 0.1
#: How many times a row whose retries all met 429 goes back to the end of the queue.
REQUEUES = 3


class RowFailed(Exception):
    """A row failed and ``on_error="raise"`` stopped the map (``position``: its prompt)."""

    def __init__(self, position: int, error: BaseException) -> None:
        super().__init__(str(error))
        self.position = position
        self.error = error


class MapRun:
    """The requests of one map: each prompt once, at most ``concurrency`` in flight.

    Parameters
    ----------
    client, options
        Where and how to send (``options`` fully resolved: the endpoint and model filled in).
    prompts
        The distinct prompts, in order.
    weights
        How many rows share each prompt (progress counts rows).
    system
        The system prompt every request starts with.
    schema
        The structured reply to ask for, or ``None`` for text.
    bridge
        Where progress events and notices go.
    """

    def __init__(
        self,
        *,
        client: Client,
        options: RequestOptions,
        prompts: list[str],
        weights: list[int],
        system: str | None,
        schema: ResponseSchema | None,
        bridge: Bridge,
        limiter: AdaptiveLimiter,
        on_error: OnError = "record",
        price: Price | None = None,
    ) -> None:
        self.client = client
        self.options = options
        self.prompts = prompts
        self.weights = weights
        self.system = system
        self.schema = schema
        self.bridge = bridge
        self.limiter = limiter
        self.on_error = on_error
        self.price = price
        #: Set when a request did not fit under the spending cap: no new row is started.
        self.budget_stop: BudgetExceededError | None = None
        count = len(prompts)
        self.values: list[Any] = [None] * count
        self.errors: list[RowError | None] = [None] * count
        self.finished = bytearray(count)
        self.total_rows = sum(weights)
        self.rows_done = self.rows_failed = 0
        self.prompt_tokens = self.completion_tokens = 0
        self.notes: list[str] = []
        self.elapsed = 0.0
        self._next = 0
        self._again: deque[int] = deque()
        self._requeued: dict[int, int] = {}
        self._started = 0.0
        self._last_report = float("-inf")
        self._trailing: asyncio.TimerHandle | None = None

    # -- running --

    async def run(self) -> None:
        """Run every prompt; return when all are done (or raise, every worker stopped first).

        Raises
        ------
        RowFailed
            With ``on_error="raise"``, the first failure.
        asyncio.CancelledError
            When cancelled (the workers are cancelled and waited for first).
        """
        loop = asyncio.get_running_loop()
        self._started = loop.time()
        self._report(force=True)
        workers = [
            asyncio.ensure_future(self._worker())
            for _ in range(min(self.limiter.concurrency, len(self.prompts)))
        ]
        try:
            await asyncio.gather(*workers)
        finally:
            # Cancelled, or a row failed with on_error="raise": stop every worker and wait for
            # them, so no request is still running when this returns.
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            self.elapsed = loop.time() - self._started
            self._report(force=True, final=True)

    async def _worker(self) -> None:
        while self.budget_stop is None:
            if self._next < len(self.prompts):
                position = self._next
                self._next += 1
            elif self._again:
                position = self._again.popleft()
            else:
                return
            await self._one(position)

    async def _one(self, position: int) -> None:
        watcher = _RowBridge()
        turn = TurnLoop(
            client=self.client,
            conversation=Conversation(self.system),
            options=self.options,
            bridge=watcher,
            schema=self.schema,
            gate=self.limiter,
        )
        try:
            reply = await turn.run(self.prompts[position])
        except BudgetExceededError as error:
            # Not sent: the row stays unfinished, the rows in flight end, none starts after.
            if self.budget_stop is None:
                self.budget_stop = error
            return
        except Exception as error:  # recorded per row; the other rows go on
            self._count(turn.reply, watcher)
            if self._requeue(position, error):
                return
            self.errors[position] = RowError.of(error)
            self.finished[position] = 1
            self.rows_failed += self.weights[position]
            self._report()
            if self.on_error == "raise":
                raise RowFailed(position, error) from None
            return
        self._count(reply, watcher)
        self.values[position] = reply.value if self.schema is not None else reply.text
        self.finished[position] = 1
        self.rows_done += self.weights[position]
        self._report()

    @property
    def cost(self) -> float | None:
        """What the tokens so far cost (``None`` without a price)."""
        if self.price is None:
            return None
        usage = Usage(prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens)
        return cost_of(usage, self.price) or 0.0

    def _requeue(self, position: int, error: Exception) -> bool:
        """Put a row whose retries all met 429 back at the end of the queue (a few times).

        By the time its turn comes again the window has shrunk to what the server takes.
        """
        if not isinstance(error, RateLimitError) or "insufficient_quota" in (
            error.code,
            error.error_type,
        ):
            return False
        count = self._requeued.get(position, 0)
        if count >= REQUEUES:
            return False
        self._requeued[position] = count + 1
        self._again.append(position)
        return True

    def _count(self, reply: Reply, watcher: _RowBridge) -> None:
        usage = reply.usage
        if usage is not None:
            self.prompt_tokens += usage.prompt_tokens or 0
            self.completion_tokens += usage.completion_tokens or 0
        for text in watcher.notices:
            # The client's notes (a response_format fallback) once for the whole map; a row's
            # own notes (a re-ask) stay with the row.
            if text not in reply.notes and text not in self.notes:
                self.notes.append(text)
                self.bridge.emit(Notice(text, "info"))

    # -- progress --

    def _report(self, *, force: bool = False, final: bool = False) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        wait = self._last_report + _REPORT_SECONDS - now
        if not force and wait > 0:
            # Held back by the rate: sent a little later, so the last rows before a lull (or
            # before slow rows) are shown, not left out until the next row finishes.
            if self._trailing is None:
                self._trailing = loop.call_later(wait, self._report_later)
            return
        if self._trailing is not None:
            self._trailing.cancel()
            self._trailing = None
        self._last_report = now
        self.bridge.emit(
            MapProgress(
                total=self.total_rows,
                done=self.rows_done,
                failed=self.rows_failed,
                prompt_tokens=self.prompt_tokens,
                completion_tokens=self.completion_tokens,
                elapsed=self.elapsed if final else now - self._started,
                in_flight=self.limiter.in_flight,
                window=self.limiter.window,
                concurrency=self.limiter.concurrency,
                rate_limited=self.limiter.rate_limited,
                cost=self.cost,
                currency=self.options.caps.currency,
                final=final,
            )
        )

    def _report_later(self) -> None:
        self._trailing = None
        self._report()


class _RowBridge:
    """What one row's turn reports: notices kept for the run, everything else dropped."""

    __slots__ = ("notices", "retries")

    def __init__(self) -> None:
        self.notices: list[str] = []
        self.retries = 0

    def emit(self, event: Event) -> None:
        if isinstance(event, Notice) and event.kind != "progress":
            self.notices.append(event.text)
        elif isinstance(event, Retrying):
            self.retries += 1

    async def call_sync(self, function: Callable[[], T]) -> T:
        return function()  # rows offer no tools: nothing runs on the caller's thread
