"""Recording a reply as its events, and playing them back as if a server sent them.

While a request goes to the server, :class:`EventRecorder` sits between the client and the turn:
every event passes through unchanged, and the reply's deltas are kept with the time they came.
:func:`replay` hands the same events to the turn in the same order, so the live view streams
them, shows the same tool blocks and ends with the same output; the deltas are also folded into
the request's accumulator, so an interrupted replay keeps its partial reply like a live one.
The reply returned is the recorded one (tool-call ids included: the next request of the turn
must be the one that was recorded), marked :attr:`~tf_magics.Completion.replayed`.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from tf_magics.client import ChunkAccumulator
from tf_magics.events import ContentDelta, Event, ReasoningDelta, ToolCallDelta
from tf_magics.types import Completion, Replayed

from .entry import Entry, RecordedEvent

__all__ = ["EventRecorder", "replay"]

EventSink = Callable[[Event], None]
Sleep = Callable[[float], Awaitable[None]]

#: An instant replay lets the event loop run every so many events (Ctrl-C, other tasks).
_YIELD_EVERY = 64


class EventRecorder:
    """Passes events on and keeps the reply's deltas with their times.

    Parameters
    ----------
    sink
        Where the events go (the turn), or ``None``.
    clock
        Monotonic seconds (the event loop's clock).
    """

    def __init__(self, sink: EventSink | None, clock: Callable[[], float]) -> None:
        self._sink = sink
        self._clock = clock
        self.started = clock()
        self.events: list[tuple[float, RecordedEvent]] = []

    def __call__(self, event: Event) -> None:
        """Keep ``event`` if it is part of the reply, and pass it on."""
        if isinstance(event, ContentDelta | ReasoningDelta | ToolCallDelta):
            self.events.append((self._clock() - self.started, event))
        if self._sink is not None:
            self._sink(event)

    def elapsed(self) -> float:
        """Seconds since the request left."""
        return self._clock() - self.started


async def replay(
    entry: Entry,
    accumulator: ChunkAccumulator,
    on_event: EventSink | None,
    *,
    paced: bool,
    sleep: Sleep = asyncio.sleep,
    clock: Callable[[], float],
    file: str | None = None,
) -> Completion:
    """Play a recorded reply back: its events (at their pace if ``paced``), then the reply."""
    started = clock()
    for number, (t, event) in enumerate(entry.events):
        if paced:
            delay = started + t - clock()
            if delay > 0:
                await sleep(delay)
        elif number % _YIELD_EVERY == 0:
            await sleep(0)
        accumulator.feed(_chunk(event))
        if on_event is not None:
            on_event(event)
    remaining = started + entry.elapsed - clock()
    await sleep(remaining if paced and remaining > 0 else 0)
    recorded = entry.completion
    return dataclasses.replace(
        recorded,
        tool_calls=list(recorded.tool_calls),
        replayed=Replayed(
            recorded_at=entry.recorded_at,
            model=recorded.model or entry.model,
            server=entry.server,
            model_note=entry.model_note,
            file=file,
        ),
    )


def _chunk(event: RecordedEvent) -> dict[str, Any]:
    """The chunk a server would have sent for this delta (for the accumulator)."""
    delta: dict[str, Any]
    if isinstance(event, ContentDelta):
        delta = {"content": event.text}
    elif isinstance(event, ReasoningDelta):
        delta = {"reasoning_content": event.text}
    else:
        call: dict[str, Any] = {"index": event.index, "function": {"arguments": event.arguments}}
        if event.id:
            call["id"] = event.id
        if event.name:
            call["function"]["name"] = event.name
        delta = {"tool_calls": [call]}
    return {"choices": [{"index": 0, "delta": delta}]}
