"""A prompt template filled from each row: ``{column}`` placeholders, ``{{`` and ``}}`` for braces.

The rule is ``%%chat -i``'s: only plain names are replaced (no attribute, index or call), each once,
and braces that do not hold a name are left as they are, so a template may show JSON. Every
placeholder is checked against the data's columns before anything is sent: a missing one is one
clear error that lists the columns there are.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from tf_magics._text import clean_text, truncate
from tf_magics.errors import ConfigurationError

__all__ = ["PromptTemplate", "cell_text"]

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class PromptTemplate:
    """A template cut once into literal text and the names to fill in.

    Attributes
    ----------
    text
        The template as written.
    fields
        The placeholder names, in order of first appearance.
    """

    text: str
    fields: tuple[str, ...]
    _parts: tuple[tuple[bool, str], ...]  # (is a field, literal text or field name)

    @classmethod
    def parse(cls, text: str) -> PromptTemplate:
        """Cut ``text`` into literal parts and placeholders.

        Raises
        ------
        ConfigurationError
            When the template is not a string, or is empty.
        """
        if not isinstance(text, str):
            raise ConfigurationError(
                f"The template must be text (a str), not {type(text).__name__}.",
                hint="For example tf_magics.map('Classify: {review}', df).",
            )
        if not text.strip():
            raise ConfigurationError("The template is empty: write the prompt to send per row.")
        parts: list[tuple[bool, str]] = []
        fields: list[str] = []
        position = 0
        for match in _PLACEHOLDER.finditer(text):
            parts.append((False, text[position : match.start()]))
            token, name = match.group(0), match.group(1)
            if name is None:
                parts.append((False, token[0]))  # {{ -> {, }} -> }
            else:
                parts.append((True, name))
                if name not in fields:
                    fields.append(name)
            position = match.end()
        parts.append((False, text[position:]))
        merged = _merge_literals(parts)
        return cls(text=text, fields=tuple(fields), _parts=merged)

    def check(self, columns: Collection[str], *, where: str = "the data") -> None:
        """Raise when a placeholder names no column.

        Raises
        ------
        ConfigurationError
            Naming the first missing placeholder and listing the columns there are.
        """
        for name in self.fields:
            if name not in columns:
                shown = ", ".join(sorted(map(str, columns))) or "none"
                raise ConfigurationError(
                    f"The template uses {{{name}}}, but {where} has no column {name!r} "
                    f"(columns: {truncate(shown, 200)}).",
                    hint="Fix the name, or write {{ and }} for literal braces.",
                )

    def fill(self, row: Mapping[str, Any]) -> str:
        """The prompt for one row (each value as text: ``None`` and NaN become empty)."""
        return clean_text(
            "".join(cell_text(row[value]) if is_field else value for is_field, value in self._parts)
        )


def cell_text(value: Any) -> str:
    """A value as it goes into a prompt: text as it is, missing values (None, NaN, NA) empty."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    if type(value).__name__ in ("NAType", "NaTType"):  # pandas' missing markers
        return ""
    return str(value)


def _merge_literals(parts: list[tuple[bool, str]]) -> tuple[tuple[bool, str], ...]:
    merged: list[tuple[bool, str]] = []
    for is_field, value in parts:
        if not is_field and merged and not merged[-1][0]:
            merged[-1] = (False, merged[-1][1] + value)
        elif is_field or value:
            merged.append((is_field, value))
    return tuple(merged)
