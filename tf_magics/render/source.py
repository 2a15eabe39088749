r"""A model's markdown prepared for a CommonMark parser: code, math and raw HTML taken care of.

Before converting, :func:`rewrite` makes a line pass (lines classified by
:class:`~tf_magics._markdown_lines.LineMachine`, which the stream splitter shares, so that the two
agree on where every block ends):

* fenced code (any indentation inside list items, closing fence at least as long as the opening
  one, an unclosed fence runs to the end) is cut out, highlighted, and put back after conversion;
* list items are re-indented to their parent item's content column, and an item nests at most
  twelve deep;
* a table or a ``</details>`` line directly under a paragraph starts its own block;
* math and escaped dollars are cut out, and put back verbatim after conversion;
* raw HTML is shown as text, except a few harmless tags (``<br>``, ``<sub>``, ``<sup>``, ``<kbd>``,
  ``<details>``, ...) written without attributes;
* every line break inside a paragraph becomes a hard break (two trailing spaces).

What is cut out waits in a :class:`Stash` under a random placeholder, which
:meth:`Stash.restore` and :meth:`Stash.restore_blocks` swap back into the converted HTML.
"""

from __future__ import annotations

import os
import re

from .highlight import highlight_code
from .lines import (
    FENCE_RE,
    MARKER_RE,
    TABLE_DELIMITER_RE,
    Line,
    LineMachine,
    indentation,
    is_marker,
)
from .sanitize import escape

__all__ = ["Stash", "rewrite"]

# Whole lines.
_DETAILS_CLOSE_LINE_RE = re.compile(r"^ *</details *> *$", re.IGNORECASE)
_HASHTAG_RE = re.compile(r"#+[^#\s]")

# Inside a paragraph.
_ALLOWED_RAW_TAGS = "b|br|code|del|details|em|i|ins|kbd|mark|s|small|strong|sub|summary|sup|u|wbr"
_RAW_TAG_RE = re.compile(rf"</?(?:{_ALLOWED_RAW_TAGS}) */?>|<details +open *>", re.IGNORECASE)
_AUTOLINK_RE = re.compile(
    r"<(?:https?://[^<>\s]*|(?:mailto:)?[^<>\s!@]+@[^@<>\s]+)>", re.IGNORECASE
)
_INLINE_SPECIAL_RE = re.compile(r"[`\\$<[]")
_CLOSE_BRACKET_RE = re.compile(r"]")
_INLINE_MATH_CLOSE_RE = re.compile(r"(?<=[^\s\\])\$(?!\d)")
_DISPLAY_MATH_CLOSE_RE = re.compile(r"\$\$")
_PAREN_MATH_CLOSE_RE = re.compile(r"\\\)")
_BRACKET_MATH_CLOSE_RE = re.compile(r"\\\]")
_BACKTICKS_RE = re.compile(r"`+")
_ENVIRONMENT_RE = re.compile(r"\\begin\{([A-Za-z]+\*?)\}.*?\\end\{\1\}", re.DOTALL)
_DOLLAR_HTML = "<span>$</span>"  # a tag between two dollars keeps MathJax from pairing them


class Stash:
    """Placeholders for HTML cut out before markdown runs and put back after it.

    Two kinds: inline pieces (math, escaped dollars) go back with :meth:`restore`, before the
    result is sanitized; highlighted code blocks, which are built here and hold no model markup
    (pygments escapes every character of the code), go back with :meth:`restore_blocks`, after
    it, so the sanitizer does not spend its time on their colour spans. A block goes back only
    where it can be markup (a paragraph of its own, or between tags): never into an attribute.
    """

    def __init__(self) -> None:
        # Random per render: a reply cannot write a placeholder that would be replaced.
        self.token = os.urandom(6).hex()
        self.prefix = f"tfstash{self.token}x"
        self.block_prefix = f"tfblock{self.token}x"
        self.items: list[str] = []
        self.blocks: list[str] = []

    def store(self, html: str) -> str:
        """Keep inline ``html`` aside; return the placeholder that stands for it in the source."""
        self.items.append(html)
        return f"{self.prefix}{len(self.items) - 1}y"

    def store_block(self, html: str) -> str:
        """Keep a trusted block of ``html`` aside (see the class docstring)."""
        self.blocks.append(html)
        return f"{self.block_prefix}{len(self.blocks) - 1}y"

    def restore(self, html: str) -> str:
        """Put every inline piece back in place of its placeholder in converted ``html``."""
        if not self.items:
            return html

        def put_back(m: re.Match[str]) -> str:
            return self.items[int(m.group(2))] if m.group(1) == self.token else m.group(0)

        return _INLINE_PLACEHOLDER_RE.sub(put_back, html)

    def restore_blocks(self, html: str) -> str:
        """Put the code blocks back into converted (and sanitized) ``html``."""
        if not self.blocks:
            return html

        def put_back(m: re.Match[str]) -> str:
            token, index = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
            return self.blocks[int(index)] if token == self.token else m.group(0)

        def drop(m: re.Match[str]) -> str:  # a placeholder out of place: never into an attribute
            return "" if m.group(1) == self.token else m.group(0)

        return _LEFTOVER_BLOCK_RE.sub(drop, _BLOCK_PLACEHOLDER_RE.sub(put_back, html))


