"""The arguments of a tool call, checked against the tool's parameters and converted.

The conversion itself (and its safe, noted fixes of common model slips) is
:func:`tf_magics.schema.convert.convert_fields`, shared with structured replies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tf_magics.errors import ToolArgumentError, ValidationError
from tf_magics.schema.annotations import FieldSpec
from tf_magics.schema.convert import convert_fields

__all__ = ["validate_arguments"]


def validate_arguments(
    fields: Sequence[FieldSpec], raw: Any, *, notes: list[str] | None = None
) -> dict[str, Any]:
    """Check decoded JSON arguments against a tool's parameters and convert them.

    Parameters
    ----------
    fields
        The tool's parameters (:attr:`tf_magics.Tool.fields`).
    raw
        The decoded JSON arguments (must be a dict).
    notes
        If given, a line is appended for every conversion made.

    Returns
    -------
    dict
        Keyword arguments for the function: omitted optional arguments are left out, so their
        Python defaults apply; dataclass, TypedDict, pydantic and Enum values are built.

    Raises
    ------
    ToolArgumentError
        Listing every unknown, missing or invalid argument.
    """
    try:
        return convert_fields(fields, raw, notes=notes)
    except ValidationError as error:
        raise ToolArgumentError(error.problems) from None
