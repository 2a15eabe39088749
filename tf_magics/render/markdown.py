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

__all__ = ["images_as_links", "markdown_images_as_links", "render_markdown"]

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


def render_markdown(
    text: str, *, sanitize: bool = True, partial: bool = False, remote_images: bool = False
) -> str:
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
    remote_images
        Show images from other addresses. Off (the default), an image that is not a ``data:``
        URL becomes a link: a reply can then not make the notebook fetch an address of its
        choosing (with data in its query) the moment it renders.

    Returns
    -------
    str
        An HTML fragment; math is left verbatim (HTML-escaped) for the frontend's MathJax.
    """
    if not text.strip():
        return ""
    stash = Stash()
    converted = _convert(rewrite(text, stash, partial))
    if not remote_images:
        converted = images_as_links(converted)
    result = stash.restore(converted)
    if sanitize:
        result = sanitize_html(result, remote_images=remote_images)
    return stash.restore_blocks(_tidy(result))


# What pulldown-cmark writes for ``![alt](src "title")`` (attributes escaped, in this order).
_IMAGE_RE = re.compile(r'<img src="([^"]*)" alt="([^"]*)"(?: title="([^"]*)")? />')


def images_as_links(html: str) -> str:
    """Every ``<img>`` whose source is not a ``data:`` image, as a link to that source."""

    def link(match: re.Match[str]) -> str:
        src, alt = match.group(1), match.group(2)
        if src.lower().startswith("data:image/"):
            return match.group(0)
        label = f"image: {alt}" if alt else "image"
        return f'<a href="{src}">[{label}]</a>'

    return _IMAGE_RE.sub(link, html)


# ``![alt](`` not followed by a data: image (the link form keeps its text and address).
_MARKDOWN_IMAGE_RE = re.compile(r"!\[([^\]\n]*)\]\((?!\s*<?data:image/)")


def markdown_images_as_links(text: str) -> str:
    """The Markdown source with remote images written as links (for a saved ``text/markdown``).

    A frontend that renders a notebook's Markdown output would fetch an image's address; as a
    link it is fetched only when clicked. (An image inside a code block is rewritten too.)
    """
    return _MARKDOWN_IMAGE_RE.sub(
        lambda m: f"[image: {m.group(1)}](" if m.group(1) else "[image](", text
    )


_EMPTY_PARAGRAPH_RE = re.compile(r"<p>\s*</p>\n?")
_BREAK_AFTER_TAG_RE = re.compile(r'(<details(?: open(?:="[^"]*")?)?>|</summary>)\s*<br ?/?>')


def _tidy(html: str) -> str:
    """Drop the empty paragraphs and line breaks that raw ``<details>`` lines leave behind."""
    return _BREAK_AFTER_TAG_RE.sub(r"\1", _EMPTY_PARAGRAPH_RE.sub("", html))
