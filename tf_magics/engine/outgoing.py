"""What leaves the machine: secrets masked in every outgoing message, images checked.

Just before each request, every message that will be sent (the system prompt, the question and
its attachments, tool results, the history) goes through the turn's
:class:`~tf_magics._secrets.SecretScanner`, in place: the history keeps exactly what was sent, and
the user is told what was masked and where (never the value). The same functions build the
messages of a dry run (:meth:`tf_magics.Chat.preview`), on a copy.

Images are checked too: the built-in demo model takes none (refused before sending), and a
server's refusal of a request that carried images becomes one line naming the model.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from tf_magics._secrets import SecretScanner
from tf_magics.attachment import Attachment
from tf_magics.conversation import Conversation, TrimReport
from tf_magics.errors import APIStatusError, EmptyStreamError, ImagesNotSupportedError
from tf_magics.options import LOCAL_SOURCE
from tf_magics.types import Message

__all__ = [
    "Redactions",
    "empty_image_reply",
    "has_images",
    "image_failure",
    "image_refusal",
    "local_model_refuses_images",
    "messages_to_send",
    "redact_question",
    "refuse_images_locally",
    "scan_conversation",
    "trim_before_question",
]

_IMAGE_WORDS = re.compile(
    r"image|vision|multimodal|multi-modal|content type|content part|\blist\b", re.IGNORECASE
)
_REFUSAL_STATUSES = (400, 415, 422, 500)


def trim_before_question(
    conversation: Conversation, limit: tuple[int | None, int | None]
) -> TrimReport | None:
    """Trim the history to ``(max_turns, max_tokens)`` before a question is added to it."""
    max_turns, max_tokens = limit
    if max_turns is None and max_tokens is None:
        return None
    # The new question is not in the history yet: leave room for it.
    report = conversation.trim(
        max_tokens=max_tokens,
        max_turns=None if max_turns is None else max(0, max_turns - 1),
        keep_last=0,
    )
    return report if report else None


class Redactions:
    """Which secrets were masked where (their names only), and what is still to be said."""

    def __init__(self) -> None:
        self.places: dict[str, list[str]] = {}
        self._said: set[tuple[str, str]] = set()

    def __bool__(self) -> bool:
        return bool(self.places)

    def add(self, names: list[str], place: str) -> None:
        """Record that these secrets were found in ``place`` (``"the question"``)."""
        for name in names:
            places = self.places.setdefault(name, [])
            if place not in places:
                places.append(place)

    def names(self) -> list[str]:
        """The names of every secret masked so far."""
        return list(self.places)

    def unsaid(self) -> str | None:
        """One line about the masks not reported yet (``None`` when there are none)."""
        new = [
            (name, place)
            for name, places in self.places.items()
            for place in places
            if (name, place) not in self._said
        ]
        if not new:
            return None
        self._said.update(new)
        by_name: dict[str, list[str]] = {}
        for name, place in new:
            by_name.setdefault(name, []).append(place)
        found = "; ".join(f"{name} (in {', '.join(places)})" for name, places in by_name.items())
        return (
            f"🔒 Secrets masked before sending: {found}. Each was replaced by "
            "[redacted: NAME]; the history keeps the masked text."
        )


def redact_question(
    text: str, attachments: list[Attachment], scanner: SecretScanner, redactions: Redactions
) -> tuple[str, list[Attachment]]:
    """The question and its attachments with every secret masked (recorded in ``redactions``)."""
    text, names = scanner.redact(text)
    redactions.add(names, "the question")
    cleaned = []
    for attachment in attachments:
        # Masked while it was summarised (before any cut), or now.
        redactions.add(list(attachment.redacted), f"attachment `{attachment.name}`")
        attachment, names = attachment.redact(scanner)
        redactions.add(names, f"attachment `{attachment.name}`")
        cleaned.append(attachment)
    return text, cleaned


def _place(message: Message) -> str:
    if message.role == "system":
        return "the system prompt"
    if message.role == "tool":
        return f"the result of {message.name or 'a tool'}"
    if message.role == "assistant":
        return "an earlier reply"
    return "an earlier question"


def _redact_message(message: Message, scanner: SecretScanner) -> list[str]:
    """Mask the secrets in one message, in place; the names found."""
    found: list[str] = []
    message.content, names = scanner.redact(message.content)
    found += names
    parts = []
    for part in message.parts:
        if part.get("type") == "text":
            text, names = scanner.redact(str(part.get("text", "")))
            found += names
            part = {**part, "text": text} if names else part
        parts.append(part)
    message.parts = parts
    calls = []
    for call in message.tool_calls:
        arguments, names = scanner.redact(call.arguments)
        found += names
        calls.append(replace(call, arguments=arguments) if names else call)
    message.tool_calls = calls
    return found


def scan_conversation(
    conversation: Conversation, scanner: SecretScanner, redactions: Redactions
) -> None:
    """Mask every secret in the messages about to be sent, in place (the history keeps it)."""
    if not scanner:
        return
    for message in conversation.messages:
        names = _redact_message(message, scanner)
        if names:
            redactions.add(names, _place(message))


def has_images(messages: list[dict[str, Any]]) -> bool:
    """Whether any message to send carries an image part."""
    return any(
        isinstance(m.get("content"), list)
        and any(isinstance(p, dict) and p.get("type") == "image_url" for p in m["content"])
        for m in messages
    )


def _image_owners(conversation: Conversation) -> str:
    """The attachments that carry images, in words (``"`fig` and `photo`"``)."""
    names = [
        f"`{attachment.name}`"
        for message in conversation.messages
        for attachment in Attachment.from_parts(message.parts)
        if attachment.images
    ]
    if not names:
        return "an image"
    return ("the image " if len(names) == 1 else "the images ") + " and ".join(names)


_HINT = (
    "Use a model that takes images (a vision model, -m/--model), or attach the data behind the "
    "picture instead; if the image is in an earlier turn, undo that turn (%chat undo / "
    "chat.undo())."
)


def local_model_refuses_images(model: str, conversation: Conversation) -> ImagesNotSupportedError:
    """The error for images sent to the built-in demo model (which reads text only)."""
    return ImagesNotSupportedError(
        f"The built-in demo model ({model}) does not take images: "
        f"{_image_owners(conversation)} was not sent.",
        hint=_HINT,
    )


def empty_image_reply(model: str | None, conversation: Conversation) -> ImagesNotSupportedError:
    """The error for an empty reply to a request with images (what a text-only server may do)."""
    return ImagesNotSupportedError(
        f"The model {model or '(server default)'} sent nothing back for the request with "
        f"{_image_owners(conversation)}: it most likely does not take images.",
        hint=_HINT,
    )


def image_refusal(
    error: APIStatusError, model: str | None, conversation: Conversation
) -> ImagesNotSupportedError | None:
    """The clear error for a server's refusal of a request with images, if that is what it is."""
    if error.status_code not in _REFUSAL_STATUSES or isinstance(error, ImagesNotSupportedError):
        return None
    said = error.message.split(": ", 1)[-1]  # after "<base URL> answered 400 Bad Request"
    if not _IMAGE_WORDS.search(said):
        return None
    refused = ImagesNotSupportedError(
        f"The model {model or '(server default)'} does not take images: the server refused the "
        f"request with {_image_owners(conversation)} (HTTP {error.status_code}: "
        f"{said.rstrip('.')}).",
        status_code=error.status_code,
        code=error.code,
        error_type=error.error_type,
        body=error.body,
        hint=_HINT,
    )
    refused.partial = error.partial
    return refused


