"""Dry runs show what would be sent and send nothing; comparisons ask every variant at once."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from typing import Any

import pytest

from tf_magics import Chat, Comparison, ContentDelta, VariantEvent
from tf_magics.errors import (
    ConfigurationError,
    EmptyStreamError,
    ImagesNotSupportedError,
    StreamInterrupted,
)
from tf_magics.events import Event
from tf_testing.fake_openai import (
    Dynamic,
    ErrorReply,
    FakeOpenAI,
    RawReply,
    RecordedRequest,
    TextReply,
)


def _chat(server: FakeOpenAI, **settings: Any) -> Chat:
    return Chat(base_url=server.base_url, model="fake-model", max_retries=0, **settings)


def weather(city: str) -> str:
    """The weather in a city."""
    return "sunny"


# -- dry runs --------------------------------------------------------------------------------------


def test_a_preview_is_the_body_that_ask_then_sends(fake_server: FakeOpenAI) -> None:
    chat = _chat(fake_server, temperature=0.2, seed=3)
    chat.system = "Be brief."
    chat.ask("first")
    before = chat.conversation.to_dict()
    preview = chat.preview(
        "second", tools=[weather], tool_choice="weather", context={"n": [1, 2]}, top_p=0.5
    )
    assert len(fake_server.requests) == 1  # nothing was sent
    assert chat.conversation.to_dict() == before  # and nothing changed
    chat.ask("second", tools=[weather], tool_choice="weather", context={"n": [1, 2]}, top_p=0.5)
    assert preview.body == fake_server.chat_requests[-1]
    assert preview.url == f"{fake_server.base_url}/chat/completions"
    assert [t["function"]["name"] for t in preview.tools] == ["weather"]
    assert preview.sampling["temperature"] == 0.2 and preview.sampling["top_p"] == 0.5
    assert preview.prompt_tokens > 0 and preview.cost is None
    assert "Dry run: nothing was sent." in str(preview) and "[3] user" in str(preview)


def test_a_preview_without_a_model_asks_no_server(fake_server: FakeOpenAI) -> None:
    chat = Chat(base_url=fake_server.base_url, max_retries=0)
    preview = chat.preview("hi")
    assert fake_server.requests == []
    assert "model" not in preview.body
    assert any("GET /models" in note for note in preview.notes)


def test_a_preview_of_the_local_model_starts_nothing(fake_server: FakeOpenAI) -> None:
    from tf_magics import local

    if local.local_server_running():
        pytest.skip("the local server is already running in this process")
    preview = Chat(base_url="local").preview("hi", context=[_png()])
    assert not local.local_server_running()
    assert preview.body["model"] == "smollm2"
    assert any("would be started" in note for note in preview.notes)
    assert any("takes no images" in note for note in preview.notes)


def test_a_preview_of_a_one_off_question_sends_no_history(fake_server: FakeOpenAI) -> None:
    chat = _chat(fake_server)
    chat.ask("remember this")
    preview = chat.preview("one-off", history=False)
    assert [m["content"] for m in preview.messages] == ["one-off"]


# -- images ----------------------------------------------------------------------------------------


def _png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (32, 32)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_figure_goes_as_an_image_part_and_a_text_model_refuses_it_in_one_line() -> None:
    with FakeOpenAI(vision=False) as server:
        chat = _chat(server)
        with pytest.raises(ImagesNotSupportedError) as caught:
            chat.ask("What is in the picture?", context={"chart": _png()})
        message = str(caught.value)
        assert "The model fake-model does not take images" in message
        assert "`chart`" in message and "HTTP 400" in message and "vision model" in message
        assert "\n" not in message
        content = server.chat_requests[0]["messages"][0]["content"]
        assert [part["type"] for part in content] == ["text", "image_url", "text"]
        assert len(chat.conversation) == 0  # nothing came back: the question is not kept
        server.vision = True
        assert chat.ask("What is in the picture?", context={"chart": _png()}).text
        chat.close()


def test_an_empty_stream_for_a_request_with_an_image_is_said_to_be_the_image(
    fake_server: FakeOpenAI,
) -> None:
    # What llama-cpp-python without a vision model does when the request is streamed.
    fake_server.enqueue(RawReply(), RawReply())
    chat = _chat(fake_server)
    with pytest.raises(ImagesNotSupportedError, match="sent nothing back for the request with"):
        chat.ask("What is it?", context={"pic": _png()})
    with pytest.raises(EmptyStreamError):  # without an image, the usual line
        chat.ask("What is it?")


def test_a_retry_sends_the_attachments_again_as_they_were(fake_server: FakeOpenAI) -> None:
    chat = _chat(fake_server)
    chat.ask("look", context={"pic": _png(), "data": {"a": 1}})
    first = fake_server.chat_requests[-1]["messages"]
    chat.retry()
    assert fake_server.chat_requests[-1]["messages"] == first


def test_attachments_survive_a_save_and_a_load(fake_server: FakeOpenAI, tmp_path: Any) -> None:
    from tf_magics import Conversation

    chat = _chat(fake_server)
    chat.ask("look", context={"pic": _png(), "data": {"a": 1}})
    chat.ask("text only", context={"note": "plain text"})
    path = chat.conversation.save(tmp_path / "chat.json")
    loaded = Conversation.load(path)
    assert loaded.to_wire() == chat.conversation.to_wire()
    assert loaded.to_wire()[2]["content"].startswith("Attachment `note` (str, 10 characters):")
    assert "Attachment `data`" in loaded.to_markdown()


# -- comparisons -----------------------------------------------------------------------------------


def test_a_comparison_asks_every_variant_at_once_and_changes_no_history(
    fake_server: FakeOpenAI,
) -> None:
    # Each request waits until all three have arrived: only concurrent requests get through.
    arrived = threading.Barrier(3, timeout=20)

    def answer(request: RecordedRequest) -> TextReply:
        arrived.wait()
        return TextReply(f"at t={request.json['temperature']}")

    chat = _chat(fake_server)
    chat.ask("first question")
    fake_server.default = Dynamic(answer)
    history = chat.conversation.to_wire()
    events: list[Event] = []
    comparison = chat.compare(
        "Say hi",
        [{"temperature": 0}, {"temperature": 0.7}, {"temperature": 1.4}],
        on_event=events.append,
    )
    assert [v.text for v in comparison.variants] == ["at t=0.0", "at t=0.7", "at t=1.4"]
    assert [v.label for v in comparison.variants] == ["t=0", "t=0.7", "t=1.4"]
    assert chat.conversation.to_wire() == history
    requests = fake_server.chat_requests[-3:]
    assert all(r["messages"][:-1] == history for r in requests)  # the history is sent
    assert sorted(r["temperature"] for r in requests) == [0, 0.7, 1.4]
    tagged = {e.variant for e in events if isinstance(e, VariantEvent)}
    assert tagged == {0, 1, 2}
    assert chat.last_comparison is comparison


def test_keep_puts_one_variant_into_the_history_once(fake_server: FakeOpenAI) -> None:
    fake_server.default = Dynamic(lambda r: TextReply(f"I am {r.json['model']}"))
    chat = _chat(fake_server)
    comparison = chat.compare("Who are you?", [{"model": "a"}, {"model": "b"}])
    assert comparison.keep(2).text == "I am b"
    assert [m["content"] for m in chat.history] == ["Who are you?", "I am b"]
    with pytest.raises(ConfigurationError, match="already kept"):
        comparison.keep(1)
    fresh = chat.compare("Again?", [{"model": "a"}, {"model": "b"}])
    with pytest.raises(ConfigurationError, match="no variant 3"):
        fresh.keep(3)
    chat.ask("something else")
    with pytest.raises(ConfigurationError, match="changed since the comparison"):
        fresh.keep(1)


def test_one_failing_variant_does_not_hide_the_others(fake_server: FakeOpenAI) -> None:
    def answer(request: RecordedRequest) -> Any:
        if request.json["model"] == "broken":
            return ErrorReply(404, {"error": {"message": "model broken not found"}})
        return TextReply("fine")

    fake_server.default = Dynamic(answer)
    comparison = _chat(fake_server).compare("hi", [{"model": "ok"}, {"model": "broken"}])
    ok, broken = comparison.variants
    assert ok.text == "fine" and ok.error is None
    assert broken.error is not None and "not found" in str(broken.error)
    with pytest.raises(ConfigurationError, match="no reply to keep"):
        comparison.keep(2)


def test_a_comparison_needs_two_to_eight_valid_variants(fake_server: FakeOpenAI) -> None:
    chat = _chat(fake_server)
    with pytest.raises(ConfigurationError, match="2 to 8 variants"):
        chat.compare("hi", [{"temperature": 0}])
    with pytest.raises(ConfigurationError, match="temperature"):
        chat.compare("hi", [{"temperature": 0}, {"temperature": 9}])
    assert fake_server.requests == []


def test_ctrl_c_stops_every_variant_and_keeps_what_arrived(fake_server: FakeOpenAI) -> None:
    fake_server.default = TextReply([f"w{n} " for n in range(300)], tokens_per_second=40)
    chat = _chat(fake_server)
    seen: list[int] = []

    def collect(event: Event) -> None:
        if isinstance(event, VariantEvent) and isinstance(event.event, ContentDelta):
            seen.append(event.variant)

    def interrupt() -> None:
        deadline = time.monotonic() + 10
        while len(set(seen)) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    with pytest.raises(StreamInterrupted, match="every variant was stopped"):
        chat.compare("count", [{"temperature": 0}, {"temperature": 1}], on_event=collect)
    comparison = chat.last_comparison
    assert isinstance(comparison, Comparison)
    assert all(v.text.startswith("w0 ") and "w299" not in v.text for v in comparison.variants)
    assert chat.history == []
    assert chat.ask("next").text  # the conversation is free again


def test_the_async_api_attaches_and_compares(fake_server: FakeOpenAI) -> None:
    async def main() -> tuple[Any, Comparison]:
        chat = _chat(fake_server)
        reply = await chat.aask("What is n?", context={"n": 42})
        comparison = await chat.acompare("Again?", [{"temperature": 0}, {"temperature": 1}])
        await chat.aclose()
        return reply, comparison

    reply, comparison = asyncio.run(main())
    assert [a.name for a in reply.attachments] == ["n"]
    assert fake_server.chat_requests[0]["messages"][0]["content"].startswith("Attachment `n`")
    assert [v.text for v in comparison.variants] == ["Hello from fake-model."] * 2
    assert sorted(r["temperature"] for r in fake_server.chat_requests[1:]) == [0, 1]
