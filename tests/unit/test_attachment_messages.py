"""Attachments in the history: how they go on the wire, count, load and export."""

from __future__ import annotations

from tf_magics import Conversation, Message
from tf_magics.conversation import estimate_tokens

TEXT = {"type": "text", "text": "Attachment `x` (int):\n3"}
IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}


def test_text_attachments_go_as_one_string_and_images_as_parts() -> None:
    # A server that cannot read images may reject a list of parts even when it is all text.
    assert Message("user", "q", parts=[TEXT]).to_wire() == {
        "role": "user",
        "content": "Attachment `x` (int):\n3\n\nq",
    }
    assert Message("user", "q", parts=[TEXT, IMAGE]).to_wire()["content"] == [
        TEXT,
        IMAGE,
        {"type": "text", "text": "q"},
    ]


def test_attachments_count_in_the_size_of_the_history() -> None:
    plain = estimate_tokens(Message("user", "q"))
    assert estimate_tokens(Message("user", "q", parts=[TEXT])) > plain
    assert estimate_tokens(Message("user", "q", parts=[IMAGE])) >= plain + 765


def test_saved_text_parts_load_back_as_parts_in_order() -> None:
    conversation = Conversation()
    conversation.add_user("q", [TEXT, IMAGE])
    again = Conversation.from_json(conversation.to_json())
    assert again.messages[0].parts == [TEXT, IMAGE]
    assert again.to_wire() == conversation.to_wire()
    markdown = again.to_markdown()
    assert "*Attachment `x` (int):*" in markdown and "*[an image]*" in markdown