def messages_to_send(
    conversation: Conversation,
    scanner: SecretScanner,
    redactions: Redactions,
    note: Callable[[str, str], None],
) -> list[dict[str, Any]]:
    """The messages of the next request, every secret masked in the history first (said once)."""
    scan_conversation(conversation, scanner, redactions)
    said = redactions.unsaid()
    if said is not None:
        note(said, "warning")
    return conversation.to_wire()


def refuse_images_locally(
    source: str | None, model: str | None, conversation: Conversation
) -> None:
    """The built-in demo model reads text only: say so before sending an image to it.

    Raises
    ------
    ImagesNotSupportedError
        When the request would go to the built-in model with an image in it.
    """
    if source == LOCAL_SOURCE and has_images(conversation.to_wire()):
        raise local_model_refuses_images(model or "SmolLM2", conversation)


def image_failure(
    error: Exception, messages: list[dict[str, Any]], model: str | None, conversation: Conversation
) -> ImagesNotSupportedError | None:
    """The clear error for a request with images that failed as a text-only server fails it.

    llama-cpp-python without a vision model streams nothing back for an image, or answers a
    status error; ``None`` when the request had no image or failed otherwise.
    """
    if not has_images(messages):
        return None
    if isinstance(error, EmptyStreamError):
        return empty_image_reply(model, conversation)
    if isinstance(error, APIStatusError):
        return image_refusal(error, model, conversation)
    return None
