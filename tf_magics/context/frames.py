"""pandas DataFrames and Series, summarised: shape, columns, nulls, statistics, a few rows.

The work is bounded whatever the size of the frame: only the columns that fit the budget are
looked at, null counts are exact (one pass per listed column), and above
:data:`EXACT_ROWS` rows the statistics (``describe()``, distinct values) come from a seeded
uniform sample of :data:`SAMPLE_ROWS` rows, and say so. A short frame (a groupby result) is shown
whole when it fits (without statistics of ten rows or fewer); otherwise a few first rows and a few
at random. Cell values are masked for secrets before they are cut short, and the values of columns
whose names look secret (``password``, ``credentials``, ``api_key``…) are not shown.

pandas and numpy are never imported here: the values come with their own modules.
"""

from __future__ import annotations

import re
from typing import Any

from .budget import Budget, Summary

__all__ = [
    "EXACT_ROWS",
    "SAMPLE_ROWS",
    "is_dataframe",
    "is_series",
    "secret_column",
    "summarise_frame",
    "summarise_series",
]

#: Up to this many rows, statistics are computed on every row.
EXACT_ROWS = 1_000_000
#: Above it, on a uniform random sample of this many rows (seeded: the same frame, the same text).
SAMPLE_ROWS = 200_000
_HEAD_ROWS = 3
_ALL_ROWS = 30  # a frame this short is shown whole when it fits (a groupby result, say)
_NO_STATISTICS_ROWS = 10  # all its rows are shown: statistics of them would only add noise
_RANDOM_ROWS = 2
_CELL_CHARS = 40
_VALUE_CHARS = 30
_TOP_VALUES = 3
_SECRET_COLUMN = re.compile(
    r"passw(or)?d|passwd|\bpwd\b|secret|credential|api[_ -]?key|private[_ -]?key|"
    r"access[_ -]?key|(auth|access|refresh|session|bearer|api)[_ -]?token",
    re.IGNORECASE,
)
_WITHHELD = "[withheld]"


def _count(number: int, word: str) -> str:
    return f"{number:,} {word}{'' if number == 1 else 's'}"


def _is_pandas(value: Any, name: str) -> bool:
    return any(
        cls.__name__ == name and (cls.__module__ or "").startswith("pandas")
        for cls in type(value).__mro__
    )


def is_dataframe(value: Any) -> bool:
    """A pandas DataFrame (or a subclass), recognised without importing pandas."""
    return _is_pandas(value, "DataFrame")


def is_series(value: Any) -> bool:
    """A pandas Series (or a subclass)."""
    return _is_pandas(value, "Series")


def secret_column(name: Any) -> bool:
    """Whether a column's name says its values are secrets."""
    return bool(_SECRET_COLUMN.search(str(name)))


# -- shared pieces ---------------------------------------------------------------------------------


def _sample_positions(rows: int, size: int) -> Any:
    """Sorted positions of a seeded uniform sample of ``size`` rows (without replacement)."""
    import numpy as np

    rng = np.random.default_rng(0)
    return np.sort(rng.choice(rows, size=size, replace=False))


