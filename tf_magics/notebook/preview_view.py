"""``%%chat --dry-run``: the request shown readably, as it would be sent (pure HTML and text).

Where it would go and with which key (its source, never the key), its estimated size, every
message (long ones collapsed; the question's attachments collapsed like under a reply), the tools,
the sampling fields and the exact JSON body (``data:`` URIs shortened). All of it is escaped.
"""

from __future__ import annotations

import json
from typing import Any

from tf_magics.preview import Preview, shorten_data_uris
from tf_magics.render import NO_MATH, escape

from .attachments_view import attachments_html
from .layout import BOX, MUTED
from .outputs import Bundle

__all__ = ["preview_bundle"]

_SHORT = 600
_PRE = "white-space:pre-wrap;margin:2px 0;font-size:0.85em"


def _content(content: Any) -> str:
    if isinstance(content, list):
        texts = []
        for part in content:
            if part.get("type") == "text":
                texts.append(str(part.get("text", "")))
            else:
                texts.append(
                    f"[image {shorten_data_uris(part.get('image_url', {}).get('url', ''))}]"
                )
        return "\n\n".join(texts)
    return "" if content is None else str(content)


def _text_block(text: str) -> str:
    if len(text) <= _SHORT:
        return f'<pre style="{_PRE}">{escape(text)}</pre>'
    first = escape(text[:120].split("\n", 1)[0])
    return (
        f'<details><summary>{first}… <span style="{MUTED}">({len(text):,} characters)'
        f'</span></summary><pre style="{_PRE}">{escape(text)}</pre></details>'
    )


def _message(position: int, message: dict[str, Any], preview: Preview, last: bool) -> str:
    role = escape(str(message.get("role")))
    body = _content(message.get("content"))
    shown = ""
    if last and preview.attachments:
        # The question's attachments are shown collapsed; the question itself below them.
        shown = attachments_html(preview.attachments)
        for attachment in preview.attachments:
            body = body.replace(attachment.text, "", 1)
        body = body.strip("\n")
    calls = "".join(
        f'<div style="{MUTED}">tool call <code>{escape(str(c.get("function", {}).get("name")))}'
        f"</code>({escape(str(c.get('function', {}).get('arguments')))})</div>"
        for c in message.get("tool_calls") or []
    )
    return (
        f'<tr style="vertical-align:top"><td style="{MUTED};padding-right:8px">'
        f"[{position}]&nbsp;{role}</td><td>{shown}{_text_block(body) if body else ''}{calls}"
        "</td></tr>"
    )


def _one_html(preview: Preview) -> str:
    title = "Dry run" + (f" · {escape(preview.label)}" if preview.label else "")
    key = f"key: {preview.key_source}" if preview.key_source else "no key"
    head = (
        f"<div><b>{title}: nothing was sent.</b> "
        f'<span style="{MUTED}">POST {escape(preview.url)} · {escape(preview.size_text())} · '
        f"{escape(key)}</span></div>"
    )
    notes = "".join(f'<div style="{MUTED}">{escape(note)}</div>' for note in preview.notes)
    messages = preview.messages
    rows = "".join(
        _message(position, message, preview, position == len(messages) - 1)
        for position, message in enumerate(messages)
    )
    parts = [head, notes, f'<table style="border-collapse:collapse;width:100%">{rows}</table>']
    if preview.tools:
        names = ", ".join(str(t.get("function", {}).get("name")) for t in preview.tools)
        schemas = escape(json.dumps(preview.tools, ensure_ascii=False, indent=2))
        parts.append(
            f"<details><summary>Tools: {escape(names)}</summary>"
            f'<pre style="{_PRE}">{schemas}</pre></details>'
        )
    sampling = " · ".join(
        f"<code>{escape(k)}</code>: {escape(json.dumps(v, ensure_ascii=False))}"
        for k, v in preview.sampling.items()
    )
    parts.append(f'<div style="{MUTED}">{sampling}</div>')
    parts.append(
        "<details><summary>The request body (JSON)</summary>"
        f'<pre style="{_PRE}">{escape(preview.to_json())}</pre></details>'
    )
    return f'<div class="tf-magics-preview {NO_MATH}" style="{BOX}">{"".join(parts)}</div>'


def preview_bundle(previews: list[Preview]) -> Bundle:
    """The output of a dry run (one preview per variant of a comparison)."""
    html = "".join(_one_html(p) for p in previews)
    text = "\n\n".join(p.to_text() for p in previews)
    return {"text/html": html, "text/plain": text}
