"""A conversation as a file: the JSON form it is saved in, read back whole or not at all.

Saved conversations are shared (teaching notebooks are committed and passed around), so a file
is untrusted input: :func:`read` checks every message before anything is built and names the
first problem in one line, so a bad file never half-loads and never breaks a later request.
The Markdown export lives here too (:func:`to_markdown`).
"""

from __future__ import annotations

import json
from typing import Any

from tf_magics.types import Message

__all__ = ["FORMAT", "FORMAT_VERSION", "dump", "parse", "read", "to_markdown"]

FORMAT = "tf_magics.conversation"
FORMAT_VERSION = 1


def dump(name: str, messages: list[Message]) -> dict[str, Any]:
    """The JSON-compatible form of a conversation."""
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "name": name,
        "messages": [m.to_dict() for m in messages],
    }


def parse(text: str) -> Any:
    """Decode the JSON text of a saved conversation.

    Raises
    ------
    ValueError
        If it is not JSON.
    """
    return json.loads(text)


def read(data: Any) -> tuple[str, list[Message]]:
    """The name and messages of a saved conversation (or of an OpenAI ``messages`` list).

    Raises
    ------
    ValueError
        If ``data`` is not a conversation.
    """
    if isinstance(data, list):
        data = {"messages": data}
    if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
        raise ValueError("expected a saved conversation: an object with a 'messages' list")
    messages = [Message.from_dict(m) for m in data["messages"]]
    return str(data.get("name") or "default"), messages


def to_markdown(name: str, messages: list[Message]) -> str:
    """A conversation as a readable Markdown document."""
    parts = [f"# Conversation: {name}"]
    for message in messages:
        parts.append(_message_markdown(message))
    return "\n\n".join(parts) + "\n"


def _fence(text: str, info: str = "") -> str:
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return f"{ticks}{info}\n{text}\n{ticks}"


def _message_markdown(message: Message) -> str:
    title = {"system": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}[
        message.role
    ]
    if message.role == "tool":
        title = f"Tool result: `{message.name or message.tool_call_id}`"
    if message.partial:
        title += " (partial)"
    lines = [f"## {title}", ""]
    if message.reasoning:
        quoted = "\n".join(f"> {line}" for line in message.reasoning.splitlines())
        lines += ["> *Reasoning:*", quoted, ""]
    if message.role == "tool":
        lines.append(_fence(message.content))
    elif message.content:
        lines.append(message.content)
    for call in message.tool_calls:
        lines += ["", f"Tool call `{call.name}`:", "", _fence(call.arguments or "{}", "json")]
    if message.note:
        lines += ["", f"*{message.note}*"]
    return "\n".join(lines).rstrip()
