"""Small text helpers every layer shares: shortening, one-line summaries, masking secrets.

Each concern has exactly one implementation here, so a message cut in the client reads like one
cut in the view, and a secret is masked the same way wherever it could surface.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = [
    "MASK",
    "SurrogateJoiner",
    "clean_text",
    "exception_text",
    "one_line",
    "redact",
    "repr_text",
    "truncate",
]

#: What a masked secret is replaced with.
MASK = "***"
_HIGH_SURROGATES = range(0xD800, 0xDC00)


def truncate(text: str, limit: int, *, count: bool = False) -> str:
    """``text`` cut to at most ``limit`` characters, marked where it was cut.

    Parameters
    ----------
    text
        The text to shorten.
    limit
        How many characters of ``text`` to keep.
    count
        Say how much was left out (``"… [1,234 more characters]"``, for previews of data);
        otherwise end with a bare ``"…"`` and stay within ``limit`` (for labels and messages).
    """
    if len(text) <= limit:
        return text
    if count:
        return f"{text[:limit]}… [{len(text) - limit:,} more characters]"
    return text[: max(0, limit - 1)].rstrip() + "…"


def one_line(text: str, limit: int | None = None) -> str:
    """``text`` with every run of whitespace (newlines included) collapsed to one space."""
    flat = " ".join(text.split())
    return flat if limit is None else truncate(flat, limit)


def exception_text(exc: BaseException) -> str:
    """An exception in one line: ``"ValueError: the message"``."""
    message = one_line(str(exc))
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def redact(value: Any, secrets: Iterable[str | None]) -> Any:
    """``value`` with every occurrence of each secret replaced by :data:`MASK`.

    Strings, and strings nested in dicts, lists and tuples, are masked; other values pass through.
    Mask *before* cutting text short: a cut can split a secret so that the part left no longer
    matches it.
    """
    words = sorted({s for s in secrets if s}, key=len, reverse=True)
    if not words:
        return value
    return _redact(value, words)


def _redact(value: Any, words: list[str]) -> Any:
    if isinstance(value, str):
        for word in words:
            value = value.replace(word, MASK)
        return value
    if isinstance(value, dict):
        return {_redact(k, words): _redact(v, words) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_redact(v, words) for v in value)
    return value


def clean_text(text: str) -> str:
    r"""``text`` that can always be encoded: surrogate pairs joined, lone surrogates replaced.

    JSON lets a server (or a file, or a tool) send ``"\ud83d\ude00"`` as two escapes, which
    Python decodes to two surrogate code points, or send half of such a pair; neither can be
    encoded to UTF-8, so one such character would break every later request of a conversation.
    A pair becomes the character it stands for and a lone half becomes U+FFFD.
    """
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # UTF-16 joins a surrogate pair into its character, and decodes a lone half as U+FFFD.
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


class SurrogateJoiner:
    """:func:`clean_text` for text that arrives in pieces (a surrogate pair may be split).

    A high surrogate at the end of a piece is held back until the next piece says whether its
    other half follows.
    """

    def __init__(self) -> None:
        self._held = ""

    def feed(self, piece: str) -> str:
        """The clean text of ``piece`` that can be released now."""
        if self._held:
            piece, self._held = self._held + piece, ""
        if piece and ord(piece[-1]) in _HIGH_SURROGATES:
            piece, self._held = piece[:-1], piece[-1]
        return clean_text(piece)

    def flush(self) -> str:
        """Whatever was held back (a lone half, replaced)."""
        held, self._held = self._held, ""
        return clean_text(held)


def repr_text(value: Any, name: str) -> str | None:
    """The text of an IPython-style ``_repr_*_`` method of ``value``, when it gives one.

    A class is not asked (its method is unbound), and a method that fails or returns something
    other than text gives ``None``: a value's own display code must never break a request.
    """
    method = getattr(value, name, None)
    if isinstance(value, type) or not callable(method):
        return None
    try:
        text = method()
    except Exception:
        return None
    if isinstance(text, tuple) and text:
        text = text[0]  # (data, metadata), as IPython allows
    return text if isinstance(text, str) else None
