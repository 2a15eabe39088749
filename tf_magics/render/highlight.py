"""Fenced code highlighted by pygments into self-contained, theme-following HTML.

Code is coloured with inline ``style`` attributes whose colours are JupyterLab's own editor theme
variables (``var(--jp-mirror-editor-keyword-color, #859900)``): they follow the light and the dark
theme, and fall back to Solarized accents, which read on white and on black, where the variables are
missing (nbviewer, VS Code). GitHub strips styles and shows plain code. No stylesheet is needed, so
every block renders on its own.

``pygments`` is imported on the first highlight, not with this module.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any

from .sanitize import escape

__all__ = ["highlight_code"]

_JP = "var(--jp-mirror-editor-{}-color,{})"
_CODE_PRE_STYLE = (
    "background: var(--jp-cell-editor-background,#7f7f7f14); padding: 0.5em 0.75em; "
    "border-radius: 4px; overflow-x: auto"
)


# pygments replaces its ``formatters`` and ``lexers`` packages in ``sys.modules`` while importing
# them: a second thread importing at the same moment can get the half-made module and fail with
# an ImportError (the warm-up thread and the first %%chat do exactly this).
_import_lock = threading.Lock()


@lru_cache(maxsize=1)
def _code_formatter() -> Any:
    with _import_lock:
        return _make_code_formatter()


def _make_code_formatter() -> Any:
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
    with _import_lock:
        from pygments.lexers import get_lexer_by_name
        from pygments.util import ClassNotFound

        try:
            return get_lexer_by_name(language.lower(), stripnl=False)
        except ClassNotFound:
            return None


def highlight_code(code: str, language: str) -> str:
    """Highlight ``code``; an unknown or missing language gives plain, escaped code."""
    import pygments

    body = escape(code + "\n" if code else "")
    lexer = _lexer(language) if language else None
    if lexer is not None:
        body = pygments.highlight(code, lexer, _code_formatter())
    # No <code> inside the <pre>: JupyterLab paints code elements with the page background,
    # which would draw a box behind every line of the block.
    return f'<div class="highlight"><pre style="{_CODE_PRE_STYLE}">{body}</pre></div>'