class _Sampling:
    """Which rows the statistics and the frequent values come from, and how to say it."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.positions = _sample_positions(rows, SAMPLE_ROWS) if rows > SAMPLE_ROWS else None
        self.exact_statistics = rows <= EXACT_ROWS
        sample = f"a random sample of {SAMPLE_ROWS:,} of the {rows:,} rows"
        self.sample_words = sample
        self.statistics_note = "" if self.exact_statistics else f"from {sample}"
        self.note = ""
        if self.positions is not None:
            what = "frequent values" if self.exact_statistics else "statistics and frequent values"
            self.note = f"{what} from {sample}"

    def values(self, column: Any) -> Any:
        """The column's values to count (all of them, or the sample's)."""
        return column if self.positions is None else column.iloc[self.positions]

    def statistics(self, frame: Any, columns: list[int]) -> Any:
        """The columns' values to describe (all of them, or the sample's)."""
        if self.exact_statistics:
            return frame.iloc[:, columns]
        return frame.iloc[self.positions, columns]


def _nulls(column: Any, rows: int) -> str:
    missing = int(column.isna().sum())
    if missing == 0:
        return "no nulls"
    if missing == rows:
        return "all null"
    return f"{_count(missing, 'null')} ({missing / rows:.1%})"


def _kind(column: Any) -> str:
    """``numeric``, ``time`` (datetimes and durations) or ``other``."""
    from pandas.api import types

    dtype = column.dtype
    if types.is_bool_dtype(dtype):
        return "other"
    if types.is_numeric_dtype(dtype) and not types.is_complex_dtype(dtype):
        return "numeric"
    if types.is_datetime64_any_dtype(dtype) or types.is_timedelta64_dtype(dtype):
        return "time"
    return "other"


def _value_text(value: Any, budget: Budget) -> str:
    """A frequent value: as it is, or quoted when spaces would hide it (``''``, ``' x'``)."""
    text = budget.clip(str(value), _VALUE_CHARS)
    hidden = not text or (isinstance(value, str) and text.strip() != text)
    return repr(text) if hidden else text


def _column_facts(name: Any, column: Any, sampling: _Sampling, budget: Budget) -> str:
    """What is worth knowing about one column beyond its dtype and nulls."""
    kind = _kind(column)
    if kind == "time":
        low, high = column.min(), column.max()
        return "" if low != low else f"{budget.clip(str(low), 40)} → {budget.clip(str(high), 40)}"
    if kind == "numeric":
        return ""
    if secret_column(name):
        return "values withheld (the name looks secret)"
    try:
        counts = sampling.values(column).value_counts(dropna=True)
    except TypeError:  # unhashable cells (lists, dicts)
        return "values not hashable"
    top = ", ".join(
        f"{_value_text(value, budget)} ({count:,})"
        for value, count in counts.head(_TOP_VALUES).items()
    )
    return f"{len(counts):,} distinct: {top}" if top else ""


def _number(value: float) -> str:
    """A statistic as people read it: whole numbers whole, others to 4 significant digits."""
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    size = abs(value)
    if value == int(value) and size < 1e15:
        return str(int(value))
    if size >= 1e3:
        return f"{value:.0f}"
    return f"{value:.4g}" if size >= 1e-3 else f"{value:.3e}"


def _describe(frame: Any) -> str:
    """``describe()`` of numeric columns, one row per column."""
    table = frame.describe().T
    return str(table.to_string(float_format=_number))


def _shown_cell(value: Any, budget: Budget) -> Any:
    """A cell as the sample shows it: text masked, then cut (never cut first)."""
    if value is None or (isinstance(value, float) and value != value):
        return value
    return budget.clip(str(value), _CELL_CHARS)


def _table(frame: Any, positions: list[int], budget: Budget, allowance: int) -> tuple[str, int]:
    """These rows as text, with as many columns as the allowance permits (and how many)."""
    columns = min(frame.shape[1], 30)
    while True:
        sample = frame.iloc[positions, :columns].copy()
        for position in range(columns):
            if secret_column(sample.columns[position]):
                sample.isetitem(position, [_WITHHELD] * len(sample))
            elif _kind(sample.iloc[:, position]) == "other":
                shown = [_shown_cell(v, budget) for v in sample.iloc[:, position]]
                sample.isetitem(position, shown)
        text = budget.clean(str(sample.to_string(max_colwidth=_CELL_CHARS + 5)))
        if len(text) <= allowance or columns <= 1:
            return text, columns
        columns = max(1, columns * allowance // len(text))


def _rows(frame: Any, budget: Budget, allowance: int) -> tuple[str, str | None]:
    """Every row of a short frame when it fits; else the first rows and a few at random."""
    rows, width = frame.shape
    if rows <= _ALL_ROWS:
        text, columns = _table(frame, list(range(rows)), budget, allowance)
        if columns == min(width, 30) and len(text) <= allowance:
            heading = f"All {_count(rows, 'row')}" if rows > 1 else "The row"
            return f"{heading}:\n{text}", _columns_note(columns, width)
    positions = list(range(min(rows, _HEAD_ROWS)))
    if rows > _HEAD_ROWS:
        extra = min(_RANDOM_ROWS, rows - _HEAD_ROWS)
        rest = _sample_positions(rows - _HEAD_ROWS, extra) + _HEAD_ROWS
        positions += [int(p) for p in rest]
    text, columns = _table(frame, positions, budget, allowance)
    heading = f"Sample rows ({len(positions)} of {rows:,}: the first and some at random)"
    return f"{heading}:\n{text}", _columns_note(columns, width)


def _columns_note(columns: int, width: int) -> str | None:
    return f"the rows show {columns:,} of {width:,} columns" if columns < width else None


# -- DataFrame -------------------------------------------------------------------------------------


def _column_lines(
    frame: Any, budget: Budget, allowance: int, sampling: _Sampling
) -> tuple[list[str], int]:
    """One line per column until the allowance is used; how many columns were listed."""
    lines: list[str] = []
    used = 0
    for position in range(frame.shape[1]):
        name = frame.columns[position]
        column = frame.iloc[:, position]
        facts = [_nulls(column, len(frame)), _column_facts(name, column, sampling, budget)]
        line = (
            f"- {budget.clip(str(name), 60)} ({column.dtype}): "
            f"{', '.join(fact for fact in facts if fact)}"
        )
        if used + len(line) > allowance and lines:
            break
        lines.append(line)
        used += len(line) + 1
    return lines, len(lines)


def summarise_frame(frame: Any, budget: Budget) -> Summary:
    """A DataFrame within the budget.

    Its shape, each column (dtype, nulls, range or most frequent values), ``describe()`` of the
    numeric columns and a few rows.
    """
    rows, width = frame.shape
    description = f"pandas DataFrame, {_count(rows, 'row')} × {_count(width, 'column')}"
    sampling = _Sampling(rows)
    notes: list[str] = [sampling.note] if sampling.note else []
    lines, listed = _column_lines(frame, budget, budget.share(0.4), sampling)
    heading = "Columns (dtype: nulls, range or most frequent values):"
    if sampling.positions is not None:
        heading += f"\n(frequent values are counted in {sampling.sample_words})"
    sections = [f"{heading}\n" + "\n".join(lines) if lines else "(no columns)"]
    if listed < width:
        rest = ", ".join(str(c) for c in frame.columns[listed : listed + 200])
        more = f"… and {width - listed:,} more columns: {rest}"
        sections.append(budget.clip(more, budget.share(0.05)))
        notes.append(f"columns described: {listed:,} of {width:,}")
    index = _index_text(frame.index, budget)
    if index:
        sections.insert(0, index)
    numeric = [p for p in range(listed) if _kind(frame.iloc[:, p]) == "numeric"]
    if numeric and rows > _NO_STATISTICS_ROWS:
        heading = "Numeric columns, describe()"
        if sampling.statistics_note:
            heading += f" ({sampling.statistics_note})"
        described, _ = budget.fit(_describe(sampling.statistics(frame, numeric)), budget.share(0.3))
        sections.append(f"{heading}:\n{described}")
    if rows:
        used = sum(len(s) for s in sections)
        table, note = _rows(frame, budget, max(budget.share(0.2), budget.max_chars - used))
        sections.append(table)
        notes += [note] if note else []
    else:
        sections.append("(no rows)")
    return Summary(description, "\n\n".join(sections), notes)


def _index_text(index: Any, budget: Budget) -> str:
    if type(index).__name__ == "RangeIndex" and index.start == 0 and index.step == 1:
        return ""
    if len(index) == 0:
        return ""
    name = f" {index.name!r}" if index.name is not None else ""
    first = budget.clip(str(index[0]), 40)
    last = budget.clip(str(index[-1]), 40)
    return f"Index{name}: {type(index).__name__} of {index.dtype}, from {first} to {last}"


# -- Series ----------------------------------------------------------------------------------------


def summarise_series(series: Any, budget: Budget) -> Summary:
    """A Series: dtype, length, nulls, statistics or frequent values, and a few values."""
    rows = len(series)
    name = f" {budget.clip(str(series.name), 60)!r}" if series.name is not None else ""
    description = f"pandas Series{name} of {series.dtype}, {_count(rows, 'value')}"
    sampling = _Sampling(rows)
    notes = [sampling.note] if sampling.note else []
    facts = [_nulls(series, rows) if rows else "empty"]
    facts.append(_column_facts(series.name, series, sampling, budget))
    sections = [", ".join(fact for fact in facts if fact)]
    index = _index_text(series.index, budget)
    if index:
        sections.append(index)
    if rows > _NO_STATISTICS_ROWS and _kind(series) == "numeric":
        heading = "describe()"
        if sampling.statistics_note:
            heading += f" ({sampling.statistics_note})"
        values = series if sampling.exact_statistics else series.iloc[sampling.positions]
        text = values.describe().to_string(float_format=_number)
        sections.append(f"{heading}:\n{budget.fit(str(text), budget.share(0.3))[0]}")
    if rows:
        frame = series.to_frame(name=series.name if series.name is not None else "value")
        table, _ = _rows(frame, budget, budget.share(0.4))
        sections.append(table)
    return Summary(description, "\n\n".join(sections), notes)
