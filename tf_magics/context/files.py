"""``pathlib.Path`` values: a text file's beginning, an image, or a folder's listing.

Only as many bytes as the budget can show are read. A file that is neither text nor an image
(PNG, JPEG, GIF, WebP) is refused with one line, before anything is sent.
"""

from __future__ import annotations

import os
from pathlib import PurePath
from typing import Any

from tf_magics.errors import AttachmentError

from .budget import Budget, Summary
from .images import image_mime, summarise_image_bytes

__all__ = ["is_path", "size_text", "summarise_path"]

_SNIFF_BYTES = 8 * 1024
_LISTED_ENTRIES = 100


def is_path(value: Any) -> bool:
    """A ``pathlib`` path (a plain string is text, not a path)."""
    return isinstance(value, PurePath)


def size_text(size: int) -> str:
    """A byte count in words: ``"12.3 kB"``."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:,.1f} {unit}"
    return f"{size:,} bytes"


def summarise_path(path: Any, budget: Budget) -> Summary:
    """A file or folder: a folder's entries, a text file's first lines, an image.

    Raises
    ------
    AttachmentError
        If it does not exist or is a binary file that is not an image.
    """
    from pathlib import Path

    target = Path(path).expanduser()
    if target.is_dir():
        return _folder(target, budget)
    if not target.is_file():
        raise AttachmentError(
            f"Cannot attach {str(path)!r}: no such file or folder.",
            hint=f"Check the path (relative to the notebook's folder, {os.getcwd()}).",
        )
    size = target.stat().st_size
    with target.open("rb") as handle:
        head = handle.read(max(_SNIFF_BYTES, budget.max_chars * 4 + 4))
    mime = image_mime(head[:16])
    if mime is not None:
        summary = summarise_image_bytes(target.read_bytes(), budget)
        summary.description = summary.description.replace("image bytes", f"file {target.name}", 1)
        return summary
    text = _decode(head)
    if text is None:
        raise AttachmentError(
            f"Cannot attach {target.name}: it is a binary file ({size_text(size)}), not text or "
            "an image.",
            hint="Attach text files, images (PNG, JPEG, GIF, WebP), or load the data first "
            "(for example with pandas) and attach the result.",
        )
    description = f"text file {target.name}, {size_text(size)}"
    body, note = budget.fit(text)
    notes = [note] if note else []
    if len(head) < size and note is None:
        notes.append(f"showing the first {len(head):,} of {size:,} bytes")
        body += f"\n… [the first {len(head):,} of {size:,} bytes]"
    return Summary(description, body, notes)


def _decode(head: bytes) -> str | None:
    """The text in a file's first bytes, or ``None`` when they are binary.

    UTF-16 with a byte-order mark is text; a NUL byte means binary; UTF-8 is tried first (the
    read may cut its last character), then Latin-1, which is text if it has almost no control
    characters.
    """
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return head.decode("utf-16", errors="replace")
    if b"\x00" in head[:_SNIFF_BYTES]:
        return None
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start >= len(head) - 3:
            return head[: error.start].decode("utf-8")
    text = head.decode("latin-1")
    controls = sum(1 for c in text[:_SNIFF_BYTES] if ord(c) < 32 and c not in "\t\n\r\f")
    return text if controls <= len(text[:_SNIFF_BYTES]) // 100 else None


def _folder(folder: Any, budget: Budget) -> Summary:
    entries = []
    for count, entry in enumerate(sorted(folder.iterdir(), key=lambda p: p.name)):
        if count >= 10_000:  # a huge folder: stop counting
            break
        entries.append(entry)
    lines = []
    for entry in entries[:_LISTED_ENTRIES]:
        try:
            kind = "/" if entry.is_dir() else f"  {size_text(entry.stat().st_size)}"
        except OSError:
            kind = "  (unreadable)"
        lines.append(f"{entry.name}{kind}")
    if len(entries) > _LISTED_ENTRIES:
        lines.append(f"… and {len(entries) - _LISTED_ENTRIES:,} more entries")
    shown = f"{len(entries):,}{'+' if len(entries) >= 10_000 else ''}"
    body, note = budget.fit("\n".join(lines) or "(empty)")
    return Summary(
        f"folder {folder.name or folder}/, {shown} entries", body, [note] if note else []
    )
