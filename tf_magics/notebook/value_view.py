"""A structured reply's value, shown readably: a small table, or pretty JSON (pure HTML/text).

A flat object (every field a scalar) is a two-column table, field and value; a list of flat
objects is a table with one row each; anything else is indented JSON in a code block. The plain
text is the value's own ``repr`` (a dataclass or a model prints itself), pretty-printed.
Everything a value holds is model output: it is escaped, never rendered as markup.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import pathlib
import pprint
import re
import uuid
from collections.abc import Mapping
from typing import Any

from tf_magics._text import truncate
from tf_magics.render import NO_MATH, escape

__all__ = ["plain_data", "value_html", "value_markdown", "value_text"]

_MAX_ROWS = 50
_MAX_CELL = 500
_MAX_JSON = 20_000
_SCALARS = (str, int, float, bool, type(None))
_TABLE = "border-collapse:collapse;margin:4px 0;font-size:0.95em"
_CELL = "border:1px solid var(--jp-border-color2,#ddd);padding:2px 8px;text-align:left"
_HEAD = f"{_CELL};background:var(--jp-layout-color2,#f5f5f5)"
_MARKDOWN_PUNCTUATION = re.compile(r"[\\`*_\[\]()!|~#]")
_NOTE = "color:var(--jp-ui-font-color2,#666);font-size:0.85em"


def plain_data(value: Any) -> Any:
    """``value`` as JSON-like data: dataclasses, models and TypedDicts as dicts, enums as values."""
    if isinstance(value, enum.Enum):
        return plain_data(value.value)
    if isinstance(value, _SCALARS):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return plain_data(dump(mode="json"))
        except Exception:  # not a pydantic model after all: shown by its repr
            return repr(value)
    if isinstance(value, Mapping):
        return {str(key): plain_data(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain_data(item) for item in value]
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (pathlib.PurePath, uuid.UUID)):
        return str(value)
    return repr(value)


def _flat(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and bool(data)
        and all(isinstance(v, _SCALARS) for v in data.values())
    )


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return truncate(text, _MAX_CELL)


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    return list(names)


def _shape(data: Any) -> str:
    """``"object"`` (a flat object), ``"rows"`` (a list of flat objects) or ``"json"``."""
    if _flat(data):
        return "object"
    if isinstance(data, list) and data and all(_flat(item) for item in data):
        return "rows"
    return "json"


def value_html(value: Any) -> str:
    """The value as an HTML table (flat object, list of flat objects) or a JSON code block."""
    data = plain_data(value)
    shape = _shape(data)
    if shape == "object":
        body = "".join(
            f'<tr><th style="{_HEAD}">{escape(key)}</th><td style="{_CELL}">'
            f"{escape(_cell(item))}</td></tr>"
            for key, item in data.items()
        )
        return f'<table class="tf-magics-value {NO_MATH}" style="{_TABLE}">{body}</table>'
    if shape == "rows":
        names = _columns(data)
        head = "".join(f'<th style="{_HEAD}">{escape(name)}</th>' for name in names)
        rows = "".join(
            "<tr>"
            + "".join(f'<td style="{_CELL}">{escape(_cell(row.get(name)))}</td>' for name in names)
            + "</tr>"
            for row in data[:_MAX_ROWS]
        )
        more = _more_html(len(data))
        return (
            f'<table class="tf-magics-value {NO_MATH}" style="{_TABLE}">'
            f"<tr>{head}</tr>{rows}</table>{more}"
        )
    shown = truncate(json.dumps(data, indent=2, ensure_ascii=False), _MAX_JSON, count=True)
    return f'<pre class="tf-magics-value {NO_MATH}"><code>{escape(shown)}</code></pre>'


def _more_html(count: int) -> str:
    if count <= _MAX_ROWS:
        return ""
    return (
        f'<div style="{_NOTE}">… and {count - _MAX_ROWS:,} more (the whole list is the value)</div>'
    )


def value_markdown(value: Any) -> str:
    """The value as a Markdown table or a JSON code block (for a saved notebook)."""
    data = plain_data(value)
    shape = _shape(data)
    if shape == "object":
        lines = ["| field | value |", "|---|---|"]
        lines += [f"| {_md(key)} | {_md(_cell(item))} |" for key, item in data.items()]
        return "\n".join(lines)
    if shape == "rows":
        names = _columns(data)
        lines = ["| " + " | ".join(map(_md, names)) + " |", "|" + "---|" * len(names)]
        lines += [
            "| " + " | ".join(_md(_cell(row.get(name))) for name in names) + " |"
            for row in data[:_MAX_ROWS]
        ]
        return "\n".join(lines)
    shown = truncate(json.dumps(data, indent=2, ensure_ascii=False), _MAX_JSON, count=True)
    return f"```json\n{shown.replace('```', '` ` `')}\n```"


def _md(text: str) -> str:
    """A table cell's text, inert: HTML and Markdown markup escaped (no link, no image)."""
    escaped = escape(text.replace("\n", " "))
    return _MARKDOWN_PUNCTUATION.sub(r"\\\g<0>", escaped)


def value_text(value: Any) -> str:
    """The value's own ``repr``, pretty-printed (what ``print(reply.value)`` would show)."""
    return truncate(pprint.pformat(value, width=100, sort_dicts=False), _MAX_JSON, count=True)


def raw_answer_html(text: str) -> str:
    """An answer that did not fit its schema, as it came (escaped, in a code block)."""
    return f"<pre><code>{escape(truncate(text, _MAX_JSON, count=True))}</code></pre>"
