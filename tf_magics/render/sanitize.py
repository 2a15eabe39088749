"""HTML made safe: the nh3 allow-list sanitizer for untrusted HTML, and escaping for text.

Model replies are **untrusted**: JupyterLab runs script found in a live ``text/html`` output, so
every rendered reply ends in :func:`sanitize_html`, an allow-list of elements, attributes, URL
schemes and style properties. :func:`escape` turns plain text into HTML text for trusted wrapper
markup.

``nh3`` is imported on the first sanitize, not with this module.
"""

from __future__ import annotations

import html as _html
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

__all__ = ["NO_MATH", "escape", "sanitize_html"]

#: Classes that keep MathJax out of an element: JupyterLab and Notebook typeset ``$…$`` in HTML
#: outputs, so a footer that reads "$0.02 · … $0.05" became a formula. Our own text (costs,
#: values, summaries) carries them; a reply's Markdown does not, so its math still renders.
#: ``tex2jax_ignore`` is MathJax 2's name, ``mathjax_ignore`` MathJax 3's.
NO_MATH = "tex2jax_ignore mathjax_ignore"

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
    return _filter(element, attribute, value, remote_images=True)


def _filter_local_images(element: str, attribute: str, value: str) -> str | None:
    """The same, but an image may only come from a ``data:`` URL (nothing is fetched)."""
    return _filter(element, attribute, value, remote_images=False)


def _filter(element: str, attribute: str, value: str, *, remote_images: bool) -> str | None:
    if attribute in ("href", "src"):
        # What a browser's URL parser does before it reads the scheme.
        lowered = _TAB_OR_NEWLINE_RE.sub("", value.strip(_C0_AND_SPACE)).lower()
        if lowered.startswith("data:"):
            ok = element == "img" and attribute == "src" and _IMAGE_DATA_RE.match(lowered)
            return value if ok else None
        if element == "img" and not remote_images:
            return None
        return value
    if attribute == "style":
        lowered = value.lower()
        return None if any(word in lowered for word in _STYLE_BLOCKLIST) else value
    if attribute == "align":
        return value if value in ("left", "center", "right") else None
    if attribute == "start":
        return value if value.isdigit() else None
    return value


@lru_cache(maxsize=2)
def _clean(remote_images: bool) -> Callable[[str], str]:
    import nh3

    options: dict[str, Any] = {
        "tags": set(_TAGS),
        "clean_content_tags": {"script", "style"},
        "attributes": _ATTRIBUTES,
        "allowed_classes": {"div": {"highlight"}},
        "attribute_filter": _filter_attribute if remote_images else _filter_local_images,
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


def sanitize_html(html: str, *, remote_images: bool = False) -> str:
    """Sanitize an HTML fragment with an allow-list (nh3).

    Kept: paragraphs, headings, lists, tables (``align``), block quotes, rules, code (``<pre>`` and
    ``<span>`` with colour styles), emphasis, ``del``/``ins``/``mark``/``sub``/``sup``/``kbd``,
    ``details``/``summary``, links (``http``, ``https``, ``mailto``, relative; opened in a new tab
    with ``rel="noopener noreferrer nofollow"``) and images from a ``data:image/png|jpeg|gif|webp``
    URL (and, with ``remote_images``, from ``http``, ``https`` or relative URLs). Removed: every
    other element (``script`` and ``style`` with their content), event-handler and other
    attributes, ``javascript:``/``vbscript:``/``data:text/html`` URLs, comments.

    Parameters
    ----------
    html
        Untrusted HTML.
    remote_images
        Keep images that would be fetched from an address (off: their source is dropped).

    Returns
    -------
    str
        HTML that runs no script.
    """
    return _clean(remote_images)(html)


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
