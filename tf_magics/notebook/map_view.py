"""A map's progress in the notebook: a bar while it runs, one summary line when it ends.

:class:`MapView` follows a map like a live view follows a reply (it is the run's
:class:`~tf_magics.engine.TurnObserver`): it keeps the last
:class:`~tf_magics.events.MapProgress` and redraws at most ten times a second, from the cell's
thread -- on each progress event, and on the idle ticks between them (so the elapsed time and the
estimate keep moving while rows are slow). Nothing is shown per row.

Where it draws is a :class:`ProgressDisplay`: an ipywidgets bar with a label in a kernel
(:class:`WidgetProgress`), a line of text in a terminal (:class:`TextProgress`). When the map
ends the bar is replaced by the summary (rows done and failed, tokens, time, rows/s, the first
failures and the notes), which is what a saved notebook keeps.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, Protocol, TextIO, TypeVar

from tf_magics.data import MapSummary
from tf_magics.events import BatchProgress, Event, MapProgress, Notice

from .map_layout import progress_html, progress_text, summary_bundle
from .outputs import Bundle

__all__ = ["MapView", "ProgressDisplay", "TextProgress", "WidgetProgress", "progress_display"]

T = TypeVar("T")


class ProgressDisplay(Protocol):
    """Where a map's progress is drawn."""

    def update(self, progress: MapProgress | BatchProgress, elapsed: float) -> None:
        """Show the progress now."""

    def finish(self, bundle: Bundle) -> None:
        """Replace the progress with the final summary."""


class MapView:
    """Follows a map: progress drawn at a bounded rate, one summary at the end.

    Parameters
    ----------
    display
        Where to draw.
    interval
        The shortest time between two draws, in seconds.
    clock
        Monotonic clock (injected for tests).
    """

    def __init__(
        self,
        display: ProgressDisplay,
        *,
        interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.display = display
        self.interval = interval
        self.clock = clock
        self.notes: list[str] = []
        self.draws = 0
        self._latest: MapProgress | BatchProgress | None = None
        self._received = 0.0
        self._drawn = float("-inf")

    def handle(self, event: Event) -> None:
        """Take the run's progress and notices (called on the cell's thread)."""
        if isinstance(event, (MapProgress, BatchProgress)):
            self._latest = event
            self._received = self.clock()
            self._draw(force=event.final)
        elif (
            isinstance(event, Notice) and event.kind != "progress" and event.text not in self.notes
        ):
            self.notes.append(event.text)

    def idle(self) -> None:
        """Redraw the clock-driven parts (elapsed time, estimate) when due."""
        self._draw()

    def run_tool(self, function: Callable[[], T]) -> T:
        """Rows offer no tools; anything asked to run here just runs."""
        return function()

    def _draw(self, *, force: bool = False) -> None:
        progress = self._latest
        if progress is None:
            return
        now = self.clock()
        if not force and now - self._drawn < self.interval:
            return
        self._drawn = now
        elapsed = progress.elapsed + (0.0 if progress.final else now - self._received)
        self.draws += 1
        self.display.update(progress, elapsed)

    def finish(self, summary: MapSummary | None, *, error: BaseException | None = None) -> None:
        """Replace the progress with the summary (and what went wrong, if anything)."""
        if summary is None and not self.notes:
            self.display.finish({})
            return
        self.display.finish(summary_bundle(summary, self.notes, error))


class WidgetProgress:
    """An ipywidgets progress bar and a label, replaced by the summary at the end.

    The widgets are created on the first update (nothing appears for a map that fails before
    its first request) and closed at the end, their output replaced by the summary.
    """

    def __init__(self) -> None:
        self._widgets: list[Any] = []
        self._bar: Any = None
        self._label: Any = None
        self._handle: Any = None

    def update(self, progress: MapProgress | BatchProgress, elapsed: float) -> None:
        """Move the bar and rewrite the label (one message each)."""
        if self._bar is None:
            self._show(progress)
        bar, label = self._bar, self._label
        if bar.max != max(1, progress.total):
            bar.max = max(1, progress.total)
        bar.value = progress.finished
        if progress.failed:
            bar.bar_style = "warning"
        label.value = progress_html(progress, elapsed)

    def _show(self, progress: MapProgress | BatchProgress) -> None:
        import ipywidgets
        from IPython.display import display

        self._bar = ipywidgets.IntProgress(value=0, min=0, max=max(1, progress.total))
        self._label = ipywidgets.HTML()
        box = ipywidgets.HBox([self._bar, self._label])
        self._widgets = [self._bar, self._label, box]
        bundle = box._repr_mimebundle_()
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        # Where widgets cannot be drawn (a static render), a line of text stands in.
        data["text/plain"] = (
            f"Batch job {progress.job}…"
            if isinstance(progress, BatchProgress)
            else f"Mapping {progress.total:,} rows…"
        )
        self._handle = display(data, raw=True, display_id=True)

    def finish(self, bundle: Bundle) -> None:
        """Put the summary where the bar was, and close the widgets."""
        if self._handle is not None:
            if bundle:
                self._handle.update(bundle, raw=True)
            else:
                self._handle.update({"text/plain": ""}, raw=True)
        elif bundle:
            from IPython.display import display

            display(bundle, raw=True)
        for widget in self._widgets:
            for part in (getattr(widget, "layout", None), getattr(widget, "style", None)):
                if part is not None:
                    part.close()
            widget.close()
        self._widgets = []


class TextProgress:
    """The progress as a line of text (a terminal, a script).

    On a terminal the line is rewritten in place; otherwise it is printed every ``every``
    seconds.
    """

    def __init__(self, stream: TextIO | None = None, *, every: float = 10.0) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.every = every
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._printed = float("-inf")
        self._width = 0

    def update(self, progress: MapProgress | BatchProgress, elapsed: float) -> None:
        """Show the line (in place on a terminal)."""
        line = progress_text(progress, elapsed)
        if self._tty:
            self.stream.write("\r" + line.ljust(self._width))
            self._width = len(line)
        elif time.monotonic() - self._printed >= self.every:
            self._printed = time.monotonic()
            self.stream.write(line + "\n")
        self.stream.flush()

    def finish(self, bundle: Bundle) -> None:
        """End the line and print the summary."""
        if self._tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
        text = bundle.get("text/plain", "")
        if text:
            self.stream.write(text + "\n")
        self.stream.flush()


def progress_display() -> ProgressDisplay:
    """Widgets in a kernel, text on stderr elsewhere."""
    from .outputs import in_kernel

    return WidgetProgress() if in_kernel() else TextProgress()
