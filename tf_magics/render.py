r"""Markdown replies to safe HTML, whole or while they stream.

Model replies are markdown and **untrusted**: JupyterLab runs script found in a live ``text/html``
output, so everything rendered here ends in :func:`sanitize_html` (nh3, an allow-list).

Public API
----------
:func:`render_markdown`
    Markdown source to sanitized HTML: headings, lists, tables, fenced code highlighted by pygments,
    ``~~strikethrough~~``; math (``$...$``, ``$$...$$``, ``\(...\)``, ``\[...\]``,
    ``\begin{env}...\end{env}``) passed through verbatim for the frontend's MathJax.
:func:`sanitize_html`
    The allow-list sanitizer on its own.
:func:`escape`
    HTML-escape plain text, for the view's own (trusted) wrapper markup.
:class:`StreamingMarkdown`
    Splits a growing reply into completed top-level blocks, each rendered once, and a growing tail,
    re-rendered while tokens arrive.

How a reply is rendered
-----------------------
1. :func:`~tf_magics._markdown_source.rewrite` prepares the source (lines classified by
   :mod:`tf_magics._markdown_lines`), cutting out fenced code, highlighted by
   :mod:`tf_magics._highlight`, and math, kept verbatim, into a stash, and escaping every raw
   HTML tag but a few harmless inline ones;
2. pulldown-cmark (through ``pyromark``) converts it: CommonMark with tables and
   ``~~strikethrough~~``;
3. math goes back, the result is sanitized (:mod:`tf_magics._sanitize`), and the highlighted
   code goes back (built here from escaped text, it needs no sanitizing).

Single newlines are line breaks: chat models write line-oriented text (addresses, verse,
``Key: value`` lines) and never hard-wrap prose, and chat interfaces show it that way.

Nothing heavy is imported until the first render: ``pyromark``, ``pygments`` and ``nh3`` load
lazily.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from ._markdown_lines import LineMachine
from ._markdown_source import Stash, rewrite
from ._sanitize import escape, sanitize_html

__all__ = ["StreamingMarkdown", "escape", "render_markdown", "sanitize_html"]

# ------------------------------------------------------------------------------------------------
# Markdown conversion.

_TABLE_ALIGN_RE = re.compile(r'<(th|td) style="text-align: (left|center|right)">')


@lru_cache(maxsize=1)
def _options() -> Any:
    import pyromark

    return pyromark.Options.ENABLE_TABLES | pyromark.Options.ENABLE_STRIKETHROUGH


def _convert(source: str) -> str:
    """CommonMark (with tables and strikethrough) to HTML: pulldown-cmark, through pyromark."""
    import pyromark

    html = pyromark.html(source, options=_options())
    # ``align`` rather than ``style``: GitHub keeps it in a saved notebook, and strips styles.
    return _TABLE_ALIGN_RE.sub(r'<\1 align="\2">', html).rstrip("\n")


def render_markdown(text: str, *, sanitize: bool = True, partial: bool = False) -> str:
    r"""Render a markdown reply to HTML.

    Parameters
    ----------
    text
        Markdown source, as the model wrote it (untrusted).
    sanitize
        Pass the result through :func:`sanitize_html` (the default); off only for trusted input.
    partial
        ``text`` is the growing tail of a streaming reply: an unclosed ``$$`` or ``\[`` in its last
        paragraph is closed so the math under way does not pass through markdown. (An unclosed code
        fence always runs to the end, as in CommonMark.)

    Returns
    -------
    str
        An HTML fragment; math is left verbatim (HTML-escaped) for the frontend's MathJax.
    """
    if not text.strip():
        return ""
    stash = Stash()
    converted = _convert(rewrite(text, stash, partial))
    result = stash.restore(converted)
    return stash.restore_blocks(_tidy(sanitize_html(result) if sanitize else result))


_EMPTY_PARAGRAPH_RE = re.compile(r"<p>\s*</p>\n?")
_BREAK_AFTER_TAG_RE = re.compile(r'(<details(?: open(?:="[^"]*")?)?>|</summary>)\s*<br ?/?>')


def _tidy(html: str) -> str:
    """Drop the empty paragraphs and line breaks that raw ``<details>`` lines leave behind."""
    return _BREAK_AFTER_TAG_RE.sub(r"\1", _EMPTY_PARAGRAPH_RE.sub("", html))


# ------------------------------------------------------------------------------------------------
# Streaming.


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

    def render_tail(self) -> str:
        """Render :attr:`tail` as a streaming tail (``render_markdown(tail, partial=True)``)."""
        return render_markdown(self.tail, partial=True)

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
