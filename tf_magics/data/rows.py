"""Where a map's rows come from: a pandas DataFrame, a list of dicts, or a list of strings.

:func:`read_rows` turns the data into one prompt per row, in input order, after checking every
placeholder of the template against the data (nothing is sent when one is missing). pandas is never
imported here: a DataFrame can only exist once the user imported pandas, so it is recognised
through :data:`sys.modules`.

- DataFrame: ``{column}`` takes the row's value in that column;
- list (or tuple) of dicts: ``{key}`` takes the row's value for that key; every row must have it;
- list of strings: ``{text}`` is the string; a template without any placeholder is followed by the
  string after a blank line (``map("Classify this review:", reviews)``).

Identical prompts are sent once (:func:`unique_prompts`); every row that shares one gets its
result.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tf_magics.errors import ConfigurationError

from .template import PromptTemplate, cell_text

__all__ = ["RowKind", "Rows", "is_dataframe", "read_rows", "unique_prompts"]

RowKind = Literal["frame", "dicts", "strings"]
#: The placeholder that stands for the row itself when the rows are strings.
TEXT_FIELD = "text"


@dataclass
class Rows:
    """The rows of a map, read: their prompts in input order, and what the result looks like.

    Attributes
    ----------
    kind
        ``"frame"``, ``"dicts"`` or ``"strings"``.
    prompts
        One prompt per row, in input order.
    frame
        The input DataFrame (for ``"frame"``), whose copy becomes the result.
    """

    kind: RowKind
    prompts: list[str]
    frame: Any = None


def is_dataframe(data: Any) -> bool:
    """Whether ``data`` is a pandas DataFrame (without importing pandas)."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(data, pandas.DataFrame)


def read_rows(template: PromptTemplate, data: Any) -> Rows:
    """The prompts of every row of ``data``, filled from ``template``.

    Raises
    ------
    ConfigurationError
        For data of another kind, a row of the wrong type, or a placeholder no row can fill.
    """
    if is_dataframe(data):
        return Rows("frame", _frame_prompts(template, data), frame=data)
    if isinstance(data, (str, bytes, Mapping)) or not isinstance(data, Sequence):
        raise ConfigurationError(
            f"map needs a pandas DataFrame, a list of dicts or a list of strings, not "
            f"{type(data).__name__}.",
            hint="For one column use df[['column']], or a list: df['column'].tolist().",
        )
    if not data:
        return Rows("strings", [])
    if all(isinstance(row, str) for row in data):
        return Rows("strings", _string_prompts(template, data))
    if all(isinstance(row, Mapping) for row in data):
        return Rows("dicts", _dict_prompts(template, data))
    odd = next(
        (i, row)
        for i, row in enumerate(data)
        if not isinstance(row, (str, Mapping)) or type(row) is not type(data[0])
    )
    raise ConfigurationError(
        f"Row {odd[0]} is a {type(odd[1]).__name__}: the rows must all be strings or all dicts.",
    )


def _need_placeholder(template: PromptTemplate, what: str) -> None:
    if not template.fields:
        raise ConfigurationError(
            f"The template has no placeholder, so every row would send the same prompt; name "
            f"a {what} in braces, e.g. {{review}}.",
        )


def _frame_prompts(template: PromptTemplate, frame: Any) -> list[str]:
    _need_placeholder(template, "column")
    columns = [column for column in frame.columns if isinstance(column, str)]
    template.check(columns, where="the DataFrame")
    doubled = [name for name in template.fields if columns.count(name) > 1]
    if doubled:
        raise ConfigurationError(
            f"The DataFrame has several columns named {doubled[0]!r}: rename them first."
        )
    # Column by column (a list each), then row by row: no Series or dict per row.
    values = [frame[name].tolist() for name in template.fields]
    return [
        template.fill(dict(zip(template.fields, row, strict=True)))
        for row in zip(*values, strict=True)
    ]


def _dict_prompts(template: PromptTemplate, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    _need_placeholder(template, "key")
    template.check(list(rows[0]), where="the first row")
    prompts = []
    for position, row in enumerate(rows):
        missing = [name for name in template.fields if name not in row]
        if missing:
            raise ConfigurationError(
                f"Row {position} has no key {missing[0]!r}, which the template uses "
                f"({{{missing[0]}}}).",
                hint="Give every row the keys the template names.",
            )
        prompts.append(template.fill(row))
    return prompts


def _string_prompts(template: PromptTemplate, rows: Sequence[str]) -> list[str]:
    if not template.fields:
        # "Classify this review:" + the review: the natural way to write it for strings.
        head = template.fill({})
        return [f"{head}\n\n{cell_text(row)}" for row in rows]
    template.check([TEXT_FIELD], where="a list of strings (its one field is {text})")
    return [template.fill({TEXT_FIELD: row}) for row in rows]


def unique_prompts(prompts: list[str]) -> tuple[list[str], array[int], list[int]]:
    """Identical prompts once: ``(unique, which unique prompt each row has, rows per prompt)``."""
    seen: dict[str, int] = {}
    index_of = array("q")
    weights: list[int] = []
    for prompt in prompts:
        position = seen.get(prompt)
        if position is None:
            position = seen[prompt] = len(weights)
            weights.append(0)
        weights[position] += 1
        index_of.append(position)
    return list(seen), index_of, weights
