"""Run the async core to completion from synchronous code (a notebook cell, a script).

A Jupyter kernel already runs an event loop in its main thread, so ``asyncio.run`` cannot be used
there. Rather than patching asyncio to allow nested loops, tf_magics keeps one private event loop
on a daemon thread (as IPython's own ``%%script`` does) and runs network work there, while
everything that touches the notebook stays on the calling thread:

- events (tokens, tool-call progress) are queued back and handled on the calling thread, so the
  display code never runs on a foreign thread;
- synchronous tool functions run on the calling thread too (:meth:`Bridge.call_sync`), where user
  code expects to run (plots, ``display``, ``input``);
- Ctrl-C / the kernel's interrupt raises ``KeyboardInterrupt`` in the calling thread, which cancels
  the task on the private loop and then waits for it to wind down cleanly, so the stream is closed
  and the partial reply is recorded before control returns.

From async code (``await chat.send(...)`` in a cell), the same coroutine runs on the caller's loop
with a :class:`DirectBridge` instead.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

from ._types import Event

__all__ = ["Bridge", "DirectBridge", "run_sync"]

T = TypeVar("T")
EventHandler = Callable[[Event], None]


class Bridge(Protocol):
    """How the async core talks back to the code that started it."""

    def emit(self, event: Event) -> None:
        """Report progress (handled on the caller's thread)."""

    async def call_sync(self, function: Callable[[], T]) -> T:
        """Run a synchronous callable on the caller's thread and return its result."""


class DirectBridge:
    """The bridge for async callers: everything happens on the caller's own loop."""

    def __init__(self, on_event: EventHandler | None = None) -> None:
        self._on_event = on_event

    def emit(self, event: Event) -> None:
        """Hand the event to the handler right away."""
        if self._on_event is not None:
            self._on_event(event)

    async def call_sync(self, function: Callable[[], T]) -> T:
        """Call the function right here (this is the caller's thread)."""
        return function()


class _QueueBridge:
    """The bridge for sync callers: events and calls travel through a queue."""

    def __init__(self, inbox: queue.SimpleQueue[Any]) -> None:
        self._inbox = inbox

    def emit(self, event: Event) -> None:
        self._inbox.put(("event", event))

    async def call_sync(self, function: Callable[[], T]) -> T:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._inbox.put(("call", function, future))
        return await asyncio.wrap_future(future)


class _LoopThread:
    """The private event loop, started on first use and kept for the life of the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def get(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                thread = threading.Thread(target=run, name="tf_magics-loop", daemon=True)
                thread.start()
                ready.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    def is_current(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread


_LOOP = _LoopThread()


_DONE = object()


def run_sync(
    make: Callable[[Bridge], Coroutine[Any, Any, T]],
    on_event: EventHandler | None = None,
    *,
    on_interrupt: Callable[[], None] | None = None,
    on_idle: Callable[[], None] | None = None,
    call_wrapper: Callable[[Callable[[], Any]], Any] | None = None,
) -> T:
    """Run ``make(bridge)`` on the private loop and wait for it, handling events here.

    Parameters
    ----------
    make
        Builds the coroutine to run, given the bridge it must use to report events and to run
        synchronous callables on this thread.
    on_event
        Called on this thread for every event, in order.
    on_interrupt
        Called once when Ctrl-C arrives (before waiting for the task to wind down).
    on_idle
        Called on this thread when no event arrived for a tenth of a second (a live view uses
        it to show what it held back for rate limiting).
    call_wrapper
        Runs each synchronous callable handed over by :meth:`Bridge.call_sync` (a live view uses
        it to capture what a tool prints).

    Raises
    ------
    KeyboardInterrupt
        When interrupted and the coroutine ended by being cancelled (it may instead raise an
        error of its own that describes what was kept).
    """
    if _LOOP.is_current():
        raise RuntimeError("run_sync cannot be called from tf_magics' own loop; use await.")
    inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
    bridge = _QueueBridge(inbox)
    loop = _LOOP.get()
    holder: dict[str, Any] = {}

    async def main() -> None:
        task = asyncio.ensure_future(make(bridge))
        holder["task"] = task
        if holder.get("cancel"):
            task.cancel()  # Ctrl-C arrived before the task existed
        try:
            inbox.put(("result", await task))
        except BaseException as error:  # handed to the calling thread as it is
            inbox.put(("error", error))
        finally:
            inbox.put(_DONE)

    asyncio.run_coroutine_threadsafe(main(), loop)
    outcome: tuple[str, Any] | None = None
    interrupted = False
    while True:
        try:
            try:
                item = inbox.get(timeout=0.1)
            except queue.Empty:
                if on_idle is not None:
                    on_idle()
                continue
            if item is _DONE:
                break
            outcome = _handle(item, on_event, outcome, call_wrapper)
        except KeyboardInterrupt:
            if interrupted:
                # A second Ctrl-C while winding down: stop waiting (the task ends on its own).
                raise
            interrupted = _interrupt(loop, holder, on_interrupt)
    assert outcome is not None
    kind, value = outcome
    if kind == "result":
        return value  # type: ignore[no-any-return]
    if isinstance(value, asyncio.CancelledError):
        raise KeyboardInterrupt from None
    raise value


def _interrupt(
    loop: asyncio.AbstractEventLoop,
    holder: dict[str, Any],
    on_interrupt: Callable[[], None] | None,
) -> bool:
    holder["cancel"] = True
    task = holder.get("task")
    if task is not None:
        loop.call_soon_threadsafe(task.cancel)
    if on_interrupt is not None:
        on_interrupt()
    return True


def _handle(
    item: Any,
    on_event: EventHandler | None,
    outcome: tuple[str, Any] | None,
    call_wrapper: Callable[[Callable[[], Any]], Any] | None,
) -> tuple[str, Any] | None:
    kind = item[0]
    if kind == "event":
        if on_event is not None:
            on_event(item[1])
        return outcome
    if kind == "call":
        _, function, future = item
        if not future.set_running_or_notify_cancel():
            return outcome
        try:
            result = function() if call_wrapper is None else call_wrapper(function)
        except Exception as error:  # the awaiting coroutine decides what it means
            future.set_exception(error)
        except BaseException:
            # Ctrl-C inside user code: the task is being cancelled. A KeyboardInterrupt must
            # never be handed to the loop (it would escape the loop thread).
            future.set_exception(asyncio.CancelledError())
            raise
        else:
            future.set_result(result)
        return outcome
    return (kind, item[1])
