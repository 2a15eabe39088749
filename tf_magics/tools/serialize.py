"""The text the model receives for a tool's return value (:func:`serialize_result`).

A tool may return anything: a string, ``None``, numbers and containers, dataclasses, pydantic
models, pandas and numpy objects, or an object with an IPython-style ``_repr_*_`` method. Each
becomes text that fits in a request: long texts are cut to a maximum and a note says what was
left out. The helpers that word exceptions and notes for the model live here too, so the runner
and argument validation say things the same way.

pandas, numpy and pydantic are never imported here: values are recognised by their module name.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
from collections.abc import Iterable
from typing import Any

from tf_magics._text import clean_text, repr_text
from tf_magics.schema.annotations import is_pydantic_model

__all__ = [
    "DEFAULT_MAX_RESULT_CHARS",
    "NO_RESULT_TEXT",
    "cap_text",
    "join_notes",
    "serialize_result",
]

DEFAULT_MAX_RESULT_CHARS = 20_000
#: What the model is told when a tool returns ``None``.
NO_RESULT_TEXT = "(no return value)"
_DEFAULT_MAX_ROWS = 50


def serialize_result(
    value: Any, max_chars: int = DEFAULT_MAX_RESULT_CHARS, *, max_rows: int = _DEFAULT_MAX_ROWS
) -> tuple[str, str | None]:
    """The text the model receives for a tool's return value.

    Parameters
    ----------
    value
        What the tool returned.
    max_chars
        Longer texts are cut to this many characters and a note is appended.
    max_rows
        pandas objects longer than this show their first rows only.

    Returns
    -------
    text, note
        ``note`` says what was left out (``None`` when nothing was).

    Notes
    -----
    In order: a ``str`` as is; ``None`` as :data:`NO_RESULT_TEXT`; an object's ``_repr_llm_()``;
    a pandas DataFrame / Series as a markdown table (CSV without ``tabulate``) of its first
    ``max_rows`` rows; a numpy array as its ``repr`` (numpy elides long arrays); numbers, bools,
    dicts, lists, tuples, sets, dataclasses, pydantic models and numpy scalars as JSON (``str()``
    for leaves JSON cannot hold); dates as ISO 8601; else ``_repr_markdown_()``, then ``repr()``.
    """
    text, note = _to_text(value, max_rows)
    # Text that cannot be encoded (half a surrogate pair) would break every later request.
    capped, cap_note = cap_text(clean_text(text), max_chars)
    return capped, join_notes([note, cap_note])


def _to_text(value: Any, max_rows: int) -> tuple[str, str | None]:
    if isinstance(value, str):
        return value, None
    if value is None:
        return NO_RESULT_TEXT, None
    special = repr_text(value, "_repr_llm_")
    if special is not None:
        return special, None
    if _is_pandas(value):
        return _pandas_text(value, max_rows)
    if _module_root(value) == "numpy" and getattr(value, "ndim", 0) > 0:
        return _safe_repr(value), None
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat(), None
    if _is_jsonable(value):
        try:
            return json.dumps(value, ensure_ascii=False, default=_json_default), None
        except (TypeError, ValueError):
            pass
    markdown = repr_text(value, "_repr_markdown_")
    if markdown is not None:
        return markdown, None
    return _safe_repr(value), None


def _is_jsonable(value: Any) -> bool:
    return (
        isinstance(value, (bool, int, float, dict, list, tuple, set, frozenset))
        or (dataclasses.is_dataclass(value) and not isinstance(value, type))
        or _is_pydantic_instance(value)
        or (_module_root(value) == "numpy" and hasattr(value, "item"))
    )


def _module_root(value: Any) -> str:
    return (type(value).__module__ or "").split(".")[0]


def _is_pandas(value: Any) -> bool:
    return _module_root(value) == "pandas" and type(value).__name__ in ("DataFrame", "Series")


def _is_pydantic_instance(value: Any) -> bool:
    return is_pydantic_model(type(value))


def _pandas_text(value: Any, max_rows: int) -> tuple[str, str | None]:
    total = len(value)
    shown = value.head(max_rows) if total > max_rows else value
    try:
        text = shown.to_markdown()
    except ImportError:  # to_markdown needs the optional tabulate package
        text = shown.to_csv()
    if total <= max_rows:
        return text, None
    note = f"showing {len(shown):,} of {total:,} rows"
    return f"{text.rstrip()}\n({note})", note


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:
        return object.__repr__(value)


def _json_default(value: Any) -> Any:
    """JSON for leaves ``json`` cannot write itself."""
    if isinstance(value, (set, frozenset)):
        try:
            return sorted(value)
        except TypeError:
            return list(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {item.name: getattr(value, item.name) for item in dataclasses.fields(value)}
    if _is_pydantic_instance(value):
        return value.model_dump(mode="json")
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if _module_root(value) == "numpy" and hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def cap_text(text: str, max_chars: int) -> tuple[str, str | None]:
    """``text`` cut to ``max_chars`` characters, and a note when it was cut."""
    if len(text) <= max_chars:
        return text, None
    note = f"truncated: {len(text):,} characters, showing the first {max_chars:,}"
    return f"{text[:max_chars]}\n… [{note}]", note


def join_notes(notes: Iterable[str | None]) -> str | None:
    """The given notes joined with ``"; "``, or ``None`` when there are none."""
    kept = [note for note in notes if note]
    return "; ".join(kept) if kept else None
