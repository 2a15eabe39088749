r"""A Markdown reply to safe HTML (:func:`render_markdown`).

Headings, lists, tables, fenced code highlighted by pygments, ``~~strikethrough~~``; math
(``$...$``, ``$$...$$``, ``\(...\)``, ``\[...\]``, ``\begin{env}...\end{env}``) passed through
verbatim for the frontend's MathJax.

How a reply is rendered:

1. :func:`~tf_magics.render.source.rewrite` prepares the source (lines classified by
   :mod:`~tf_magics.render.lines`), cutting out fenced code, highlighted by
   :mod:`~tf_magics.render.highlight`, and math, kept verbatim, into a stash, and escaping every
   raw HTML tag but a few harmless inline ones;
2. pulldown-cmark (through ``pyromark``) converts it: CommonMark with tables and
   ``~~strikethrough~~``;
3. math goes back, the result is sanitized (:mod:`~tf_magics.render.sanitize`), and the
   highlighted code goes back (built here from escaped text, it needs no sanitizing).

Single newlines are line breaks: chat models write line-oriented text (addresses, verse,
``Key: value`` lines) and never hard-wrap prose, and chat interfaces show it that way.

Nothing heavy is imported until the first render: ``pyromark``, ``pygments`` and ``nh3`` load
lazily.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from .sanitize import sanitize_html
from .source import Stash, rewrite

__all__ = ["render_markdown"]

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
