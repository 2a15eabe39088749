"""Live rich output for a reply: streams in place, then leaves one clean output.

While tokens arrive, the reply is shown as a sequence of outputs. Completed Markdown blocks never
change, so each is rendered and sent once, and only the growing tail is re-rendered, at most every
``interval`` seconds: output traffic grows with the reply, not with its square (re-sending the whole
document on every token is what makes other tools slow). Tool calls get their own small blocks that
update in place. When the turn ends, the cell's outputs are replaced by a single output carrying
``text/plain``, ``text/markdown`` and ``text/html``, so a saved notebook renders on GitHub and
nbviewer and terminal IPython prints plain text.

All model output is rendered through :func:`tf_magics.render.render_markdown`, which sanitizes it:
no script, event handler, ``javascript:`` URL, iframe or form can come from a reply.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

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
    ToolCallDelta,
    ToolCallFinished,
    ToolCallStarted,
)
from tf_magics.render import StreamingMarkdown, render_markdown
from tf_magics.reply import Reply
from tf_magics.types import Usage

from .attachments_view import attachments_bundle
from .layout import ToolBlock, reasoning_html, status_line_html, waiting_words
from .outputs import Bundle, Output
from .reply_output import reply_bundle

__all__ = ["LiveView"]

T = TypeVar("T")


def _bundle(html: str, text: str) -> Bundle:
    return {"text/html": html, "text/plain": text}


@dataclass
class _OutputSlot:
    handle: Any
    kind: str


@dataclass
class _Round:
    """What one request of the turn has shown so far."""

    remote_images: bool = False
    markdown: StreamingMarkdown = field(default_factory=StreamingMarkdown)
    streamed: list[str] = field(default_factory=list)
    frozen: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    reasoning: str = ""
    tools: dict[int, ToolBlock] = field(default_factory=dict)
    tool_slots: dict[int, _OutputSlot] = field(default_factory=dict)
    reasoning_slot: _OutputSlot | None = None
    tail_slot: _OutputSlot | None = None
    unshown: tuple[str, str] | None = None  # rendered at the end of the reply, not yet sent
    shown_tail: str = ""
    dirty_reasoning: bool = False
    dirty_tail: bool = False
    dirty_tools: set[int] = field(default_factory=set)

    def render_pending(self) -> tuple[str, str]:
        """Render the completed blocks not shown yet: ``(html, text)``, kept as unshown."""
        sources, self.pending = self.pending, []
        # The blocks are consecutive spans of the reply: one render call for all of them.
        html = render_markdown("".join(sources), remote_images=self.remote_images)
        self.frozen.append(html)
        text = "\n\n".join(sources)
        self.unshown = (html, text)
        return html, text

    def content_html(self, content: str) -> str:
        """The final HTML of this round's answer.

        Blocks rendered while streaming are reused as they are: the final output costs one join,
        not a second rendering of the whole reply.
        """
        if self.frozen and "".join(self.streamed) == content:
            return "".join(self.frozen)
        return render_markdown(content, remote_images=self.remote_images)


class LiveView:
    """Consumes a turn's events and keeps the cell's output current.

    Parameters
    ----------
    output
        Where outputs go (:class:`IPythonOutput` in a notebook).
    interval
        Minimum seconds between updates of the growing tail (at most about two display
        messages per interval).
    max_tokens
        The cap in force, quoted when a reply is cut off.
    target
        The server's address, named while waiting.
    remote_images
        Show images from other addresses (off: as links; see ``ChatSettings.remote_images``).
    clock
        Monotonic clock (injected for tests).
    """

    def __init__(
        self,
        output: Output,
        *,
        interval: float = 0.1,
        max_tokens: int | None = None,
        target: str = "",
        remote_images: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.output = output
        self.interval = interval
        self.max_tokens = max_tokens
        self.target = target
        self.remote_images = remote_images
        self.clock = clock
        self._rounds: list[_Round] = []
        self._status: _OutputSlot | None = None
        self._last_flush = float("-inf")
        self._notices: list[tuple[str, str]] = []
        self._running: ToolBlock | None = None
        self._render_seconds = 0.0
        self.messages = 0

    # -- output plumbing --

    def _show(self, html: str, text: str, kind: str) -> _OutputSlot:
        if self._status is not None:
            # The status line turns into the first real output: no empty leftover.
            slot, self._status = self._status, None
            slot.kind = kind
            self._update(slot, html, text)
            return slot
        self.messages += 1
        return _OutputSlot(self.output.show(_bundle(html, text)), kind)

    def _update(self, slot: _OutputSlot, html: str, text: str) -> None:
        self.messages += 1
        self.output.update(slot.handle, _bundle(html, text))

    def _set_status(self, text: str) -> None:
        if self._status is None:
            self.messages += 1
            self._status = _OutputSlot(
                self.output.show(_bundle(status_line_html(text), text)), "status"
            )
        else:
            self._update(self._status, status_line_html(text), text)

    @property
    def _round(self) -> _Round:
        if not self._rounds:
            self._rounds.append(_Round(remote_images=self.remote_images))
        return self._rounds[-1]

    # -- events --

    def handle(self, event: Event) -> None:
        """Take one event (called on the cell's thread, in order)."""
        if isinstance(event, ContentDelta):
            current = self._round
            current.streamed.append(event.text)
            current.pending.extend(current.markdown.feed(event.text))
            current.dirty_tail = True
            self.flush()
        elif isinstance(event, ReasoningDelta):
            self._round.reasoning += event.text
            self._round.dirty_reasoning = True
            self.flush()
        elif isinstance(event, ToolCallDelta):
            block = self._round.tools.setdefault(event.index, ToolBlock())
            block.name = event.name or block.name
            block.arguments += event.arguments
            self._round.dirty_tools.add(event.index)
            self.flush()
        elif isinstance(event, RequestStarted):
            self._start_round(event)
        elif isinstance(event, CompletionDone):
            self._end_round(event)
        elif isinstance(event, (ToolCallStarted, ToolCallFinished)):
            self._tool_progress(event)
        elif isinstance(event, ContextAttached):  # what the model sees, shown before its reply
            html, _, text = attachments_bundle(list(event.attachments))
            self._show(html, text, "attachments")
        elif isinstance(event, (Retrying, StreamFallback, Notice)):
            notice, status = waiting_words(event)
            if notice is not None:
                self._notices.append(notice)
            if status is not None and (self._status is not None or status.startswith("⏳")):
                self._set_status(status)

    def _start_round(self, event: RequestStarted) -> None:
        if self._rounds and event.round == len(self._rounds):
            self._rounds[-1] = _Round(
                remote_images=self.remote_images
            )  # the same request sent again (no streaming)
        elif event.round > 1 or not self._rounds:
            self._rounds.append(_Round(remote_images=self.remote_images))
        if event.round == 1:
            where = f" from {self.target}" if self.target else ""
            self._set_status(f"⏳ Waiting for {event.model or 'the model'}{where}…")
        else:
            self._set_status("⏳ Sending the tool results back to the model…")

    def _end_round(self, event: CompletionDone) -> None:
        current = self._round
        tail = current.markdown.tail
        current.pending.extend([tail] if tail else [])
        current.markdown = StreamingMarkdown()
        # Bring tool blocks up to date with the final calls (ids, complete arguments).
        for position, call in enumerate(event.completion.tool_calls):
            keys = list(current.tools)
            key = keys[position] if position < len(keys) else max(keys, default=-1) + 1
            block = current.tools.setdefault(key, ToolBlock())
            block.update_call(call)
            block.status = "running" if block.status == "streaming" else block.status
            current.dirty_tools.add(key)
        if event.completion.tool_calls or current.dirty_reasoning or current.dirty_tools:
            self.flush(force=True)
        elif current.pending:
            # The reply is complete: the consolidated output follows at once, so the last
            # blocks are rendered for it but not sent on their own (the biggest message of an
            # unpaced reply, sent twice otherwise). If the end is slow to come, idle() sends them.
            current.render_pending()
            current.dirty_tail = False
        current.tail_slot = None if current.unshown is None else current.tail_slot

    def _tool_progress(self, event: ToolCallStarted | ToolCallFinished) -> None:
        call = event.call if isinstance(event, ToolCallStarted) else event.result.call
        current = self._round
        key = next(
            (k for k, b in current.tools.items() if b.name == call.name and b.result is None),
            None,
        )
        if key is None:
            key = max(current.tools, default=-1) + 1
            current.tools[key] = ToolBlock()
        block = current.tools[key]
        block.update_call(call)
        if isinstance(event, ToolCallStarted):
            block.status = "running"
            self._running = block
        else:
            block.status = event.result.status
            block.result = event.result
            self._running = None
        current.dirty_tools.add(key)
        self.flush(force=True)

    def idle(self) -> None:
        """Show what rate limiting held back (called when no event arrived for a while)."""
        self.flush()

    # -- drawing --

    def flush(self, *, force: bool = False) -> None:
        """Send what changed, unless the last update was less than ``interval`` ago."""
        current = self._round
        if current.unshown is not None:
            html, text = current.unshown
            current.unshown = None
            self._show_blocks(current, html, text)
        if not (
            current.dirty_reasoning or current.pending or current.dirty_tail or current.dirty_tools
        ):
            # Nothing to send: do not restart the rate window either, or the first token after
            # a quiet spell would wait for it.
            return
        now = self.clock()
        # A long tail (a big code block under way) can take tens of milliseconds to render:
        # then update less often, so rendering never takes more than a quarter of the time.
        interval = max(self.interval, 4 * self._render_seconds)
        if not force and now - self._last_flush < interval:
            return
        self._last_flush = now
        if current.dirty_reasoning:
            current.dirty_reasoning = False
            html = reasoning_html(current.reasoning, streaming=True)
            text = "[thinking…]"
            if current.reasoning_slot is None:
                current.reasoning_slot = self._show(html, text, "reasoning")
            else:
                self._update(current.reasoning_slot, html, text)
        if current.pending:
            self._freeze(current)
        if current.dirty_tail:
            current.dirty_tail = False
            tail = current.markdown.tail
            if tail != current.shown_tail:
                current.shown_tail = tail
                started = time.perf_counter()
                html = render_markdown(tail, partial=True, remote_images=self.remote_images)
                text = tail
                self._render_seconds = time.perf_counter() - started
                if current.tail_slot is None:
                    current.tail_slot = self._show(html, text, "content")
                else:
                    self._update(current.tail_slot, html, text)
        for key in sorted(current.dirty_tools):
            block = current.tools[key]
            slot = current.tool_slots.get(key)
            if slot is None:
                current.tool_slots[key] = self._show(block.html(), block.text(), "tool")
            else:
                self._update(slot, block.html(), block.text())
        current.dirty_tools.clear()

    def _freeze(self, current: _Round) -> None:
        """Send completed blocks once; the tail continues in a new output below them."""
        html, text = current.render_pending()
        self._show_blocks(current, html, text)

    def _show_blocks(self, current: _Round, html: str, text: str) -> None:
        current.unshown = None
        if current.tail_slot is None:
            self._show(html, text, "content")
        else:
            self._update(current.tail_slot, html, text)
        current.tail_slot = None
        current.shown_tail = ""
        current.dirty_tail = bool(current.markdown.tail)

    # -- the end --

    def run_tool(self, function: Callable[[], T]) -> T:
        """Run a tool on this thread, keeping what it prints or displays with its block."""
        block = self._running
        if block is None:
            return function()
        from IPython.utils.capture import capture_output

        with capture_output() as captured:
            result = function()
        block.captured.append(captured)
        captured.show()
        return result

    def finish(
        self,
        reply: Reply | None,
        *,
        error: BaseException | None = None,
        conversation_usage: Usage | None = None,
    ) -> None:
        """Replace the streamed outputs with one clean output (and re-show tool outputs)."""
        if error is not None and (reply is None or not (reply.completions or reply.tool_results)):
            # Nothing arrived: the error line below the cell says it all.
            self.output.clear(wait=False)
            return
        bundle = self.final_bundle(reply, error=error, conversation_usage=conversation_usage)
        self.output.clear()
        self.messages += 1
        self.output.show(bundle)
        for current in self._rounds:
            for block in current.tools.values():
                for captured in block.captured:
                    captured.show()

    def final_bundle(
        self,
        reply: Reply | None,
        *,
        error: BaseException | None = None,
        conversation_usage: Usage | None = None,
    ) -> Bundle:
        """The consolidated output: reasoning, answer, tool blocks, notes and footer."""
        return reply_bundle(
            reply if reply is not None else Reply(),
            remote_images=self.remote_images,
            notices=self._notices,
            max_tokens=self.max_tokens,
            error=error,
            conversation_usage=conversation_usage,
            content_html=self._content_html,
        )

    def _content_html(self, position: int, content: str) -> str:
        if position < len(self._rounds):
            return self._rounds[position].content_html(content)
        return render_markdown(content, remote_images=self.remote_images)
