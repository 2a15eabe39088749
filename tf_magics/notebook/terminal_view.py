"""For terminal IPython and scripts: print tokens as they arrive, then how the reply ended."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO, TypeVar

from tf_magics.events import (
    ContentDelta,
    ContextAttached,
    Event,
    Notice,
    ReasoningDelta,
    Retrying,
    ToolCallFinished,
    ToolCallStarted,
)
from tf_magics.reply import Reply
from tf_magics.types import Usage

from .attachments_view import attachments_text
from .layout import ToolBlock, finish_note, footer_text

__all__ = ["TerminalView"]

T = TypeVar("T")


class TerminalView:
    """For terminal IPython and scripts: print tokens as they arrive, then a footer line."""

    def __init__(self, stream: TextIO | None = None, *, max_tokens: int | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.max_tokens = max_tokens
        self._thinking = False
        self._line_open = False
        self._printed = False

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()
        self._line_open = not text.endswith("\n")

    def handle(self, event: Event) -> None:
        """Print one event."""
        if isinstance(event, ReasoningDelta):
            if not self._thinking:
                self._write("\x1b[2m[thinking] ")
                self._thinking = True
            self._write(event.text)
        elif isinstance(event, ContentDelta):
            if self._thinking:
                self._write("\x1b[0m\n")
                self._thinking = False
            self._printed = True
            self._write(event.text)
        elif isinstance(event, ToolCallStarted):
            self._newline()
            self._write(f"[tool] {event.call.name}({event.call.arguments}) …\n")
        elif isinstance(event, ToolCallFinished):
            self._write(f"[tool] {ToolBlock.from_result(event.result).summary()}\n")
        elif isinstance(event, Retrying):
            self._newline()
            self._write(f"[retrying in {event.delay:.1f} s: {event.reason}]\n")
        elif isinstance(event, Notice):
            self._newline()
            self._write(f"[{event.text}]\n")
        elif isinstance(event, ContextAttached):
            self._newline()
            self._write(f"{attachments_text(list(event.attachments))}\n")

    def _newline(self) -> None:
        if self._thinking:
            self._write("\x1b[0m")
            self._thinking = False
        if self._line_open:
            self._write("\n")

    def idle(self) -> None:
        """Nothing is held back in a terminal."""

    def run_tool(self, function: Callable[[], T]) -> T:
        """Tools print straight to the terminal."""
        return function()

    def finish(
        self,
        reply: Reply | None,
        *,
        error: BaseException | None = None,
        conversation_usage: Usage | None = None,
    ) -> None:
        """Print how the reply ended and the footer."""
        self._newline()
        if reply is None:
            return
        if reply.text and not self._printed:
            self._write(reply.text + "\n")  # not streamed: print the whole answer now
        ending = finish_note(reply, max_tokens=self.max_tokens)
        if ending is not None:
            self._write(ending[1] + "\n")
        if reply.completions:
            footer = footer_text(reply, conversation_usage=conversation_usage)
            self._write(f"\x1b[2m{footer}\x1b[0m\n")
