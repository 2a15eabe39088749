"""A comparison running in a cell: columns that fill as the variants stream, then the replies.

:class:`CompareView` follows the variants' tagged events (:class:`~tf_magics.VariantEvent`),
redraws one output at most every ``interval`` seconds (each column shows the end of its text so
far), and at the end leaves one output with the rendered replies side by side
(:func:`~tf_magics.notebook.compare_layout.comparison_bundle`). :class:`KeepButtons` offers to keep
one reply once the cell has finished (a button callback runs only while the kernel is idle).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from tf_magics.events import (
    CompletionDone,
    ContentDelta,
    ContextAttached,
    Event,
    Notice,
    ReasoningDelta,
    RequestStarted,
    Retrying,
    StreamFallback,
    ToolCallFinished,
    ToolCallStarted,
    VariantEvent,
)
from tf_magics.render import escape

from .attachments_view import attachments_bundle
from .compare_layout import VariantState, comparison_bundle, live_bundle
from .layout import MUTED, waiting_words
from .outputs import Output

if TYPE_CHECKING:
    from tf_magics.engine.compare import Comparison

    from .session import NotebookSession

__all__ = ["CompareView", "KeepButtons"]

T = TypeVar("T")


class CompareView:
    """Follows a comparison's variants and keeps the cell's output current.

    Parameters
    ----------
    output
        Where the columns go.
    labels
        One label per variant, in order.
    interval
        Minimum seconds between redraws while the variants stream.
    """

    def __init__(
        self,
        output: Output,
        labels: list[str],
        *,
        interval: float = 0.25,
        max_tokens: int | None = None,
        remote_images: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.output = output
        self.states = [VariantState(label) for label in labels]
        self.interval = interval
        self.max_tokens = max_tokens
        self.remote_images = remote_images
        self.clock = clock
        self.attachments: list[Any] = []
        self._handle: Any = None
        self._dirty = True
        self._last = float("-inf")
        self.messages = 0

    def handle(self, event: Event) -> None:
        """Take one tagged event (on the cell's thread)."""
        if not isinstance(event, VariantEvent):
            return
        state = self.states[event.variant]
        inner = event.event
        if isinstance(inner, ContentDelta):
            state.text += inner.text
            state.status = "writing…"
        elif isinstance(inner, ReasoningDelta):
            state.reasoning += len(inner.text)
            state.status = f"thinking… ({state.reasoning:,} characters)"
        elif isinstance(inner, RequestStarted):
            state.status = "waiting for the model…" if inner.round == 1 else "sending tool results…"
        elif isinstance(inner, ToolCallStarted):
            state.status = f"running {inner.call.name}…"
        elif isinstance(inner, ToolCallFinished):
            state.status = f"{inner.result.call.name}: {inner.result.status}"
        elif isinstance(inner, CompletionDone) and not inner.completion.tool_calls:
            state.status = "done"
        elif isinstance(inner, ContextAttached):
            self.attachments = list(inner.attachments)  # the same for every variant
        elif isinstance(inner, (Notice, Retrying, StreamFallback)):
            notice, status = waiting_words(inner)
            if notice is not None and notice not in state.notices:
                state.notices.append(notice)
            state.status = status or state.status
        self._dirty = True
        self.flush()

    def idle(self) -> None:
        """Draw what the rate limit held back."""
        self.flush()

    def run_tool(self, function: Callable[[], T]) -> T:
        """Tools run here, on the cell's thread."""
        return function()

    def flush(self, *, force: bool = False) -> None:
        """Redraw the columns, at most every ``interval`` seconds."""
        now = self.clock()
        if not self._dirty or (not force and now - self._last < self.interval):
            return
        self._dirty = False
        self._last = now
        bundle = live_bundle(self.states)
        self.messages += 1
        if self._handle is None:
            self._handle = self.output.show(bundle)
        else:
            self.output.update(self._handle, bundle)

    def finish(self, comparison: Comparison, *, hint: str | None) -> None:
        """Replace the running columns with the replies side by side."""
        preamble = attachments_bundle(self.attachments) if self.attachments else None
        bundle = comparison_bundle(
            comparison,
            self.states,
            max_tokens=self.max_tokens,
            preamble=preamble,
            hint=hint,
            remote_images=self.remote_images,
        )
        self.output.clear()
        self.messages += 1
        self.output.show(bundle)


class KeepButtons:
    """One "Keep N" button per reply of a comparison (they work once the cell has finished).

    Displayed as live widgets where a frontend can show them, with a text and HTML summary for
    everything else (a saved notebook, terminal IPython).
    """

    def __init__(self, session: NotebookSession, comparison: Comparison, name: str | None):
        import ipywidgets as widgets

        self.session = session
        self.comparison = comparison
        self.conversation = name
        self.buttons = [
            widgets.Button(
                description=f"Keep {number}",
                tooltip=f"Add reply {number} ({variant.label}) to the conversation's history",
                disabled=variant.reply is None or not variant.text,
            )
            for number, variant in enumerate(comparison.variants, 1)
        ]
        for number, button in enumerate(self.buttons, 1):
            button.on_click(lambda _button, n=number: self.keep(n))
        self.status = widgets.HTML()
        self.widget = widgets.VBox([widgets.HBox(self.buttons), self.status])

    def keep(self, number: int) -> None:
        """Keep reply ``number`` (what ``%chat keep N`` does), and say so under the buttons."""
        from tf_magics.errors import TFMagicsError

        try:
            self.comparison.keep(number)
        except TFMagicsError as error:
            self.status.value = f'<span style="{MUTED};color:#c0392b">{escape(str(error))}</span>'
            return
        for button in self.buttons:
            button.disabled = True
        label = self.comparison.variants[number - 1].label
        self.status.value = (
            f'<span style="{MUTED}">✓ Reply {number} ({escape(label)}) is now in the history.'
            "</span>"
        )
        self.session.refresh_panels()

    def _text(self) -> str:
        labels = ", ".join(f"{n}: {v.label}" for n, v in enumerate(self.comparison.variants, 1))
        return f"Keep one reply in the history: %chat keep N ({labels})"

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle: dict[str, Any] = dict(self.widget._repr_mimebundle_(**kwargs) or {})
        bundle["text/plain"] = self._text()
        bundle["text/html"] = f'<div style="{MUTED}">{escape(self._text())}</div>'
        return bundle
