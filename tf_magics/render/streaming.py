"""A reply that is still arriving, split into completed Markdown blocks and a growing tail.

A completed top-level block never changes, so the live view renders and sends it once; only the
tail is re-rendered while tokens arrive. Block boundaries follow the same line rules as the
renderer (:mod:`~tf_magics.render.lines`), so a block is never cut inside a list, a fence or a
table.
"""

from __future__ import annotations

from collections.abc import Iterator

from .lines import LineMachine

__all__ = ["StreamingMarkdown"]


class StreamingMarkdown:
    """Split a streaming markdown reply into completed blocks and a growing tail.

    A block is complete when the next top-level block begins: after blank lines, the first line
    that does not continue it. Blank lines do not end a block inside a fenced code block (until its
    closing fence), in a list when the next line is an item or is indented into an open item (loose
    lists, continued numbering), inside a raw ``<details>`` element, or after indented code when the
    next line is indented code. Decisions are made on complete lines only, so the blocks do not
    depend on how the text was cut into pieces. Each block carries the blank lines that follow it;
    the completed blocks plus :attr:`tail` are always exactly :attr:`text`.

    Rendering each completed block once with :func:`render_markdown` and the tail with
    ``render_markdown(tail, partial=True)`` looks like rendering the whole text, except for
    reference-style link definitions, which only apply within their own block.

    Work is proportional to the text fed: each feed looks at the new piece, and each line is
    classified once when its newline arrives.
    """

    def __init__(self) -> None:
        self._pieces: list[str] = []
        self._line_parts: list[str] = []  # the current line, not yet ended by a newline
        self._block: list[str] = []  # complete lines of the block under way
        self._blanks: list[str] = []  # blank lines after it, until the next line decides
        self._has_content = False
        self._blocks: list[str] = []
        self._machine = LineMachine()
        self._text: str | None = ""
        self._tail: str | None = ""
        self._finished = False

    @property
    def text(self) -> str:
        """Everything fed so far."""
        if self._text is None:
            self._text = "".join(self._pieces)
            self._pieces = [self._text]
        return self._text

    @property
    def tail(self) -> str:
        """The markdown after the last completed block (still growing)."""
        if self._tail is None:
            self._tail = "".join(self._iter_tail())
        return self._tail

    @property
    def blocks(self) -> tuple[str, ...]:
        """The completed blocks so far, in order."""
        return tuple(self._blocks)

    def _iter_tail(self) -> Iterator[str]:
        yield from self._block
        yield from self._blanks
        yield from self._line_parts

    def feed(self, piece: str) -> list[str]:
        """Add ``piece`` of the reply.

        Parameters
        ----------
        piece
            The next piece of text, cut anywhere.

        Returns
        -------
        list[str]
            Markdown source of the blocks this piece completed, in order (often empty).
        """
        if self._finished:
            raise ValueError("StreamingMarkdown.feed() after finish()")
        if not piece:
            return []
        self._pieces.append(piece)
        self._text = self._tail = None
        completed: list[str] = []
        start = 0
        while (newline := piece.find("\n", start)) >= 0:
            self._line_parts.append(piece[start : newline + 1])
            line = "".join(self._line_parts)
            self._line_parts = []
            block = self._take_line(line)
            if block is not None:
                completed.append(block)
            start = newline + 1
        if start < len(piece):
            self._line_parts.append(piece[start:])
        return completed

    def finish(self) -> list[str]:
        """End the stream: the tail becomes the last block.

        Returns
        -------
        list[str]
            The last block, or nothing when the tail is empty.
        """
        self._finished = True
        tail = self.tail
        self._block, self._blanks, self._line_parts = [], [], []
        self._tail = ""
        if not tail:
            return []
        self._blocks.append(tail)
        return [tail]

    def _take_line(self, line: str) -> str | None:
        content = line.rstrip("\r\n").expandtabs(4)
        machine = self._machine
        if machine.fence is None and not content.strip():
            machine.step(content)
            (self._blanks if self._has_content else self._block).append(line)
            return None
        completed = None
        if self._blanks:
            if machine.continues_after_blank(content):
                self._block.extend(self._blanks)
            else:
                completed = "".join(self._block) + "".join(self._blanks)
                self._blocks.append(completed)
                self._block = []
            self._blanks = []
        machine.step(content)
        self._block.append(line)
        self._has_content = True
        return completed
