"""Markdown line classification: what each source line is, given the lines before it.

:class:`LineMachine` reads a reply one line at a time and says what the line is (blank, fence
opening, body or closing, list item, paragraph text, indented code, block quote, block-starting
line) and how deep in open list items it sits, following CommonMark's rules rather than the original
Markdown's: a line belongs to a list item when it is indented to the item's content column; a
fence may open at any indentation inside an item and closes with a fence at least as long.

Two readers share it so that they agree on where a list, a fence or a quote ends: the source
rewrite for the CommonMark parser (:mod:`tf_magics._markdown_source`) and the stream splitter
(:class:`tf_magics.render.StreamingMarkdown`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "FENCE_RE",
    "MARKER_RE",
    "TABLE_DELIMITER_RE",
    "Line",
    "LineMachine",
    "indentation",
    "is_marker",
]

FENCE_RE = re.compile(r"^( *)(`{3,}|~{3,})(.*)$")  # indent, fence, info string
MARKER_RE = re.compile(r"^( *)([-*+]|\d{1,9}[.)])( +|$)(.*)$")  # indent, marker, spaces, content
_HR_RE = re.compile(r"^ {0,3}([-*_])(?: *\1){2,} *$")
_QUOTE_RE = re.compile(r"^ {0,3}>")
_SETEXT_RE = re.compile(r"^ {0,3}=+ *$")  # "---" under a paragraph is a thematic break to us
_HEADING_RE = re.compile(r"^ {0,3}#{1,6}(?: |$)")
TABLE_DELIMITER_RE = re.compile(r"^ *\|? *:?-+:? *(?:\| *:?-+:? *)*\|? *$")
_MAX_LIST_DEPTH = 12
_DETAILS_OPEN_RE = re.compile(r"<details(?: +open)? *>", re.IGNORECASE)
_DETAILS_CLOSE_RE = re.compile(r"</details *>", re.IGNORECASE)


def indentation(line: str) -> int:
    """The number of spaces ``line`` starts with."""
    return len(line) - len(line.lstrip(" "))


def is_marker(line: str) -> re.Match[str] | None:
    """A list item's first line (not a thematic break such as ``- - -``)."""
    if _HR_RE.match(line):
        return None
    return MARKER_RE.match(line)


@dataclass(frozen=True)
class Line:
    """What one source line is, and where it goes in the rewritten source."""

    kind: str  # blank | fence-open | fence-body | fence-close | item | text | code | quote | break
    depth: int = 0  # list items containing the line (for items: their parents)
    extra: int = 0  # indentation beyond the containing item's content column
    new_block: bool = False  # gets a blank line before it, so that it starts a block of its own