# Compiled once (a pattern per random token would be compiled on every render).
_INLINE_PLACEHOLDER_RE = re.compile(r"tfstash([0-9a-f]{12})x(\d+)y")
_BLOCK = r"tfblock([0-9a-f]{12})x(\d+)y"
_BLOCK_PLACEHOLDER_RE = re.compile(rf"<p>{_BLOCK}</p>|(?<=>)[ \t\n]*{_BLOCK}(?=[ \t\n]*<)")
_LEFTOVER_BLOCK_RE = re.compile(r"tfblock([0-9a-f]{12})x\d+y")


def rewrite(text: str, stash: Stash, partial: bool) -> str:
    r"""Rewrite ``text`` for the CommonMark parser (see the module docstring).

    Parameters
    ----------
    text
        Markdown source, as the model wrote it.
    stash
        Receives the highlighted code blocks and the math cut out of ``text``.
    partial
        ``text`` is a streaming tail: an unclosed ``$$`` or ``\[`` in its last paragraph is closed.

    Returns
    -------
    str
        CommonMark source, with placeholders from ``stash`` in it.
    """
    lines = text.expandtabs(4).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    machine = LineMachine()
    out: list[str] = []
    verbatim: set[int] = set()  # output lines the inline pass must leave alone
    fence: tuple[str, list[str], str] | None = None  # (info, body, indentation)
    # Content columns of the open list items, as rewritten: an item's lines are indented to its
    # column (CommonMark's rule), whatever the marker's width ("100." needs five).
    columns: list[int] = []
    prev_kind = "blank"
    for i, line in enumerate(lines):
        in_list = bool(machine.items)
        info = machine.step(line)
        kind = info.kind
        if kind != "blank":
            del columns[info.depth :]
        pad = " " * (columns[-1] if columns else 0)
        if kind.startswith("fence-"):
            fence = _fence_line(kind, line, info, pad, fence, out, verbatim, stash)
        elif kind == "blank":
            out.append("")
        else:
            top_level_text = prev_kind == "text" and not machine.items
            if info.new_block or _starts_block(line, lines, i, top_level_text):
                out.append("")
            if kind == "code" and in_list and not machine.items:
                # Indented code right after a list: an empty paragraph in between (removed
                # after rendering) keeps it out of the list's last item.
                out.extend(["", stash.store(""), ""])
            if kind == "code":
                verbatim.add(len(out))
            source = _line_source(line, info, pad)
            out.append(source)
            if kind == "item":  # its content starts after the marker and one space
                columns.append(source.index(" ", len(pad)) + 1)
        prev_kind = kind
    if fence is not None:  # CommonMark: an unclosed fence runs to the end of the document
        _emit_fence(out, verbatim, fence, stash)
    return _protect_inline(out, verbatim, stash, partial)


def _fence_line(
    kind: str,
    line: str,
    info: Line,
    pad: str,
    fence: tuple[str, list[str], str] | None,
    out: list[str],
    verbatim: set[int],
    stash: Stash,
) -> tuple[str, list[str], str] | None:
    """Take one line of a fenced block; returns the fence still open (``None`` once closed)."""
    if kind == "fence-open":
        opening = FENCE_RE.match(line)
        assert opening is not None
        return (opening.group(3), [], pad)
    assert fence is not None
    if kind == "fence-body":
        fence[1].append(_dedent(line, info.extra))
        return fence
    _emit_fence(out, verbatim, fence, stash)
    return None


def _line_source(line: str, info: Line, pad: str) -> str:
    """A non-fence line, re-indented to the column of the list item it belongs to."""
    if info.kind == "item":
        marker = MARKER_RE.match(line)
        assert marker is not None
        symbol, content = marker.group(2).replace(")", "."), marker.group(4)
        if is_marker(content):  # "1. 1. 1. ..." would nest (and recurse) once per marker
            content = re.sub(r"^(\d*)([-*+.)])", r"\1\\\2", content)
        return f"{pad}{symbol} {content}"
    text = line.lstrip(" ")
    if info.kind == "text" and _HASHTAG_RE.match(text):  # "#word" is no heading in CommonMark
        text = "\\" + text
    return pad + " " * max(info.extra, 0) + text


def _dedent(line: str, indent: int) -> str:
    return line[min(indent, indentation(line)) :]


def _starts_block(line: str, lines: list[str], i: int, after_paragraph: bool) -> bool:
    """A ``</details>`` line (a table would take it for a row), or a table under a paragraph."""
    if _DETAILS_CLOSE_LINE_RE.match(line):
        return True
    table = "|" in line and i + 1 < len(lines) and TABLE_DELIMITER_RE.match(lines[i + 1])
    return after_paragraph and bool(table)


