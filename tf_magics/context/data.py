"""Plain data: text, bytes, dicts, lists, tuples, sets and scalars.

Containers become JSON after being cut down to what the budget can show (the first items of long
lists, the first keys of big dicts, deep nesting elided), so a ten-million-item list costs the
same as a short one; what was left out is said in place (``"… 9,999,950 more items"``) and in a
note.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import fractions
import json
import uuid
from typing import Any

from tf_magics.errors import AttachmentError

from .budget import Budget, Summary, module_root

__all__ = [
    "is_container",
    "is_scalar",
    "summarise_bytes",
    "summarise_container",
    "summarise_scalar",
    "summarise_text",
]

_MAX_DEPTH = 6
_STRING_CHARS = 500
_LINE_CHARS = 100


def is_container(value: Any) -> bool:
    """A dict, list, tuple, set or frozenset (not a string)."""
    return isinstance(value, (dict, list, tuple, set, frozenset))


def is_scalar(value: Any) -> bool:
    """A number, bool, None, date or time, UUID, enum member, or a numpy scalar."""
    scalar_types = (
        int,
        float,
        complex,
        bool,
        type(None),
        decimal.Decimal,
        fractions.Fraction,
        datetime.date,
        datetime.time,
        datetime.timedelta,
        uuid.UUID,
        enum.Enum,
    )
    return isinstance(value, scalar_types) or (
        module_root(value) == "numpy" and getattr(value, "ndim", None) == 0
    )


def summarise_text(text: str, budget: Budget) -> Summary:
    """A string, as it is (masked, and cut to the budget)."""
    lines = text.count("\n") + 1
    description = f"str, {len(text):,} characters" + (f", {lines:,} lines" if lines > 1 else "")
    body, note = budget.fit(text)
    return Summary(description, body, [note] if note else [])


def summarise_bytes(value: Any, budget: Budget) -> Summary:
    """Bytes that hold text are shown as text; other bytes are refused.

    Raises
    ------
    AttachmentError
        For binary data that is not an image.
    """
    data = bytes(value[: budget.max_chars * 4 + 4])
    text = data.decode("utf-8", errors="replace")
    if b"\x00" in data or text.count("\ufffd", 0, max(0, len(text) - 2)) > len(text) // 100:
        # Text in another encoding is rare in bytes; binary data is not.
        raise AttachmentError(
            f"Cannot attach binary data ({len(value):,} bytes): it is not text and not a PNG, "
            "JPEG, GIF or WebP image.",
            hint="Decode it first, or attach what it means (a DataFrame, a string).",
        )
    body, note = budget.fit(text)
    return Summary(
        f"{type(value).__name__}, {len(value):,} bytes of text", body, [note] if note else []
    )


def summarise_scalar(value: Any, budget: Budget) -> Summary:
    """A number, date, enum member…: its repr."""
    return Summary(type(value).__name__, budget.clip(repr(value), budget.max_chars))


class _Shrinker:
    """Cuts a container down to about as many leaves as the budget can show.

    Each child gets a fair share of what is left, so a dict whose first key holds a long list still
    shows its other keys; what was left out is said in place.
    """

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.leaves = max(20, budget.max_chars // 12)
        self.cut = False

    def shrink(self, value: Any, allowance: int, depth: int = 0) -> tuple[Any, int]:
        """The value cut down to ``allowance`` leaves, and how many it used."""
        if isinstance(value, str):
            return self.budget.clip(value, _STRING_CHARS), 1
        if isinstance(value, (set, frozenset, tuple)):
            value = list(value)  # a set is not sorted: a huge one would cost a sort
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        if isinstance(value, list):
            return self._sequence(value, allowance, depth)
        if isinstance(value, dict):
            return self._mapping(value, allowance, depth)
        return value, 1

    def _sequence(self, items: list[Any], allowance: int, depth: int) -> tuple[Any, int]:
        if depth >= _MAX_DEPTH and items:
            self.cut = True
            return f"… a list of {len(items):,} items", 1
        shown: list[Any] = []
        used = 0
        for position, item in enumerate(items):
            left = allowance - used
            if left <= 0:
                shown.append(f"… {len(items) - position:,} more items")
                self.cut = True
                break
            child, cost = self.shrink(item, max(1, left // (len(items) - position)), depth + 1)
            shown.append(child)
            used += cost
        return shown, max(1, used)

    def _mapping(self, mapping: dict[Any, Any], allowance: int, depth: int) -> tuple[Any, int]:
        if depth >= _MAX_DEPTH and mapping:
            self.cut = True
            return f"… an object of {len(mapping):,} keys", 1
        shown: dict[str, Any] = {}
        used = 0
        for position, (key, item) in enumerate(mapping.items()):
            left = allowance - used
            if left <= 0:
                shown["…"] = f"{len(mapping) - position:,} more keys"
                self.cut = True
                break
            share = max(1, left // (len(mapping) - position))
            shown[self.budget.clip(str(key), 100)], cost = self.shrink(item, share, depth + 1)
            used += cost
        return shown, max(1, used)


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if module_root(value) == "numpy" and hasattr(value, "tolist"):
        return value.tolist()
    return repr(value)


def _dumps(value: Any, indent: str = "") -> str:
    """JSON that reads well and stays short.

    A value that fits on a line stays on one line, and a list of plain values fills its lines.
    """
    flat = json.dumps(value, ensure_ascii=False, default=_json_default)
    if len(flat) <= _LINE_CHARS - len(indent) or not isinstance(value, (dict, list)) or not value:
        return flat
    inner = indent + "  "
    if isinstance(value, list):
        if not any(isinstance(item, (dict, list)) for item in value):
            items = [json.dumps(item, ensure_ascii=False, default=_json_default) for item in value]
            return "[\n" + _fill(items, inner) + f"\n{indent}]"
        return "[\n" + ",\n".join(inner + _dumps(item, inner) for item in value) + f"\n{indent}]"
    entries = [
        f"{inner}{json.dumps(str(key), ensure_ascii=False)}: {_dumps(item, inner)}"
        for key, item in value.items()
    ]
    return "{\n" + ",\n".join(entries) + f"\n{indent}}}"


def _fill(items: list[str], indent: str) -> str:
    """Comma-separated items in lines of at most :data:`_LINE_CHARS` characters."""
    lines: list[str] = []
    line = ""
    for item in items:
        if line and len(indent) + len(line) + len(item) + 2 > _LINE_CHARS:
            lines.append(indent + line + ",")
            line = ""
        line = f"{line}, {item}" if line else item
    lines.append(indent + line)
    return "\n".join(lines)


def summarise_container(value: Any, budget: Budget) -> Summary:
    """A container as JSON, cut down to the budget first."""
    kind = type(value).__name__
    count = f"{len(value):,} {'keys' if isinstance(value, dict) else 'items'}"
    shrinker = _Shrinker(budget)
    shrunk, _ = shrinker.shrink(value, shrinker.leaves)
    text = _dumps(shrunk)
    body, note = budget.fit(text)
    notes = [note] if note else []
    if shrinker.cut and note is None:
        notes.append("long or deep parts are elided (marked … in place)")
    return Summary(f"{kind}, {count}", body, notes)
