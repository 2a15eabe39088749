"""The live view of a structured reply: its JSON streams into a code block as it arrives.

A structured answer is JSON, not prose: rendered as Markdown while it streams it would read as a
paragraph of braces. Each round's content is opened as a ``json`` code block instead (the fence is
shown, never sent or stored); the final output replaces it with the value, readably
(:mod:`~tf_magics.notebook.value_view`).
"""

from __future__ import annotations

from tf_magics.events import ContentDelta, Event

from .live_view import LiveView

__all__ = ["StructuredLiveView"]

_FENCE = "```json\n"


class StructuredLiveView(LiveView):
    """A :class:`~tf_magics.notebook.live_view.LiveView` that shows the answer as JSON code."""

    def handle(self, event: Event) -> None:
        """Take one event; the first text of a round opens the code block."""
        if isinstance(event, ContentDelta):
            current = self._round
            if not current.streamed:
                current.pending.extend(current.markdown.feed(_FENCE))
        super().handle(event)