def _emit_fence(
    out: list[str], verbatim: set[int], fence: tuple[str, list[str], str], stash: Stash
) -> None:
    info, body, pad = fence
    language = info.strip().lstrip("{.").split(" ")[0].rstrip("}") if info.strip() else ""
    out.extend(["", pad + stash.store_block(highlight_code("\n".join(body), language)), ""])
    verbatim.add(len(out) - 2)


def _protect_inline(lines: list[str], verbatim: set[int], stash: Stash, partial: bool) -> str:
    """Stash math and escaped dollars, and escape raw HTML, paragraph by paragraph."""
    result: list[str] = []
    chunk: list[str] = []
    last_line = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    for i, line in enumerate(lines):
        if line.strip() and i not in verbatim:
            chunk.append(line)
            continue
        if chunk:
            last = partial and i > last_line
            result.append(_protect_chunk("\n".join(chunk), stash, partial=last))
            chunk = []
        result.append(line)
    if chunk:
        result.append(_protect_chunk("\n".join(chunk), stash, partial=partial))
    return "\n".join(result)


def _protect_chunk(s: str, stash: Stash, partial: bool) -> str:
    """Protect one paragraph: code spans stay as they are, math is stashed, ``<`` is escaped.

    Every line break becomes a hard one (two trailing spaces; CommonMark ignores them at the end
    of a block and in headings).
    """
    return _Protector(s, stash, partial).run().replace("\n", "  \n")


class _Protector:
    """One left-to-right pass over a paragraph, in time linear in its length."""

    def __init__(self, s: str, stash: Stash, partial: bool) -> None:
        self.s, self.stash, self.partial = s, stash, partial
        self.absent: dict[str, int] = {}  # a closer known not to occur at or after this position

    def run(self) -> str:
        s, out, i = self.s, [], 0
        while (m := _INLINE_SPECIAL_RE.search(s, i)) is not None:
            j = m.start()
            out.append(s[i:j])
            text, i = self.at(j)
            out.append(text)
        out.append(s[i:])
        return "".join(out)

    def find(self, key: str, pattern: re.Pattern[str], start: int) -> re.Match[str] | None:
        """``pattern.search(s, start)``, remembering failures: later searches fail as well."""
        if self.absent.get(key, len(self.s) + 1) <= start:
            return None
        found = pattern.search(self.s, start)
        if found is None:
            self.absent[key] = start
        return found

    def math(self, source: str) -> str:
        return self.stash.store(escape(source))

    def at(self, j: int) -> tuple[str, int]:
        """Handle the special character at ``s[j]``; return the replacement and where to go on."""
        s, c = self.s, self.s[j]
        if c == "`":
            run = _BACKTICKS_RE.match(s, j)
            assert run is not None
            ticks = run.group(0)
            close = self.find(ticks, re.compile(rf"(?<!`){ticks}(?!`)"), run.end())
            end = close.end() if close else run.end()
            return s[j:end], end
        if c == "<":
            tag = _RAW_TAG_RE.match(s, j) or _AUTOLINK_RE.match(s, j)
            return (tag.group(0), tag.end()) if tag else ("&lt;", j + 1)
        if c == "[":
            # A bracket that no "]" follows starts no link; as an entity it spares the parser a
            # scan to the end of the paragraph for each one.
            return ("[" if self.find("]", _CLOSE_BRACKET_RE, j + 1) else "&#91;"), j + 1
        if c == "\\":
            return self.backslash(j)
        if s.startswith("$$", j):
            close = self.find("$$", _DISPLAY_MATH_CLOSE_RE, j + 2)
            if close and s[j + 2 : close.start()].strip():
                return self.math(s[j : close.end()]), close.end()
            if self.partial and close is None:
                return self.math(s[j:] + "$$"), len(s)
            return self.stash.store(_DOLLAR_HTML) * 2, j + 2
        if j + 1 < len(s) and not s[j + 1].isspace():
            close = self.find("$", _INLINE_MATH_CLOSE_RE, j + 2)
            if close:
                return self.math(s[j : close.end()]), close.end()
        return self.stash.store(_DOLLAR_HTML), j + 1

    def backslash(self, j: int) -> tuple[str, int]:
        s, nxt = self.s, self.s[j + 1 : j + 2]
        if nxt == "$":
            return self.stash.store(_DOLLAR_HTML), j + 2
        if nxt in ("(", "["):
            closer = _PAREN_MATH_CLOSE_RE if nxt == "(" else _BRACKET_MATH_CLOSE_RE
            close = self.find(nxt, closer, j + 2)
            if close:
                return self.math(s[j : close.end()]), close.end()
            if self.partial and nxt == "[":
                return self.math(s[j:] + "\\]"), len(s)
        elif s.startswith("\\begin{", j):
            env = _ENVIRONMENT_RE.match(s, j)
            if env:
                return self.math(env.group(0)), env.end()
        return s[j : j + 2], j + 2
