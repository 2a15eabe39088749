"""Attachments against the real model server (llama-cpp-python serving SmolLM2, text only)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest

from tf_magics import Chat, ToolRegistry
from tf_magics.client.http import Client
from tf_magics.errors import ImagesNotSupportedError
from tf_magics.local import LocalServer

pytestmark = pytest.mark.model


@pytest.fixture
def chat(llama_server: LocalServer) -> Iterator[Chat]:
    made = Chat(
        base_url=llama_server.base_url,
        model=llama_server.model,
        client=Client(),
        tools=ToolRegistry(),
        temperature=0,
        max_tokens=24,
    )
    yield made
    made.close()


def _png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (255, 0, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_dataframe_attachment_reaches_the_real_model(chat: Chat) -> None:
    import pandas as pd

    sales = pd.DataFrame({"store": ["Harbour", "Campus"], "revenue": [49030.8, 24187.8]})
    reply = chat.ask("Which store has the higher revenue? One word.", context={"sales": sales})
    assert reply.text.strip() and reply.finish_reason in ("stop", "length")
    sent: Any = chat.history[0]["content"]
    assert isinstance(sent, str) and sent.startswith("Attachment `sales` (pandas DataFrame")


@pytest.mark.parametrize("stream", [True, False])
def test_an_image_to_a_text_only_server_is_one_clear_line(chat: Chat, stream: bool) -> None:
    # llama-cpp-python without a vision model cannot read a list of content parts: streamed,
    # it sends an empty stream; not streamed, an HTTP 500.
    with pytest.raises(ImagesNotSupportedError) as caught:
        chat.ask("What colour is it?", context={"square": _png()}, stream=stream)
    message = str(caught.value)
    assert message.startswith("The model smollm2 ")
    assert "take images" in message and "the image `square`" in message
    assert ("HTTP 500" in message) is not stream
    assert chat.history == []
    # The conversation still works. (The server drops the connection after the failed stream,
    # and the pool may not have noticed yet: that is what the default retries are for.)
    assert chat.ask("Say hi.").text.strip()


def test_the_built_in_model_refuses_an_image_before_sending_it(
    llama_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tf_magics import local

    # The built-in model, served by the shared test server rather than a second one.
    monkeypatch.setattr(local, "get_local_server", lambda: llama_server)
    with Chat(base_url="local", tools=ToolRegistry(), client=Client()) as local_chat:
        with pytest.raises(ImagesNotSupportedError) as caught:
            local_chat.ask("What is it?", context={"photo": _png()})
        assert "The built-in demo model (smollm2) does not take images" in str(caught.value)
        assert caught.value.status_code is None  # refused here, not by the server
        assert local_chat.history == []
