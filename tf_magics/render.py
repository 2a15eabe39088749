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

How the markdown is read
------------------------
Python-Markdown follows the original Markdown rules, which models do not write: a list needs a
blank line before it and 4-space indentation to nest or continue, fences inside list items are not
recognised. Before converting, a line pass rewrites the source into what Python-Markdown
understands, with CommonMark's meaning:

* fenced code (any indentation inside list items, closing fence at least as long as the opening
  one, an unclosed fence runs to the end) is cut out, highlighted, and put back after conversion;
* list items are re-indented to Python-Markdown's 4-column steps, following CommonMark's rule that a
  line belongs to an item when it is indented to the item's content;
* a list, a table or a block quote directly under a paragraph line starts its own block;
* math and escaped dollars are cut out, and put back verbatim after conversion;
* raw HTML is shown as text, except a few harmless tags (``<br>``, ``<sub>``, ``<sup>``, ``<kbd>``,
  ``<details>``, ...) written without attributes.

Single newlines are line breaks (``nl2br``): chat models write line-oriented text (addresses,
verse, ``Key: value`` lines) and never hard-wrap prose, and chat interfaces show it that way.

Code is coloured with inline ``style`` attributes whose colours are JupyterLab's own editor theme
variables (``var(--jp-mirror-editor-keyword-color, #859900)``): they follow the light and the dark
theme, and fall back to Solarized accents, which read on white and on black, where the variables are
missing (nbviewer, VS Code). GitHub strips styles and shows plain code. No stylesheet is needed, so
every block renders on its own.

Nothing heavy is imported until the first render: ``markdown``, ``pygments`` and ``nh3`` load
lazily.
"""

from __future__ import annotations

import html as _html
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = ["StreamingMarkdown", "escape", "render_markdown", "sanitize_html"]

# ------------------------------------------------------------------------------------------------
# Line classification, shared by the renderer and the stream splitter so that both agree on where a
# list, a fence or a quote ends.

_FENCE_RE = re.compile(r"^( *)(`{3,}|~{3,})(.*)$")
_MARKER_RE = re.compile(r"^( *)([-*+]|\d{1,9}[.)])( +|$)(.*)$")
_HR_RE = re.compile(r"^ {0,3}([-*_])(?: *\1){2,} *$")
_QUOTE_RE = re.compile(r"^ {0,3}>")
_SETEXT_RE = re.compile(r"^ {0,3}=+ *$")  # "---" under a paragraph is a thematic break to us
_HEADING_RE = re.compile(r"^ {0,3}#{1,6}(?: |$)")
_TABLE_DELIMITER_RE = re.compile(r"^ *\|? *:?-+:? *(?:\| *:?-+:? *)*\|? *$")
_MAX_LIST_DEPTH = 12
_DETAILS_OPEN_RE = re.compile(r"<details(?: +open)? *>", re.IGNORECASE)
_DETAILS_CLOSE_RE = re.compile(r"</details *>", re.IGNORECASE)
_DETAILS_CLOSE_LINE_RE = re.compile(r"^ *</details *> *$", re.IGNORECASE)
_HASHTAG_RE = re.compile(r"#+[^#\s]")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_marker(line: str) -> re.Match[str] | None:
    """A list item's first line (not a thematic break such as ``- - -``)."""
    if _HR_RE.match(line):
        return None
    return _MARKER_RE.match(line)


@dataclass(frozen=True)
class _Line:
    """What one source line is, and where it goes in the rewritten source."""

    kind: str  # blank | fence-open | fence-body | fence-close | item | text | code | quote | break
    depth: int = 0  # list items containing the line (for items: their parents)
    extra: int = 0  # indentation beyond the containing item's content column
    new_block: bool = False  # needs a blank line before it for Python-Markdown to see a new block


class _LineMachine:
    """Classify markdown lines one at a time, tracking open fences and list items.

    The state is what a line needs from the lines before it: an open fence, the stack of open list
    items (each item's content column, CommonMark style), and what the previous line was.
    """

    def __init__(self) -> None:
        self.fence: tuple[str, int, int] | None = None  # (char, length, indent)
        self.items: list[int] = []  # content columns of the open list items
        self.prev = "blank"
        self.chunk_quote = False  # the block since the last blank line ends in a block quote
        self.chunk_code = False  # the block since the last blank line is an indented code block
        self.chunk_in_item = False  # the block since the last blank line began inside a list item
        self.details = 0  # raw <details> elements open

    def continues_after_blank(self, line: str) -> bool:
        """Whether ``line``, after blank lines, continues the block before them.

        It does inside a fence or a raw ``<details>`` element, in a list when the line is an item or
        is indented to an open item, after a block quote when it is a quote line (Python-Markdown
        merges the two quotes), and after indented code when it is indented code.
        """
        n = _indent(line)
        if self.fence is not None:
            return True
        if self.items and (n >= self.items[0] or _is_marker(line)):
            return True
        if self.details or (self.chunk_quote and _QUOTE_RE.match(line)):
            return True
        return self.chunk_code and n >= 4

    def step(self, line: str) -> _Line:
        """Classify ``line`` (no newline, tabs expanded) and advance the state."""
        if self.fence is not None:
            return self._fence_line(line)
        if not line.strip():
            self.prev = "blank"
            return _Line("blank")
        first_in_chunk = self.prev == "blank"
        if first_in_chunk:  # the chunk flags describe the last chunk until the next one begins
            self.chunk_quote = self.chunk_code = False
        result = self._block_line(line)
        if first_in_chunk:
            self.chunk_in_item = result.kind != "item" and result.depth > 0
        if result.kind not in ("code", "fence-open") and "details" in line:
            opened = len(_DETAILS_OPEN_RE.findall(line)) - len(_DETAILS_CLOSE_RE.findall(line))
            self.details = max(0, self.details + opened)
        self.prev = result.kind
        if result.kind == "quote":
            self.chunk_quote = True
        elif result.kind == "code":
            self.chunk_code = not self.items
        return result

    def _fence_line(self, line: str) -> _Line:
        assert self.fence is not None
        char, length, indent = self.fence
        stripped = line.strip()
        if (
            _indent(line) <= indent + 3
            and stripped.startswith(char * length)
            and not stripped.strip(char)
        ):
            self.fence = None
            self.prev = "fence-close"
            return _Line("fence-close", depth=len(self.items))
        return _Line("fence-body", depth=len(self.items), extra=indent)

    def _pop_items(self, n: int) -> None:
        while self.items and self.items[-1] > n:
            self.items.pop()

    def _block_line(self, line: str) -> _Line:
        n = _indent(line)
        lazy = self.prev in ("text", "item", "quote")  # this line could continue a paragraph
        base = self.items[-1] if self.items else 0
        fence = _FENCE_RE.match(line)
        if fence and n <= base + 3 and not (fence.group(2)[0] == "`" and "`" in fence.group(3)):
            self._pop_items(n)
            self.fence = (fence.group(2)[0], len(fence.group(2)), n)
            return _Line("fence-open", depth=len(self.items))
        if not lazy and n >= base + 4:
            return self._code_line(n)
        marker = _is_marker(line)
        if marker and n < base + 4 and (self.items or not lazy or _can_interrupt(marker)):
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
            # Python-Markdown would keep the line in the list item without a blank line.
            return _Line(kind, depth=len(self.items), extra=extra, new_block=not self.items)
        if self.items and lazy:
            # A lazy continuation line stays in the paragraph it continues.
            return _Line("quote" if quote else "text", depth=len(self.items))
        extra = n - base if self.items else n
        return _Line(
            "quote" if quote else "break" if starts_block else "text", len(self.items), extra
        )

    def _code_line(self, n: int) -> _Line:
        self._pop_items(n)
        base = self.items[-1] if self.items else 0
        return _Line("code", depth=len(self.items), extra=n - base)

    def _item_line(self, marker: re.Match[str], n: int, lazy: bool) -> _Line:
        # Python-Markdown reads an item after an indented continuation block as more of it.
        new_block = (lazy and not self.items) or self.chunk_in_item
        self._pop_items(n)
        if len(self.items) >= _MAX_LIST_DEPTH:  # deeper items become siblings (recursion limit)
            self.items.pop()
        depth = len(self.items)
        spaces, content = len(marker.group(3)), marker.group(4)
        width = len(marker.group(2)) + (spaces if content and spaces <= 4 else 1)
        self.items.append(n + width)
        return _Line("item", depth=depth, new_block=new_block)


def _can_interrupt(marker: re.Match[str]) -> bool:
    """CommonMark: a list interrupts a paragraph if it is a bullet list or starts at 1."""
    if not marker.group(4).strip():
        return False
    number = marker.group(2)[:-1]
    return not number.isdigit() or int(number) == 1


# ------------------------------------------------------------------------------------------------
# Rewriting the source for Python-Markdown.

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


class _Stash:
    """Placeholders for HTML cut out before markdown runs and put back after it."""

    def __init__(self) -> None:
        self.prefix = f"tfstash{os.urandom(6).hex()}x"
        self.items: list[str] = []
        self._pattern = re.compile(rf"(<p>)?{self.prefix}(\d+)y(</p>)?")

    def store(self, html: str) -> str:
        self.items.append(html)
        return f"{self.prefix}{len(self.items) - 1}y"

    def restore(self, html: str) -> str:
        if not self.items:
            return html

        def put_back(m: re.Match[str]) -> str:
            item = self.items[int(m.group(2))]
            if m.group(1) and m.group(3) and item.startswith("<div"):
                return item  # a code block alone in its paragraph replaces the paragraph
            return (m.group(1) or "") + item + (m.group(3) or "")

        return self._pattern.sub(put_back, html)


def _rewrite(text: str, stash: _Stash, partial: bool) -> str:
    """Rewrite ``text`` into source Python-Markdown reads as CommonMark would (see module doc)."""
    lines = text.expandtabs(4).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    machine = _LineMachine()
    out: list[str] = []
    verbatim: set[int] = set()  # output lines the inline pass must leave alone
    fence: tuple[str, list[str], int] | None = None  # (info, body, depth)
    prev_kind = "blank"
    for i, line in enumerate(lines):
        in_list = bool(machine.items)
        info = machine.step(line)
        kind = info.kind
        pad = " " * (4 * info.depth)
        if kind == "fence-open":
            opening = _FENCE_RE.match(line)
            assert opening is not None
            fence = (opening.group(3), [], info.depth)
        elif kind == "fence-body":
            assert fence is not None
            fence[1].append(_dedent(line, info.extra))
        elif kind == "fence-close":
            assert fence is not None
            _emit_fence(out, verbatim, fence, stash)
            fence = None
        elif kind == "blank":
            out.append("")
        else:
            top_level_text = prev_kind == "text" and not machine.items
            if info.new_block or _starts_block(line, lines, i, top_level_text):
                out.append("")
            if kind == "code" and in_list and not machine.items:
                # Python-Markdown would add indented code after a list to its last item: an
                # empty paragraph in between (removed after rendering) keeps them apart.
                out.extend(["", stash.store(""), ""])
            if kind == "code":
                verbatim.add(len(out))
            out.append(_line_source(line, info, pad))
        prev_kind = kind
    if fence is not None:  # CommonMark: an unclosed fence runs to the end of the document
        _emit_fence(out, verbatim, fence, stash)
    return _protect_inline(out, verbatim, stash, partial)


def _line_source(line: str, info: _Line, pad: str) -> str:
    """A non-fence line, re-indented for Python-Markdown."""
    if info.kind == "item":
        marker = _MARKER_RE.match(line)
        assert marker is not None
        symbol, content = marker.group(2).replace(")", "."), marker.group(4)
        if _is_marker(content):  # "1. 1. 1. ..." would nest (and recurse) once per marker
            content = re.sub(r"^(\d*)([-*+.)])", r"\1\\\2", content)
        return f"{pad}{symbol} {content}"
    text = line.lstrip(" ")
    if info.kind == "text" and _HASHTAG_RE.match(text):  # "#word" is no heading in CommonMark
        text = "\\" + text
    return pad + " " * max(info.extra, 0) + text


def _dedent(line: str, indent: int) -> str:
    return line[min(indent, _indent(line)) :]


def _starts_block(line: str, lines: list[str], i: int, after_paragraph: bool) -> bool:
    """A ``</details>`` line (a table would take it for a row), or a table under a paragraph."""
    if _DETAILS_CLOSE_LINE_RE.match(line):
        return True
    table = "|" in line and i + 1 < len(lines) and _TABLE_DELIMITER_RE.match(lines[i + 1])
    return after_paragraph and bool(table)


def _emit_fence(
    out: list[str], verbatim: set[int], fence: tuple[str, list[str], int], stash: _Stash
) -> None:
    info, body, depth = fence
    language = info.strip().lstrip("{.").split(" ")[0].rstrip("}") if info.strip() else ""
    out.extend(["", " " * (4 * depth) + stash.store(_highlight("\n".join(body), language)), ""])
    verbatim.add(len(out) - 2)


def _protect_inline(lines: list[str], verbatim: set[int], stash: _Stash, partial: bool) -> str:
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


def _protect_chunk(s: str, stash: _Stash, partial: bool) -> str:
    """Protect one paragraph: code spans stay as they are, math is stashed, ``<`` is escaped."""
    return _Protector(s, stash, partial).run()


class _Protector:
    """One left-to-right pass over a paragraph, in time linear in its length."""

    def __init__(self, s: str, stash: _Stash, partial: bool) -> None:
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
            # A bracket that no "]" follows starts no link; as an entity it spares Python-Markdown
            # a scan to the end of the paragraph for each one.
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


# ------------------------------------------------------------------------------------------------
# Code highlighting.

_JP = "var(--jp-mirror-editor-{}-color,{})"
_CODE_PRE_STYLE = (
    "background: var(--jp-cell-editor-background,#7f7f7f14); padding: 0.5em 0.75em; "
    "border-radius: 4px; overflow-x: auto"
)


@lru_cache(maxsize=1)
def _code_formatter() -> Any:
    """A pygments HTML formatter with inline, theme-following colours."""
    from pygments.formatters import HtmlFormatter
    from pygments.style import Style
    from pygments.token import (
        Comment,
        Error,
        Generic,
        Keyword,
        Name,
        Number,
        Operator,
        Punctuation,
        String,
    )

    comment = _JP.format("comment", "#6c7f86")
    keyword = _JP.format("keyword", "#859900")
    styles = {
        Comment: f"italic {comment}",
        Comment.Preproc: f"noitalic {_JP.format('meta', '#cb4b16')}",
        Keyword: f"bold {keyword}",
        Operator: f"bold {_JP.format('operator', '#6c71c4')}",
        Operator.Word: f"bold {keyword}",
        Punctuation: "var(--jp-mirror-editor-punctuation-color)",  # no fallback: inherit
        String: _JP.format("string", "#2aa198"),
        Number: _JP.format("number", "#d33682"),
        Name.Builtin: _JP.format("builtin", "#268bd2"),
        Name.Function: _JP.format("def", "#268bd2"),
        Name.Class: f"bold {_JP.format('def', '#268bd2')}",
        Name.Decorator: _JP.format("meta", "#cb4b16"),
        Name.Tag: f"bold {_JP.format('tag', '#268bd2')}",
        Name.Attribute: _JP.format("attribute", "#b58900"),
        Generic.Heading: f"bold {_JP.format('header', '#cb4b16')}",
        Generic.Subheading: f"bold {_JP.format('header', '#cb4b16')}",
        Generic.Deleted: "#dc322f",
        Generic.Inserted: "#859900",
        Generic.Emph: "italic",
        Generic.Strong: "bold",
        Generic.Prompt: f"bold {comment}",
        Generic.Output: comment,
        Generic.Traceback: _JP.format("error", "#dc322f"),
        Error: _JP.format("error", "#dc322f"),
    }
    style = type("JupyterThemeStyle", (Style,), {"styles": styles, "background_color": ""})
    return HtmlFormatter(nowrap=True, noclasses=True, style=style)


@lru_cache(maxsize=64)
def _lexer(language: str) -> Any:
    """The lexer for a language name, or ``None`` (looked up once: the lookup costs ~1 ms)."""
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    try:
        return get_lexer_by_name(language.lower(), stripnl=False)
    except ClassNotFound:
        return None


def _highlight(code: str, language: str) -> str:
    """Highlight ``code``; an unknown or missing language gives plain, escaped code."""
    from pygments import highlight

    body = escape(code + "\n" if code else "")
    lexer = _lexer(language) if language else None
    if lexer is not None:
        body = highlight(code, lexer, _code_formatter())
    # No <code> inside the <pre>: JupyterLab paints code elements with the page background,
    # which would draw a box behind every line of the block.
    return f'<div class="highlight"><pre style="{_CODE_PRE_STYLE}">{body}</pre></div>'


# ------------------------------------------------------------------------------------------------
# Markdown and sanitizing.

_lock = threading.Lock()  # a Markdown instance holds per-conversion state


@lru_cache(maxsize=1)
def _markdown() -> Any:
    import markdown
    from markdown.inlinepatterns import SimpleTagInlineProcessor

    md = markdown.Markdown(
        extensions=["tables", "sane_lists", "nl2br"],
        extension_configs={"tables": {"use_align_attribute": True}},
        output_format="html",
    )
    # Raw HTML blocks would be stashed whole, across blank lines and unrendered; the rewrite pass
    # has already escaped every tag but a few harmless inline ones.
    md.preprocessors.deregister("html_block")
    md.inlinePatterns.register(SimpleTagInlineProcessor(r"()~~(.+?)~~", "del"), "del", 65)
    return md


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
    stash = _Stash()
    source = _rewrite(text, stash, partial)
    md = _markdown()
    with _lock:
        md.reset()
        try:
            converted: str = md.convert(source)
        except RecursionError:  # Python-Markdown recurses per nesting level; show the text as is
            converted = "<p>" + escape(text).replace("\n", "<br>\n") + "</p>"
    result = stash.restore(converted)
    return _tidy(sanitize_html(result) if sanitize else result)


_EMPTY_PARAGRAPH_RE = re.compile(r"<p>\s*</p>\n?")
_BREAK_AFTER_TAG_RE = re.compile(r'(<details(?: open(?:="[^"]*")?)?>|</summary>)\s*<br ?/?>')


def _tidy(html: str) -> str:
    """Drop the empty paragraphs and line breaks that raw ``<details>`` lines leave behind."""
    return _BREAK_AFTER_TAG_RE.sub(r"\1", _EMPTY_PARAGRAPH_RE.sub("", html))


_TAGS = frozenset(
    {
        "a", "b", "blockquote", "br", "code", "del", "details", "div", "em", "h1", "h2", "h3",
        "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "s",
        "small", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "th",
        "thead", "tr", "u", "ul", "wbr",
    }
)  # fmt: skip
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "ol": {"start"},
    "th": {"align"},
    "td": {"align"},
    "details": {"open"},
    "span": {"style"},
    "pre": {"style"},
}
_STYLE_PROPERTIES = frozenset(
    {"background", "background-color", "border-radius", "color", "font-style", "font-weight",
     "overflow-x", "padding", "text-decoration"}
)  # fmt: skip
_STYLE_BLOCKLIST = ("expression", "url(", "\\", "javascript", "behavior", "binding", "@import")
_C0_AND_SPACE = "".join(map(chr, range(33)))
_TAB_OR_NEWLINE_RE = re.compile(r"[\t\n\r]")
_IMAGE_DATA_RE = re.compile(r"data:image/(?:png|jpeg|gif|webp);", re.IGNORECASE)


def _filter_attribute(element: str, attribute: str, value: str) -> str | None:
    """Allow-list attribute values nh3 cannot express on its own (values arrive decoded)."""
    if attribute in ("href", "src"):
        # What a browser's URL parser does before it reads the scheme.
        lowered = _TAB_OR_NEWLINE_RE.sub("", value.strip(_C0_AND_SPACE)).lower()
        if lowered.startswith("data:"):
            ok = element == "img" and attribute == "src" and _IMAGE_DATA_RE.match(lowered)
            return value if ok else None
        return value
    if attribute == "style":
        lowered = value.lower()
        return None if any(word in lowered for word in _STYLE_BLOCKLIST) else value
    if attribute == "align":
        return value if value in ("left", "center", "right") else None
    if attribute == "start":
        return value if value.isdigit() else None
    return value


@lru_cache(maxsize=1)
def _clean() -> Callable[[str], str]:
    import nh3

    options: dict[str, Any] = {
        "tags": set(_TAGS),
        "clean_content_tags": {"script", "style"},
        "attributes": _ATTRIBUTES,
        "allowed_classes": {"div": {"highlight"}},
        "attribute_filter": _filter_attribute,
        "link_rel": "noopener noreferrer nofollow",
        "set_tag_attribute_values": {"a": {"target": "_blank"}},
        "url_schemes": {"http", "https", "mailto", "data"},
        "filter_style_properties": set(_STYLE_PROPERTIES),
    }
    cleaner_type = getattr(nh3, "Cleaner", None)  # nh3 >= 0.3: build the allow-list once
    if cleaner_type is not None:
        clean: Callable[[str], str] = cleaner_type(**options).clean
        return clean
    return lambda html: nh3.clean(html, **options)


def sanitize_html(html: str) -> str:
    """Sanitize an HTML fragment with an allow-list (nh3).

    Kept: paragraphs, headings, lists, tables (``align``), block quotes, rules, code (``<pre>`` and
    ``<span>`` with colour styles), emphasis, ``del``/``ins``/``mark``/``sub``/``sup``/``kbd``,
    ``details``/``summary``, links (``http``, ``https``, ``mailto``, relative; opened in a new tab
    with ``rel="noopener noreferrer nofollow"``) and images (``http``, ``https``, relative, or a
    ``data:image/png|jpeg|gif|webp`` URL). Removed: every other element (``script`` and ``style``
    with their content), event-handler and other attributes, ``javascript:``/``vbscript:``/
    ``data:text/html`` URLs, comments.

    Parameters
    ----------
    html
        Untrusted HTML.

    Returns
    -------
    str
        HTML that runs no script.
    """
    return _clean()(html)


def escape(text: str) -> str:
    """Escape ``text`` for HTML text or a double- or single-quoted attribute value.

    Parameters
    ----------
    text
        Plain text.

    Returns
    -------
    str
        ``text`` with ``&``, ``<``, ``>``, ``"`` and ``'`` escaped.
    """
    return _html.escape(text, quote=True)


# ------------------------------------------------------------------------------------------------
# Streaming.


class StreamingMarkdown:
    """Split a streaming markdown reply into completed blocks and a growing tail.

    A block is complete when the next top-level block begins: after blank lines, the first line
    that does not continue it. Blank lines do not end a block inside a fenced code block (until its
    closing fence), in a list when the next line is an item or is indented into an open item (loose
    lists, continued numbering), after a block quote when the next line is a quote line, or after
    indented code when the next line is indented code. Decisions are made on complete lines only, so
    the blocks do not depend on how the text was cut into pieces. Each block carries the blank lines
    that follow it; the completed blocks plus :attr:`tail` are always exactly :attr:`text`.

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
        self._machine = _LineMachine()
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
