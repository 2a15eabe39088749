"""What every summariser works within: :class:`Budget` (size, secrets) and :class:`Summary`.

A summariser turns one value into a :class:`Summary` (a description, a text body, maybe an
image) and must stay within ``budget.max_chars`` on its own: a 10-million-row DataFrame is
summarised from a bounded amount of work, never printed whole and cut afterwards. Every piece of
text it takes from the value goes through :meth:`Budget.clean` (or :meth:`Budget.clip`) first, so
a secret is masked *before* any cut could leave half of it readable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tf_magics._secrets import SecretScanner
from tf_magics._text import truncate

__all__ = ["CHARS_PER_TOKEN", "Budget", "CodeCells", "ImageData", "Summary", "module_root"]

#: The project's estimate: about four characters per token.
CHARS_PER_TOKEN = 4
_NOTE_CHARS = 80  # room kept for the "… [truncated: …]" line

#: Maps a code object's file name to ``(label, source)`` when the code is a notebook cell
#: (``("In [7]", "x = 1 / 0")``), so tracebacks name cells and show their source.
CodeCells = Callable[[str], "tuple[str, str] | None"]


@dataclass
class Budget:
    """The limits and the secret scanner of one attachment's summary.

    Parameters
    ----------
    max_chars
        The most characters the summary's text may take (the label line aside).
    scanner
        Masks secrets in every piece of text taken from the value.
    code_cells
        Names notebook cells in tracebacks (given by the notebook layer).
    source
        Show the source of functions, classes and modules, not only their signatures.
    """

    max_chars: int
    scanner: SecretScanner = field(default_factory=SecretScanner)
    code_cells: CodeCells | None = None
    source: bool = False
    found: list[str] = field(default_factory=list)

    @classmethod
    def of_tokens(cls, max_tokens: int, **kwargs: Any) -> Budget:
        """A budget of ``max_tokens`` tokens (at :data:`CHARS_PER_TOKEN`)."""
        return cls(max_chars=max(200, max_tokens * CHARS_PER_TOKEN), **kwargs)

    def share(self, fraction: float) -> int:
        """A part of the budget, in characters."""
        return max(80, int(self.max_chars * fraction))

    def clean(self, text: str) -> str:
        """``text`` with every secret masked (what was found is remembered for the notice)."""
        cleaned, names = self.scanner.redact(text)
        self.found += names
        return cleaned

    def clip(self, text: str, limit: int) -> str:
        """``text`` masked, then cut to ``limit`` characters (ending in ``…`` when cut)."""
        return truncate(self.clean(text), limit)

    def fit(self, text: str, limit: int | None = None) -> tuple[str, str | None]:
        """``text`` masked and cut to ``limit`` characters (the budget), a line saying so included.

        Returns the text and the note (``None`` when nothing was cut).
        """
        limit = self.max_chars if limit is None else limit
        text = self.clean(text)
        if len(text) <= limit:
            return text, None
        kept = max(0, limit - _NOTE_CHARS)
        note = f"truncated: {len(text):,} characters, showing the first {kept:,}"
        return f"{text[:kept].rstrip()}\n… [{note}]", note


@dataclass(frozen=True)
class ImageData:
    """An encoded image to send as an ``image_url`` part."""

    data: bytes
    mime: str
    width: int
    height: int


@dataclass
class Summary:
    """What a summariser made of a value."""

    description: str
    body: str = ""
    notes: list[str] = field(default_factory=list)
    image: ImageData | None = None
    thumbnail: str | None = None


def module_root(value: Any) -> str:
    """The top-level package of a value's type (``"pandas"``), without importing anything."""
    return (type(value).__module__ or "").split(".")[0]
