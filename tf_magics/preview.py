"""The request a turn would send, without sending it: :class:`Preview` (``%%chat --dry-run``).

A preview holds the exact JSON body (built by the same code as a real request: the message list
of the turn, secrets masked, attachments included, tools, sampling), where it would go, which key
would go with it (its source, never the key), and an estimate of its size. Nothing is sent and
the history is not changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ._public import public
from ._text import truncate
from .attachment import Attachment
from .cost import format_money

__all__ = ["Preview", "shorten_data_uris"]

_DATA_URI_SHOWN = 48


def shorten_data_uris(value: Any) -> Any:
    """``value`` with each long ``data:`` URI shortened, for showing a body with images.

    ``data:image/png;base64,iVBOR… [91,320 characters]``.
    """
    if isinstance(value, str):
        if value.startswith("data:") and len(value) > _DATA_URI_SHOWN * 2:
            return f"{value[:_DATA_URI_SHOWN]}… [{len(value):,} characters]"
        return value
    if isinstance(value, dict):
        return {k: shorten_data_uris(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shorten_data_uris(v) for v in value]
    return value


@public
@dataclass
class Preview:
    """A request that was built but not sent.

    Attributes
    ----------
    body
        The JSON body exactly as it would be sent to ``url``.
    url
        Where it would be sent (``…/chat/completions``), or what would serve it.
    prompt_tokens
        The estimated size of the prompt (~4 characters per token, images by their size).
    attachments
        The values attached to the question, as sent.
    notes
        What else the request would do or say (a trimmed history, masked secrets, the model the
        server would choose…).
    key_source
        Where the API key that would be sent comes from (``None``: no key).
    cost
        The most the request may cost (its prompt, and ``max_tokens`` of reply) at the model's
        price; ``None`` when the price is unknown.
    currency
        The prices' currency, as shown.
    """

    body: dict[str, Any]
    url: str
    prompt_tokens: int
    attachments: list[Attachment] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    key_source: str | None = None
    cost: float | None = None
    currency: str = "$"
    label: str | None = None

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The messages that would be sent."""
        messages: list[dict[str, Any]] = self.body.get("messages", [])
        return messages

    @property
    def tools(self) -> list[dict[str, Any]]:
        """The tool schemas that would be offered."""
        tools: list[dict[str, Any]] = self.body.get("tools", [])
        return tools

    @property
    def sampling(self) -> dict[str, Any]:
        """Every other field of the body (model, max_tokens, temperature, stream…)."""
        return {k: v for k, v in self.body.items() if k not in ("messages", "tools")}

    @property
    def max_tokens(self) -> int | None:
        """The cap on the reply's length."""
        value = self.body.get("max_tokens")
        return value if isinstance(value, int) else None

    def size_text(self) -> str:
        """``"~1,234 tokens in, up to 1,024 out"`` (and the cost, when known)."""
        text = f"~{self.prompt_tokens:,} tokens in"
        if self.max_tokens is not None:
            text += f", up to {self.max_tokens:,} out"
        if self.cost is not None:
            text += f", at most {format_money(self.cost, self.currency)}"
        return text

    def to_json(self, *, full: bool = False) -> str:
        """The body as indented JSON (``data:`` URIs shortened unless ``full``)."""
        body = self.body if full else shorten_data_uris(self.body)
        return json.dumps(body, ensure_ascii=False, indent=2)

    def to_text(self) -> str:
        """The preview as plain text: where, how big, each message, tools and sampling."""
        title = f"Dry run{f' ({self.label})' if self.label else ''}: nothing was sent."
        key = f"key: {self.key_source}" if self.key_source else "no key"
        lines = [title, f"POST {self.url} · {self.size_text()} · {key}"]
        lines += [f"note: {note}" for note in self.notes]
        for position, message in enumerate(self.messages):
            lines.append(f"--- [{position}] {message.get('role')}")
            lines.append(_content_text(message.get("content")))
            for call in message.get("tool_calls") or []:
                function = call.get("function", {})
                lines.append(f"(tool call {function.get('name')}({function.get('arguments')}))")
        if self.tools:
            names = [t.get("function", {}).get("name", "?") for t in self.tools]
            lines.append(f"--- tools: {', '.join(names)}")
        sampling = json.dumps(self.sampling, ensure_ascii=False)
        lines.append(f"--- sampling and the rest of the body: {sampling}")
        return "\n".join(lines)

    __str__ = to_text

    def __repr__(self) -> str:
        return f"<Preview: POST {self.url}, {len(self.messages)} messages, {self.size_text()}>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.to_text())


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return "" if content is None else str(content)
    shown = []
    for part in content:
        if part.get("type") == "text":
            shown.append(str(part.get("text", "")))
        else:
            url = str(part.get("image_url", {}).get("url", ""))
            shown.append(f"[image: {truncate(shorten_data_uris(url), 80)}]")
    return "\n\n".join(shown)
