"""What a map returns: a DataFrame like the input with result columns, or a list in input order.

For a DataFrame the result is a copy with the same index and columns, then the result columns --
one per field of an object schema (a dataclass's fields, a model's, a JSON schema's properties),
``value`` for any other schema, ``reply`` for text -- and ``error``: ``None`` where the row
succeeded, else what went wrong in one line (``"interrupted"`` for a row the user's interrupt
stopped). A result column with the name of an input column replaces it (so a map can be run
again on its own result), and a note says so.

For a list, each row's value (the reply's text, or the schema's object) stands at its position;
a failed row holds a :class:`~tf_magics.data.summary.RowError` instead (falsy, with ``kind`` and
``message``).
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Sequence
from typing import Any

from tf_magics.schema import ResponseSchema

from .summary import RowError

__all__ = ["frame_result", "list_result", "result_columns"]

ERROR_COLUMN = "error"


def result_columns(schema: ResponseSchema | None) -> tuple[str, ...]:
    """The columns a DataFrame result gets, ``error`` last."""
    if schema is None:
        return ("reply", ERROR_COLUMN)
    return (*(schema.fields or ("value",)), ERROR_COLUMN)


def frame_result(
    frame: Any,
    index_of: array[int],
    values: Sequence[Any],
    errors: Sequence[RowError | None],
    schema: ResponseSchema | None,
) -> tuple[Any, list[str]]:
    """The input DataFrame with the result columns; and notes (columns replaced).

    ``index_of[row]`` is the position of the row's prompt in ``values`` / ``errors``.
    """
    result = frame.copy()
    names = result_columns(schema)
    replaced = [name for name in names if name in result.columns]
    if replaced:
        result = result.drop(columns=replaced)
    fields = schema.fields if schema is not None else ()
    if fields:
        assert schema is not None
        # One dict per distinct value, then a plain list per column: no object per row.
        rows = [schema.field_values(value) if value is not None else {} for value in values]
        for name in fields:
            by_prompt = [row.get(name) for row in rows]
            result[name] = [by_prompt[position] for position in index_of]
    else:
        result[names[0]] = [values[position] for position in index_of]
    messages = [None if error is None else str(error) for error in errors]
    # An object column keeps None where a row succeeded (pandas would infer a string dtype,
    # turning None into NaN); isna() and notna() read it the same either way.
    series = sys.modules["pandas"].Series  # imported: the input is a DataFrame
    result[ERROR_COLUMN] = series(
        [messages[position] for position in index_of], index=result.index, dtype=object
    )
    notes = []
    if replaced:
        listed = ", ".join(replaced)
        notes.append(f"The input's column(s) {listed} were replaced by the result's.")
    return result, notes


def list_result(
    index_of: array[int], values: Sequence[Any], errors: Sequence[RowError | None]
) -> list[Any]:
    """Each row's value in input order; a failed row holds its :class:`RowError`."""
    merged = [
        value if error is None else error for value, error in zip(values, errors, strict=True)
    ]
    return [merged[position] for position in index_of]
