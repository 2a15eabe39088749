"""What was attached to a question, shown collapsed: the exact text sent, images as thumbnails.

Pure (no IPython): the live view puts this block at the top of a reply, ``%chat history`` and the
dry run show it too. Everything taken from the attachment is escaped; an image is shown only
from a ``data:image/…;base64,`` URI made by tf_magics (never an address from elsewhere).
"""

from __future__ import annotations

import re

from tf_magics.attachment import Attachment
from tf_magics.render import NO_MATH, escape

from .layout import BOX, MUTED

__all__ = ["attachments_bundle", "attachments_html", "attachments_markdown", "attachments_text"]

_SAFE_IMAGE = re.compile(r"^data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=]+$")
_IMAGE_STYLE = "max-width:240px;max-height:240px;border:1px solid var(--jp-border-color2,#ddd)"
_TEXT_STYLE = "white-space:pre-wrap;max-height:24em;overflow:auto;font-size:0.85em;margin:4px 0"


def _total(attachments: list[Attachment]) -> str:
    return f"~{sum(a.tokens for a in attachments):,} tokens"


def attachments_text(attachments: list[Attachment]) -> str:
    """One line: ``📎 Attached: df (pandas DataFrame, …; ~640 tokens), fig (…)``."""
    return "📎 Attached: " + ", ".join(a.summary() for a in attachments)


def attachments_markdown(attachments: list[Attachment]) -> str:
    """The same line in Markdown (emphasised; names in code spans)."""
    shown = ", ".join(f"`{a.name}` ({escape(a.description)}; {a.size_text()})" for a in attachments)
    return f"*📎 Attached: {shown}*"


def _image(url: str, name: str) -> str:
    if not _SAFE_IMAGE.match(url):
        return ""
    return f'<div><img src="{escape(url)}" alt="{escape(name)}" style="{_IMAGE_STYLE}"></div>'


def _one(attachment: Attachment) -> str:
    notes = "".join(f'<div style="{MUTED}">{escape(note)}</div>' for note in attachment.notes)
    if attachment.redacted:
        masked = ", ".join(attachment.redacted)
        notes += f'<div style="{MUTED}">🔒 masked: {escape(masked)}</div>'
    images = "".join(
        _image(attachment.thumbnail or url, attachment.name) for url in attachment.images
    )
    return (
        f'<details class="tf-magics-attachment {NO_MATH}" style="margin:2px 0 2px 12px">'
        f"<summary><code>{escape(attachment.name)}</code> "
        f'<span style="{MUTED}">{escape(attachment.description)} · '
        f"{escape(attachment.size_text())}</span></summary>"
        f'{notes}{images}<pre style="{_TEXT_STYLE}">{escape(attachment.text)}</pre></details>'
    )


def attachments_html(attachments: list[Attachment], *, opened: bool = False) -> str:
    """A collapsed block: one line per attachment, each opening on the exact text sent."""
    names = ", ".join(a.name for a in attachments)
    count = len(attachments)
    title = (
        f"📎 {count} attachment{'s' if count > 1 else ''} sent with the question "
        f"({escape(names)}) · {_total(attachments)}"
    )
    return (
        f'<details class="tf-magics-attachments {NO_MATH}" style="{BOX}"'
        f"{' open' if opened else ''}>"
        f'<summary style="{MUTED}">{title}</summary>'
        + "".join(_one(a) for a in attachments)
        + "</details>"
    )


def attachments_bundle(attachments: list[Attachment]) -> tuple[str, str, str]:
    """``(html, markdown, plain)`` of the attachments block."""
    return (
        attachments_html(attachments),
        attachments_markdown(attachments),
        attachments_text(attachments),
    )
