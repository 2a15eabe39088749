"""Who watches a turn: the one protocol a view implements to follow a reply as it is made.

A turn reports to one :class:`TurnObserver`, on the thread that started it: every event in order
(:meth:`~TurnObserver.handle`), a tick when nothing arrived for a while
(:meth:`~TurnObserver.idle`, so a rate-limited view can show what it held back), and each
synchronous tool function to run (:meth:`~TurnObserver.run_tool`, so a view can keep what the tool
prints with its block). The notebook's live view, the terminal view and plain callbacks all fit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from tf_magics.events import Event

__all__ = ["EventCallback", "TurnObserver", "observer_for"]

T = TypeVar("T")


class TurnObserver(Protocol):
    """Follows one turn (called on the thread that started it)."""

    def handle(self, event: Event) -> None:
        """Take one event."""

    def idle(self) -> None:
        """Nothing arrived for a tenth of a second."""

    def run_tool(self, function: Callable[[], T]) -> T:
        """Run a synchronous tool function here and return its result."""


class EventCallback:
    """An observer made of a plain event callback (or nothing): tools simply run."""

    def __init__(self, on_event: Callable[[Event], None] | None = None) -> None:
        self._on_event = on_event

    def handle(self, event: Event) -> None:
        """Pass the event to the callback."""
        if self._on_event is not None:
            self._on_event(event)

    def idle(self) -> None:
        """Nothing is held back."""

    def run_tool(self, function: Callable[[], T]) -> T:
        """Call the tool."""
        return function()


def observer_for(
    observer: TurnObserver | None, on_event: Callable[[Event], None] | None
) -> TurnObserver:
    """The observer to use for a call that may give an observer, a callback, or neither.

    Raises
    ------
    TypeError
        When both are given (a callback would silently miss what the observer shows).
    """
    if observer is not None and on_event is not None:
        raise TypeError("pass either observer= or on_event=, not both")
    if observer is not None:
        return observer
    return EventCallback(on_event)