class LineMachine:
    """Classify markdown lines one at a time, tracking open fences and list items.

    The state is what a line needs from the lines before it: an open fence, the stack of open list
    items (each item's content column, CommonMark style), and what the previous line was.
    """

    def __init__(self) -> None:
        self.fence: tuple[str, int, int] | None = None  # (char, length, indent)
        self.items: list[int] = []  # content columns of the open list items
        self.prev = "blank"
        self.chunk_code = False  # the block since the last blank line is an indented code block
        self.chunk_in_item = False  # the block since the last blank line began inside a list item
        self.details = 0  # raw <details> elements open
        self.table = False  # the lines since the last blank line hold a table
        self.quote = False  # a block quote is open (its paragraph may go on lazily)
        self._header = False  # the previous line could be a table's header row

    def continues_after_blank(self, line: str) -> bool:
        """Whether ``line``, after blank lines, continues the block before them.

        It does inside a fence or a raw ``<details>`` element, in a list when the line is an item or
        is indented to an open item, and after indented code when it is indented code. (A blank
        line ends a block quote: a quote line after it starts another quote, as in CommonMark.)
        """
        n = indentation(line)
        if self.fence is not None:
            return True
        if self.items and (n >= self.items[0] or is_marker(line)):
            return True
        if self.details:
            return True
        return self.chunk_code and n >= 4

    def step(self, line: str) -> Line:
        """Classify ``line`` (no newline, tabs expanded) and advance the state."""
        if self.fence is not None:
            return self._fence_line(line)
        if not line.strip():
            self.prev = "blank"
            self.table = self._header = self.quote = False
            return Line("blank")
        first_in_chunk = self.prev == "blank"
        if first_in_chunk:  # the chunk flags describe the last chunk until the next one begins
            self.chunk_code = False
        result = self._block_line(line)
        if result.kind == "text" and not result.depth:
            # A table (a header row, then a delimiter row) runs until a blank line or a block.
            self.table = self.table or (self._header and bool(TABLE_DELIMITER_RE.match(line)))
            self._header = "|" in line
        else:
            self.table = self._header = False
        if first_in_chunk:
            self.chunk_in_item = result.kind != "item" and result.depth > 0
        if result.kind not in ("code", "fence-open") and "details" in line:
            opened = len(_DETAILS_OPEN_RE.findall(line)) - len(_DETAILS_CLOSE_RE.findall(line))
            self.details = max(0, self.details + opened)
        self.prev = result.kind
        self.quote = result.kind == "quote" or (self.quote and result.kind == "text")
        if result.kind == "code":
            self.chunk_code = not self.items
        return result

    def _fence_line(self, line: str) -> Line:
        assert self.fence is not None
        char, length, indent = self.fence
        stripped = line.strip()
        if (
            indentation(line) <= indent + 3
            and stripped.startswith(char * length)
            and not stripped.strip(char)
        ):
            self.fence = None
            self.prev = "fence-close"
            return Line("fence-close", depth=len(self.items))
        return Line("fence-body", depth=len(self.items), extra=indent)

    def _pop_items(self, n: int) -> None:
        while self.items and self.items[-1] > n:
            self.items.pop()

    def _block_line(self, line: str) -> Line:
        n = indentation(line)
        lazy = self.prev in ("text", "item", "quote")  # this line could continue a paragraph
        base = self.items[-1] if self.items else 0
        fence = FENCE_RE.match(line)
        if fence and n <= base + 3 and not (fence.group(2)[0] == "`" and "`" in fence.group(3)):
            self._pop_items(n)
            self.fence = (fence.group(2)[0], len(fence.group(2)), n)
            return Line("fence-open", depth=len(self.items))
        if not lazy and n >= base + 4:
            return self._code_line(n)
        marker = is_marker(line)
        if (
            marker
            and n < base + 4
            # Only a paragraph of the same container resists the interruption: not a table,
            # and not a quote's paragraph, which an unquoted line does not belong to.
            and (self.items or not lazy or self.table or self.quote or _can_interrupt(marker))
        ):
            return self._item_line(marker, n, lazy)
        quote = bool(_QUOTE_RE.match(line))
        starts_block = quote or bool(
            _HR_RE.match(line) or _HEADING_RE.match(line) or (lazy and _SETEXT_RE.match(line))
        )
        if self.items and n < self.items[-1] and (starts_block or not lazy):
            self._pop_items(n)
            if not lazy and n >= (self.items[-1] if self.items else 0) + 4:
                return self._code_line(n)
            extra = n - self.items[-1] if self.items else n
            kind = "quote" if quote else "break" if starts_block else "text"
            # Out of the list: a blank line before it says so to the parser too.
            return Line(kind, depth=len(self.items), extra=extra, new_block=not self.items)
        if self.items and lazy:
            # A lazy continuation line stays in the paragraph it continues.
            return Line("quote" if quote else "text", depth=len(self.items))
        extra = n - base if self.items else n
        return Line(
            "quote" if quote else "break" if starts_block else "text", len(self.items), extra
        )

    def _code_line(self, n: int) -> Line:
        self._pop_items(n)
        base = self.items[-1] if self.items else 0
        return Line("code", depth=len(self.items), extra=n - base)

    def _item_line(self, marker: re.Match[str], n: int, lazy: bool) -> Line:
        # An item after an indented continuation block starts afresh after a blank line.
        new_block = (lazy and not self.items) or self.chunk_in_item
        self._pop_items(n)
        if len(self.items) >= _MAX_LIST_DEPTH:  # deeper items become siblings (recursion limit)
            self.items.pop()
        depth = len(self.items)
        spaces, content = len(marker.group(3)), marker.group(4)
        width = len(marker.group(2)) + (spaces if content and spaces <= 4 else 1)
        self.items.append(n + width)
        return Line("item", depth=depth, new_block=new_block)


def _can_interrupt(marker: re.Match[str]) -> bool:
    """CommonMark: a list interrupts a paragraph if it is a bullet list or starts at 1."""
    if not marker.group(4).strip():
        return False
    number = marker.group(2)[:-1]
    return not number.isdigit() or int(number) == 1
