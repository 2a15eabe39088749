"""A conversation as a file: the JSON form it is saved in, read back whole or not at all.

Saved conversations are shared (teaching notebooks are committed and passed around), so a file
is untrusted input: :func:`read` checks every message before anything is built and names the
first problem in one line, so a bad file never half-loads and never breaks a later request.
The Markdown export lives here too (:func:`to_markdown`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

from tf_magics.types import Message

C = TypeVar("C", bound="SavedForm")

__all__ = ["FORMAT", "FORMAT_VERSION", "SavedForm", "dump", "parse", "read", "to_markdown"]

FORMAT = "tf_magics.conversation"
FORMAT_VERSION = 1


class SavedForm:
    """A conversation's file forms: JSON (a dict, text, a file) and a Markdown export.

    The conversation class inherits these; they need only its ``name`` and ``messages``.
    """

    name: str

    def __init__(self, *, name: str, messages: list[Message]) -> None:
        raise NotImplementedError  # provided by the conversation

    @property
    def messages(self) -> list[Message]:
        """All messages, system first."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """A lossless JSON-compatible form (see :meth:`from_dict`)."""
        return dump(self.name, self.messages)

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any] | list[Any]) -> C:
        """Rebuild a conversation from :meth:`to_dict` output or an OpenAI ``messages`` list.

        Raises
        ------
        ValueError
            Naming the first problem, when ``data`` is not a valid conversation.
        """
        name, messages = read(data)
        return cls(name=name, messages=messages)

    def to_json(self, *, indent: int | None = 2) -> str:
        """The conversation as JSON text."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)

    @classmethod
    def from_json(cls: type[C], text: str) -> C:
        """Rebuild a conversation from :meth:`to_json` output (see :meth:`from_dict`)."""
        return cls.from_dict(parse(text))

    def save(self, path: str | Path) -> Path:
        """Write the conversation as JSON (no API key or setting is ever part of it)."""
        target = Path(path)
        target.write_text(self.to_json() + "\n", encoding="utf-8")
        return target

    @classmethod
    def load(cls: type[C], path: str | Path) -> C:
        """Read a conversation saved with :meth:`save` (all of it, or nothing)."""
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    def to_markdown(self) -> str:
        """The conversation as a readable Markdown document."""
        return to_markdown(self.name, self.messages)


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
        If it is not JSON, or nests too deeply to be a conversation.
    """
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("the file nests too deeply to be a conversation") from None


def read(data: Any) -> tuple[str, list[Message]]:
    """The name and messages of a saved conversation (or of an OpenAI ``messages`` list).

    Every message is checked (:meth:`~tf_magics.Message.from_dict`), then the rules a request
    needs: at most one system message, at index 0, and each tool result answering a call of the
    assistant message before it. Nothing is returned unless all of it is valid.

    Raises
    ------
    ValueError
        Naming the first problem, e.g. ``messages[3].tool_call_id must be a string``.
    """
    if isinstance(data, list):
        data = {"messages": data}
    if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
        raise ValueError("expected a saved conversation: an object with a 'messages' list")
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise ValueError("the conversation's name must be a string")
    messages = [
        Message.from_dict(item, where=f"messages[{position}]")
        for position, item in enumerate(data["messages"])
    ]
    _check_order(messages)
    return name or "default", messages


def _check_order(messages: list[Message]) -> None:
    """The rules between messages that a server enforces on every request."""
    calls: set[str] = set()
    for position, message in enumerate(messages):
        if message.role == "system" and position != 0:
            raise ValueError(
                f"messages[{position}] is a second system message, or not the first message: "
                "a conversation has one system prompt, at index 0"
            )
        if message.role == "assistant":
            calls = {call.id for call in message.tool_calls}
        elif message.role == "tool":
            if message.tool_call_id not in calls:
                raise ValueError(
                    f"messages[{position}] answers tool call {message.tool_call_id!r}, which "
                    "the assistant message before it did not make"
                )
        else:
            calls = set()


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


def _part_markdown(part: dict[str, Any]) -> list[str]:
    """An attachment: its label line, then its text fenced (an image is named, not embedded)."""
    if part.get("type") != "text":
        return ["*[an image]*"]
    label, _, body = str(part.get("text", "")).partition("\n")
    return [f"*{label}*", "", _fence(body)] if body else [f"*{label}*"]


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
    for part in message.parts:
        lines += [*_part_markdown(part), ""]
    if message.role == "tool":
        lines.append(_fence(message.content))
    elif message.content:
        lines.append(message.content)
    for call in message.tool_calls:
        lines += ["", f"Tool call `{call.name}`:", "", _fence(call.arguments or "{}", "json")]
    if message.note:
        lines += ["", f"*{message.note}*"]
    return "\n".join(lines).rstrip()
