from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from tf_magics import Chat, Reply
from tf_magics.client import ModelInfo
from tf_magics.client.http import Client
from tf_magics.errors import (
    AuthenticationError,
    ConfigurationError,
    IncompleteStreamError,
    ServerError,
    StreamInterrupted,
)
from tf_magics.events import ContentDelta, Event, Retrying
from tf_testing.fake_openai import Disconnect, ErrorReply, FakeOpenAI, MidStreamError, TextReply

T = TypeVar("T")


def _chat(server: FakeOpenAI, **settings: Any) -> Chat:
    return Chat(base_url=server.base_url, model="fake-model", max_retries=0, **settings)


def test_two_turn_conversation_resends_history_with_system_first(fake_server: FakeOpenAI) -> None:
    chat = _chat(fake_server, temperature=0.3, seed=7)
    chat.system = "You are terse."
    fake_server.enqueue(TextReply("Paris."), TextReply("About 2 million."))
    first = chat.ask("Capital of France?")
    second = chat.ask("Its population?")
    assert (first.text, second.text) == ("Paris.", "About 2 million.")
    sent = fake_server.chat_requests[1]
    assert sent["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "Its population?"},
    ]
    assert sent["temperature"] == 0.3 and sent["seed"] == 7 and sent["stream"] is True
    for unset in ("top_p", "stop", "presence_penalty", "frequency_penalty"):
        assert unset not in sent


def test_non_streaming_request(fake_server: FakeOpenAI) -> None:
    chat = _chat(fake_server, stream=False)
    reply = chat.ask("hi")
    assert reply.text == "Hello from fake-model."
    assert fake_server.chat_requests[0]["stream"] is False
    assert "stream_options" not in fake_server.chat_requests[0]
    assert reply.usage is not None and reply.usage.completion_tokens
    assert reply.time_to_first_token is not None  # the whole reply is the first thing seen


def test_events_reach_the_callback_in_order(fake_server: FakeOpenAI) -> None:
    fake_server.enqueue(TextReply(["a", "b", "c"]))
    events: list[Event] = []
    _chat(fake_server).ask("x", on_event=events.append)
    assert "".join(e.text for e in events if isinstance(e, ContentDelta)) == "abc"


def test_usage_and_timing_on_the_reply(fake_server: FakeOpenAI) -> None:
    fake_server.enqueue(TextReply(["one ", "two"], first_token_delay=0.05))
    reply = _chat(fake_server).ask("x")
    assert reply.usage is not None and reply.usage.prompt_tokens
    assert reply.time_to_first_token is not None and reply.time_to_first_token >= 0.04
    assert reply.elapsed >= reply.time_to_first_token
    assert reply.model == "fake-model"


def test_one_off_question_neither_sends_nor_changes_history(fake_server: FakeOpenAI) -> None:
    chat = _chat(fake_server)
    chat.system = "sys"
    chat.ask("remembered")
    chat.ask("one-off", history=False)
    assert fake_server.chat_requests[1]["messages"] == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "one-off"},
    ]
    assert [m.content for m in chat.conversation.messages][1:] == [
        "remembered",
        "Hello from fake-model.",
    ]


def test_await_aask_works_from_async_code(fake_server: FakeOpenAI) -> None:
    chat = _chat(fake_server)

    async def main() -> str:
        reply = await chat.aask("async hello")
        return reply.text

    assert asyncio.run(main()) == "Hello from fake-model."
    assert chat.ask("and sync after").text  # the sync path still works afterwards


def test_retry_replaces_the_last_answer(fake_server: FakeOpenAI) -> None:
    chat = _chat(fake_server)
    fake_server.enqueue(TextReply("first"), TextReply("second"))
    chat.ask("question")
    reply = chat.retry(temperature=1.0)
    assert reply.text == "second"
    assert [m.content for m in chat.conversation.messages] == ["question", "second"]
    assert fake_server.chat_requests[1]["temperature"] == 1.0
    assert fake_server.chat_requests[1]["messages"] == [{"role": "user", "content": "question"}]


def test_a_failed_retry_puts_the_old_turn_back(fake_server: FakeOpenAI) -> None:
    chat = _chat(fake_server)
    fake_server.enqueue(TextReply("keep me"), ErrorReply(500, {"error": {"message": "boom"}}))
    chat.ask("question")
    with pytest.raises(ServerError):
        chat.retry()
    assert [m.content for m in chat.conversation.messages] == ["question", "keep me"]


# -- the async API (await in a cell or a script) --------------------------------------------------


