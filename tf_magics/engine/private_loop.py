"""Run the async core to completion from synchronous code (a notebook cell, a script).

A Jupyter kernel already runs an event loop in its main thread, so ``asyncio.run`` cannot be used
there. Rather than patching asyncio to allow nested loops, tf_magics keeps one private event loop
on a daemon thread (as IPython's own ``%%script`` does) and runs network work there, while
everything that touches the notebook stays on the calling thread:

- events (tokens, tool-call progress) are queued back and handed to the turn's
  :class:`~tf_magics.engine.observer.TurnObserver` on the calling thread, so the display code
  never runs on a foreign thread;
- synchronous tool functions run on the calling thread too (:meth:`Bridge.call_sync`, through
  the observer's ``run_tool``), where user code expects to run (plots, ``display``, ``input``);
- Ctrl-C / the kernel's interrupt raises ``KeyboardInterrupt`` in the calling thread, which cancels
  the task on the private loop and then waits for it to wind down cleanly, so the stream is closed
  and the partial reply is recorded before control returns.

From async code (``await chat.aask(...)`` in a cell), the same coroutine runs on the caller's loop
with a :class:`DirectBridge` instead.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

from tf_magics.events import Event

from .observer import TurnObserver

__all__ = ["Bridge", "DirectBridge", "run_blocking"]

T = TypeVar("T")


class Bridge(Protocol):
    """How the async core talks back to the code that started it."""

    def emit(self, event: Event) -> None:
        """Report progress (handled on the caller's thread)."""

    async def call_sync(self, function: Callable[[], T]) -> T:
        """Run a synchronous callable on the caller's thread and return its result."""


class DirectBridge:
    """The bridge for async callers: everything happens on the caller's own loop."""

    def __init__(self, observer: TurnObserver) -> None:
        self._observer = observer

    def emit(self, event: Event) -> None:
        """Hand the event to the observer right away."""
        self._observer.handle(event)

    async def call_sync(self, function: Callable[[], T]) -> T:
        """Call the function right here (this is the caller's thread)."""
        return self._observer.run_tool(function)


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


_IDLE_SECONDS = 0.1


def run_blocking(make: Callable[[Bridge], Coroutine[Any, Any, T]], observer: TurnObserver) -> T:
    """Run ``make(bridge)`` on the private loop and wait for it, serving ``observer`` here.

    Parameters
    ----------
    make
        Builds the coroutine to run, given the bridge it must use to report events and to run
        synchronous callables on this thread.
    observer
        Gets every event, in order, and the idle ticks, and runs the synchronous callables,
        all on this thread.

    Raises
    ------
    KeyboardInterrupt
        When interrupted and the coroutine ended by being cancelled (it may instead raise an
        error of its own that describes what was kept).
    """
    if _LOOP.is_current():
        raise RuntimeError("run_blocking cannot be called from tf_magics' own loop; use await.")
    return _Waiter(observer).run(make)


_DONE = object()


class _Waiter:
    """The calling thread's side: start the task, serve its queue, pass Ctrl-C on as a cancel."""

    def __init__(self, observer: TurnObserver) -> None:
        self.observer = observer
        self.inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.loop = _LOOP.get()
        self.task: asyncio.Future[Any] | None = None
        self.cancelled = False
        self.outcome: tuple[str, Any] | None = None
        # The observer's own failure: the task is cancelled, waited for, and this is raised.
        self.failure: Exception | None = None

    def run(self, make: Callable[[Bridge], Coroutine[Any, Any, T]]) -> T:
        asyncio.run_coroutine_threadsafe(self._main(make(_QueueBridge(self.inbox))), self.loop)
        interrupted = False
        while True:
            try:
                if self._serve_one():
                    break
            except KeyboardInterrupt:
                if interrupted:
                    # A second Ctrl-C while winding down: stop waiting (the task ends on its own).
                    raise
                interrupted = True
                self._cancel()
            except Exception as error:
                # The view failed: nothing may go on writing to the conversation once this
                # call returns, so the turn is stopped and waited for before the error goes up.
                if self.failure is None:
                    self.failure = error
                    self._cancel()
        if self.failure is not None:
            raise self.failure
        assert self.outcome is not None
        kind, value = self.outcome
        if kind == "result":
            return value  # type: ignore[no-any-return]
        if isinstance(value, asyncio.CancelledError):
            raise KeyboardInterrupt from None
        raise value

    async def _main(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coroutine)
        self.task = task
        if self.cancelled:
            task.cancel()  # Ctrl-C arrived before the task existed
        try:
            self.inbox.put(("result", await task))
        except BaseException as error:  # handed to the calling thread as it is
            self.inbox.put(("error", error))
        finally:
            self.inbox.put(_DONE)

    def _cancel(self) -> None:
        self.cancelled = True
        task = self.task
        if task is not None:
            self.loop.call_soon_threadsafe(task.cancel)

    def _serve_one(self) -> bool:
        """Handle one item of the queue; True once the task has ended."""
        try:
            item = self.inbox.get(timeout=_IDLE_SECONDS)
        except queue.Empty:
            if self.failure is None:
                self.observer.idle()
            return False
        if item is _DONE:
            return True
        kind = item[0]
        if kind == "event":
            if self.failure is None:
                self.observer.handle(item[1])
        elif kind == "call":
            self._call(item[1], item[2])
        else:
            self.outcome = (kind, item[1])
        return False

    def _call(self, function: Callable[[], Any], future: concurrent.futures.Future[Any]) -> None:
        if not future.set_running_or_notify_cancel():
            return
        if self.failure is not None:
            future.set_exception(asyncio.CancelledError())  # the turn is being stopped
            return
        try:
            result = self.observer.run_tool(function)
        except Exception as error:  # the awaiting coroutine decides what it means
            future.set_exception(error)
        except BaseException:
            # Ctrl-C inside user code: the task is being cancelled. A KeyboardInterrupt must
            # never be handed to the loop (it would escape the loop thread).
            future.set_exception(asyncio.CancelledError())
            raise
        else:
            future.set_result(result)
