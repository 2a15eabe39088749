r"""Markdown replies to safe HTML, whole or while they stream.

Model replies are Markdown and **untrusted**: JupyterLab runs script found in a live
``text/html`` output, so everything rendered here ends in :func:`sanitize_html` (nh3, an
allow-list).

========================  ================================================================
module                    job
========================  ================================================================
``markdown``              :func:`render_markdown`: Markdown → sanitized HTML
``streaming``             :class:`StreamingMarkdown`: completed blocks and a growing tail
``source``                the source rewrite before conversion (code, math, raw HTML)
``lines``                 the line classifier that the rewrite and the splitter share
``highlight``             fenced code highlighted by pygments, with theme-aware colours
``sanitize``              the allow-list sanitizer, and :func:`escape` for plain text
========================  ================================================================

Nothing heavy is imported until the first render: ``pyromark``, ``pygments`` and ``nh3`` load
lazily.
"""

from __future__ import annotations

from .markdown import markdown_images_as_links, render_markdown
from .sanitize import NO_MATH, escape, sanitize_html
from .streaming import StreamingMarkdown

__all__ = [
    "NO_MATH",
    "StreamingMarkdown",
    "escape",
    "markdown_images_as_links",
    "render_markdown",
    "sanitize_html",
]