def run_async(chat: Chat, coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coroutine)``, then close the connection pool the chat opened on that loop.

    ``asyncio.run`` closes its event loop but cannot know about the client's pool for it.
    """

    async def main() -> T:
        try:
            return await coroutine
        finally:
            await chat.client.aclose()

    return asyncio.run(main())


def test_aretry_replaces_the_last_answer(fake_server: FakeOpenAI) -> None:
    chat = _chat(fake_server)
    fake_server.enqueue(TextReply("first"), TextReply("second"))
    chat.ask("question")
    reply = run_async(chat, chat.aretry(temperature=1.0))
    assert reply.text == "second"
    assert chat.last_reply is reply
    assert [m.content for m in chat.conversation.messages] == ["question", "second"]
    assert fake_server.chat_requests[1]["temperature"] == 1.0
    assert fake_server.chat_requests[1]["messages"] == [{"role": "user", "content": "question"}]


def test_a_failed_aretry_puts_the_old_turn_back(fake_server: FakeOpenAI) -> None:
    chat = _chat(fake_server)
    fake_server.enqueue(TextReply("keep me"), ErrorReply(500, {"error": {"message": "boom"}}))
    chat.ask("question")
    with pytest.raises(ServerError):
        run_async(chat, chat.aretry())
    assert [m.content for m in chat.conversation.messages] == ["question", "keep me"]


def test_an_aretry_cut_mid_stream_keeps_the_old_answer_and_then_the_partial_one(
    fake_server: FakeOpenAI,
) -> None:
    chat = _chat(fake_server)
    fake_server.enqueue(TextReply("keep me"), Disconnect(after_tokens=2, text="one two three"))
    chat.ask("question")
    with pytest.raises(IncompleteStreamError):
        run_async(chat, chat.aretry())
    messages = chat.conversation.messages
    assert [m.content for m in messages] == ["question", "keep me", "question", "one two"]
    assert not messages[1].partial and messages[3].partial


def test_aretry_with_nothing_to_retry_says_so_and_sends_nothing(fake_server: FakeOpenAI) -> None:
    chat = _chat(fake_server)
    with pytest.raises(ConfigurationError, match="no previous question"):
        run_async(chat, chat.aretry())
    assert fake_server.requests == []


def test_amodels_lists_the_servers_models(fake_server: FakeOpenAI) -> None:
    fake_server.models = ["small", {"id": "large", "owned_by": "lab", "context_length": 8192}]
    chat = _chat(fake_server)
    models = run_async(chat, chat.amodels())
    assert models == [
        ModelInfo("small", owned_by="fake-openai"),
        ModelInfo("large", owned_by="lab", context_length=8192),
    ]
    (request,) = fake_server.requests
    assert (request.method, request.path) == ("GET", "/v1/models")


def test_amodels_answer_is_the_default_model_of_the_next_question(fake_server: FakeOpenAI) -> None:
    fake_server.models = ["small", "large"]
    chat = Chat(base_url=fake_server.base_url, max_retries=0)  # no model set
    run_async(chat, chat.amodels())
    chat.ask("hi")
    assert fake_server.chat_requests[0]["model"] == "small"
    assert [r.path for r in fake_server.requests] == ["/v1/models", "/v1/chat/completions"]


def test_deprecated_send_still_answers_and_warns_to_use_aask(fake_server: FakeOpenAI) -> None:
    chat = _chat(fake_server)
    fake_server.enqueue(TextReply("still here"))

    async def old_code() -> Reply:
        return await chat.send("hello", temperature=0.5)  # aask's parameters still pass through

    with pytest.warns(DeprecationWarning, match=r"aask") as warned:
        reply = run_async(chat, old_code())
    assert reply.text == "still here"
    assert fake_server.chat_requests[0]["messages"] == [{"role": "user", "content": "hello"}]
    assert fake_server.chat_requests[0]["temperature"] == 0.5
    assert [w.filename for w in warned] == [__file__]  # it points at the caller's line


def test_an_error_before_any_token_rolls_the_question_back(fake_server: FakeOpenAI) -> None:
    chat = _chat(fake_server)
    fake_server.enqueue(ErrorReply(401, {"error": {"message": "bad key"}}))
    with pytest.raises(AuthenticationError) as caught:
        chat.ask("hello")
    assert "TOKEN_FACTORY_API_KEY" in str(caught.value)
    assert chat.conversation.messages == []
    chat.ask("hello")  # running the cell again sends the question once
    assert [m["content"] for m in fake_server.chat_requests[-1]["messages"]] == ["hello"]


def test_a_cut_stream_keeps_the_partial_reply_marked(fake_server: FakeOpenAI) -> None:
    chat = _chat(fake_server)
    fake_server.enqueue(Disconnect(after_tokens=3, text="one two three four five"))
    with pytest.raises(IncompleteStreamError) as caught:
        chat.ask("tell me")
    partial = caught.value.partial
    assert partial is not None and partial.content.startswith("one")
    assert caught.value.reply is not None and caught.value.reply.stopped == "error"
    last = chat.conversation.messages[-1]
    assert last.role == "assistant" and last.partial and last.content == partial.content
    assert last.note is not None and "incomplete" in last.note
    chat.ask("and then?")  # the conversation still works
    assert fake_server.chat_requests[-1]["messages"][1]["content"] == partial.content


def test_mid_stream_error_keeps_the_partial(fake_server: FakeOpenAI) -> None:
    chat = _chat(fake_server)
    fake_server.enqueue(
        MidStreamError(after_tokens=2, error={"message": "overloaded", "type": "server_error"})
    )
    with pytest.raises(Exception, match="overloaded") as caught:
        chat.ask("x")
    assert chat.conversation.messages[-1].partial
    assert caught.value.reply is not None  # type: ignore[attr-defined]


def test_retry_wait_is_reported_as_an_event(fake_server: FakeOpenAI) -> None:
    chat = Chat(base_url=fake_server.base_url, model="m", max_retries=1)
    fake_server.enqueue(ErrorReply(503, {"error": {"message": "busy"}}, {"retry-after-ms": "10"}))
    events: list[Event] = []
    assert chat.ask("x", on_event=events.append).text
    retries = [e for e in events if isinstance(e, Retrying)]
    assert len(retries) == 1 and retries[0].delay == pytest.approx(0.01)


def test_ctrl_c_stops_the_stream_and_keeps_the_partial_reply(fake_server: FakeOpenAI) -> None:
    words = [f"w{n} " for n in range(200)]
    fake_server.enqueue(TextReply(words, tokens_per_second=40))
    chat = _chat(fake_server)
    seen: list[str] = []

    def interrupt_after_a_few_tokens() -> None:
        deadline = time.monotonic() + 10
        while len(seen) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    def collect(event: Event) -> None:
        if isinstance(event, ContentDelta):
            seen.append(event.text)

    threading.Thread(target=interrupt_after_a_few_tokens, daemon=True).start()
    with pytest.raises(StreamInterrupted) as caught:
        chat.ask("count", on_event=collect)
    kept = chat.conversation.messages[-1]
    assert "w199" not in kept.content  # stopped at once, not at the end of the stream
    assert kept.partial and kept.content.startswith("w0 w1")
    assert kept.note == "interrupted by the user"
    assert "partial reply is kept" in str(caught.value)
    assert chat.last_reply is not None and chat.last_reply.stopped == "interrupted"
    fake_server.enqueue(TextReply("next works"))
    assert chat.ask("next").text == "next works"


def test_no_endpoint_and_no_local_extra_lists_the_ways_forward(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tf_magics import local

    monkeypatch.setattr(local, "local_extra_installed", lambda **_: False)
    with pytest.raises(ConfigurationError) as caught:
        Chat().ask("hi")
    message = str(caught.value)
    assert "TOKEN_FACTORY_API_KEY" in message and "tf_magics[local]" in message
    assert "base_url" in message or "BASE_URL" in message


def test_model_is_picked_from_the_server_when_unset_and_said_once(fake_server: FakeOpenAI) -> None:
    chat = Chat(base_url=fake_server.base_url)
    first = chat.ask("a")
    second = chat.ask("b")
    assert fake_server.chat_requests[0]["model"] == "fake-model"
    assert any("first model" in note for note in first.notes)
    assert not second.notes


def test_history_limit_trims_old_turns_and_says_so(fake_server: FakeOpenAI) -> None:
    chat = _chat(fake_server, history_max_turns=2)
    for n in range(3):
        reply = chat.ask(f"q{n}")
    sent = [m["content"] for m in fake_server.chat_requests[-1]["messages"]]
    assert sent == ["q1", "Hello from fake-model.", "q2"]
    assert any("Dropped the oldest turn" in note for note in reply.notes)


def test_settings_object_is_shared_between_chats(fake_server: FakeOpenAI) -> None:
    first = _chat(fake_server)
    second = Chat(settings=first.settings, name="other")
    first.settings.temperature = 0.9
    second.ask("x")
    assert fake_server.chat_requests[-1]["temperature"] == 0.9
    with pytest.raises(ConfigurationError, match="either"):
        Chat(settings=first.settings, temperature=0.1)


# -- closing -------------------------------------------------------------------------------------


def open_pools(client: Client) -> int:
    return sum(not pool.is_closed for pools in client._pools.values() for pool in pools.values())


def test_a_chat_used_as_a_context_manager_closes_its_connections(fake_server: FakeOpenAI) -> None:
    client = Client()
    with Chat(base_url=fake_server.base_url, client=client) as chat:
        chat.ask("hi")
        assert any(
            not pool.is_closed for pools in client._pools.values() for pool in pools.values()
        )
    assert all(pool.is_closed for pools in client._pools.values() for pool in pools.values())


def test_async_with_closes_the_pool_of_its_loop(fake_server: FakeOpenAI) -> None:
    client = Client()

    async def main() -> None:
        async with Chat(base_url=fake_server.base_url, client=client) as chat:
            await chat.aask("hi")
        assert client._pools == {}  # closing a loop's pools forgets them

    asyncio.run(main())
