"""A notebook value as the model receives it: :class:`Attachment`, labelled content parts.

An attachment is what ``%%chat --with df`` (or ``chat.ask(..., context=[df])``) adds to a
question: a text part that starts with a label line naming the value (``Attachment `df` (pandas
DataFrame, 1,092 rows × 6 columns):``) and holds its summary, and for an image an ``image_url``
part after it. The parts go into the user message (:attr:`tf_magics.Message.parts`), so the
history, a retry and a saved conversation send exactly what was sent the first time;
:meth:`Attachment.from_parts` reads them back for display.

The summaries themselves are made in :mod:`tf_magics.context`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from ._public import public
from ._secrets import SecretScanner
from ._tokens import part_tokens

__all__ = ["Attachment", "label_line"]

_LABEL = re.compile(r"^Attachment (?:`(?P<name>[^`\n]*)`|(?P<number>\d+)) \((?P<about>[^\n]*)\):$")


def label_line(name: str, description: str) -> str:
    """The first line of an attachment's text part: ``Attachment `df` (pandas DataFrame…):``."""
    shown = f"`{name}`" if name and not name.isdigit() else name or "?"
    return f"Attachment {shown} ({description}):"


@public
@dataclass(frozen=True)
class Attachment:
    """One value attached to a message: its name, what it is, and the parts that are sent.

    Attributes
    ----------
    name
        The name the model sees (a notebook variable's name; a number for unnamed values).
    description
        What it is, in a few words (``"pandas DataFrame, 1,092 rows × 6 columns"``).
    parts
        The content parts sent: a text part (label line, then the summary) and, for an image,
        an ``image_url`` part with a ``data:`` URI.
    notes
        What was left out to stay within the budget (``"showing 20 of 1,000 columns"``).
    redacted
        The names of secrets that were masked in it (never their values).
    thumbnail
        A small ``data:`` URI to show an image attachment (not sent).
    """

    name: str
    description: str
    parts: tuple[dict[str, Any], ...] = ()
    notes: tuple[str, ...] = ()
    redacted: tuple[str, ...] = ()
    thumbnail: str | None = field(default=None, repr=False)

    @property
    def text(self) -> str:
        """The text sent (label line and summary)."""
        return "\n\n".join(p["text"] for p in self.parts if p.get("type") == "text")

    @property
    def images(self) -> list[str]:
        """The ``data:`` URIs of its images."""
        return [
            p["image_url"]["url"]
            for p in self.parts
            if p.get("type") == "image_url" and isinstance(p.get("image_url"), dict)
        ]

    @property
    def tokens(self) -> int:
        """The estimated size in tokens (text at ~4 characters per token, images by size)."""
        return sum(part_tokens(part) for part in self.parts)

    def size_text(self) -> str:
        """Its size in words: ``"~640 tokens"``."""
        return f"~{self.tokens:,} tokens"

    def summary(self) -> str:
        """One line: name, description and size."""
        return f"{self.name} ({self.description}; {self.size_text()})"

    def redact(self, scanner: SecretScanner) -> tuple[Attachment, list[str]]:
        """The attachment with every secret of ``scanner`` masked in its text parts."""
        found: list[str] = []
        parts = []
        for part in self.parts:
            if part.get("type") == "text":
                text, names = scanner.redact(str(part.get("text", "")))
                found += names
                part = {**part, "text": text}
            parts.append(part)
        if not found:
            return self, []
        masked = tuple(dict.fromkeys([*self.redacted, *found]))
        return replace(self, parts=tuple(parts), redacted=masked), found

    @classmethod
    def from_parts(cls, parts: list[dict[str, Any]]) -> list[Attachment]:
        """The attachments in a message's parts (as sent), for display.

        A text part that starts with a label line begins an attachment; the image parts after it
        belong to it. Parts without a label (a conversation loaded from elsewhere) become
        attachments named by their position.
        """
        found: list[Attachment] = []
        labelled = False  # the last attachment began with a label line (its image may follow)
        for part in parts:
            kind = part.get("type")
            if kind == "image_url" and labelled and not found[-1].images:
                found[-1] = replace(found[-1], parts=(*found[-1].parts, part))
                continue
            first_line = str(part.get("text", "")).split("\n", 1)[0] if kind == "text" else ""
            label = _LABEL.match(first_line)
            labelled = label is not None
            if label is not None:
                name = label.group("name") or label.group("number") or ""
                found.append(cls(name, label.group("about"), (part,)))
            else:
                about = "image" if kind == "image_url" else "text"
                found.append(cls(str(len(found) + 1), about, (part,)))
        return found
