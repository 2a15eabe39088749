"""``%%chat -i``: notebook values put into a cell's text, once, by name.

``{name}`` and ``{name.attr}`` are replaced with ``str()`` of the value; ``{{`` and ``}}`` give
literal braces. Without ``-i`` a cell is sent verbatim, braces and all (code and JSON are full of
them).
"""

from __future__ import annotations

import re
from typing import Any

from IPython.core.error import UsageError

from tf_magics._text import clean_text, exception_text

__all__ = ["interpolate"]

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\}")


def interpolate(text: str, namespace: dict[str, Any]) -> str:
    """Replace ``{name}`` / ``{name.attr}`` with notebook values, once; ``{{``/``}}`` escape.

    Only names and public attribute lookups are allowed: no calls, no indexing, no private
    attributes, and replaced values are not scanned again. An attribute that is a property does
    run its getter (and ``str()`` runs the value's ``__str__``), as reading it in a cell would.

    Raises
    ------
    UsageError
        If a name is not defined, or reading a value fails (in one line).
    """

    def substitute(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        name, *attributes = match.group(1).split(".")
        if name not in namespace:
            raise UsageError(
                f"--interpolate: {{{match.group(1)}}} names no notebook variable; define "
                f"{name!r} or write {{{{{match.group(1)}}}}} for literal braces."
            )
        value = namespace[name]
        for attribute in attributes:
            if attribute.startswith("_"):
                raise UsageError(f"--interpolate: private attribute {attribute!r} is not allowed.")
        try:
            for attribute in attributes:
                value = getattr(value, attribute)
            return clean_text(str(value))
        except Exception as error:  # a property or __str__ that raises: one line, no traceback
            raise UsageError(
                f"--interpolate: reading {{{match.group(1)}}} failed ({exception_text(error)})."
            ) from None

    return _PLACEHOLDER.sub(substitute, text)
