"""Against a real model server: llama-cpp-python serving SmolLM2-135M (the [local] extra)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import pytest

from tf_magics import Chat, ToolRegistry
from tf_magics.client.http import Client
from tf_magics.events import ContentDelta, Event, Notice
from tf_magics.local import LocalServer
from tf_testing.model_server import require_local_extra

pytestmark = pytest.mark.model


class RecordingTransport(httpx.AsyncBaseTransport):
    """The real network transport, keeping a copy of every request body we send."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.bodies: list[dict[str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            self.bodies.append(json.loads(await request.aread()))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


MakeChat = Callable[..., tuple[Chat, RecordingTransport]]


@pytest.fixture
def make_chat() -> Iterator[MakeChat]:
    """``make_chat(server, **settings)``: a Chat with its own recording client, closed afterwards.

    A pool that is merely dropped leaves its keep-alive sockets open: ``Chat.close`` closes it.
    """
    chats: list[Chat] = []

    def make(server: LocalServer, **settings: Any) -> tuple[Chat, RecordingTransport]:
        transport = RecordingTransport()
        client = Client(transport=transport)
        chats.append(
            Chat(base_url=server.base_url, client=client, tools=ToolRegistry(), **settings)
        )
        return chats[-1], transport

    yield make
    for chat in chats:
        chat.close()


def test_streamed_two_turn_conversation(llama_server: LocalServer, make_chat: MakeChat) -> None:
    chat, sent = make_chat(llama_server, temperature=0, max_tokens=48, seed=1)
    chat.system = "You are a helpful assistant. Answer in one short sentence."
    tokens: list[str] = []

    def collect(event: Event) -> None:
        if isinstance(event, ContentDelta):
            tokens.append(event.text)

    first = chat.ask("What is the capital of France?", on_event=collect)
    assert first.text.strip() and len(tokens) > 1  # it streamed, token by token
    assert first.model  # the model the server says it used
    second = chat.ask("Repeat your previous answer in capital letters.")
    assert second.text.strip()
    body = sent.bodies[-1]
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    assert body["messages"][2]["content"] == first.text  # the second request carries the reply
    assert body["temperature"] == 0 and body["max_tokens"] == 48 and body["seed"] == 1
    assert body["stream"] is True
    for unset in ("top_p", "stop", "presence_penalty", "frequency_penalty"):
        assert unset not in body


def test_non_streaming_call(llama_server: LocalServer, make_chat: MakeChat) -> None:
    chat, sent = make_chat(llama_server, temperature=0, max_tokens=16, stream=False)
    reply = chat.ask("Say hello.")
    assert reply.text.strip()
    assert reply.usage is not None and reply.usage.completion_tokens  # usage when not streaming
    assert sent.bodies[-1]["stream"] is False and "stream_options" not in sent.bodies[-1]


def test_max_tokens_cut_is_reported_as_length(
    llama_server: LocalServer, make_chat: MakeChat
) -> None:
    chat, _ = make_chat(llama_server, temperature=0, max_tokens=4)
    reply = chat.ask("Write a long story about a dragon.")
    assert reply.finish_kind == "length"


def test_models_are_listed(llama_server: LocalServer, make_chat: MakeChat) -> None:
    chat, _ = make_chat(llama_server)
    assert [m.id for m in chat.models()] == [llama_server.model]


@pytest.fixture(scope="module")
def function_calling_server() -> Iterator[LocalServer]:
    """The same model with llama-cpp-python's chatml-function-calling chat format."""
    require_local_extra()
    with LocalServer(chat_format="chatml-function-calling") as server:
        yield server


def test_text_goes_to_the_model_unescaped(llama_server: LocalServer, make_chat: MakeChat) -> None:
    chat, _ = make_chat(llama_server, temperature=0, max_tokens=24)
    reply = chat.ask("Repeat exactly: it's <b>bold</b> & 'quoted'")
    assert "&#39;" not in reply.text and "&lt;" not in reply.text and "&amp;" not in reply.text


@pytest.mark.parametrize("chat_format", ["model template", "chatml-function-calling"])
def test_the_model_calls_a_registered_function(
    request: pytest.FixtureRequest, chat_format: str, make_chat: MakeChat
) -> None:
    name = "llama_server" if chat_format == "model template" else "function_calling_server"
    llama_server: LocalServer = request.getfixturevalue(name)
    seen: list[str] = []

    def get_weather(city: str) -> str:
        """Get the current weather for a city."""
        seen.append(city)
        return f"It is sunny and 22 degrees in {city}."

    chat, sent = make_chat(llama_server, temperature=0, max_tokens=64)
    chat.tools.add(get_weather)
    # The 135M model will not choose a tool on its own reliably: force it on the first request.
    reply = chat.ask("What is the weather in Paris?", tool_choice="get_weather")
    assert seen, "the function was never called"
    assert reply.tool_results[0].status == "ok"
    assert reply.text.strip()  # a final answer came back after the tool result
    followup = sent.bodies[-1]["messages"]
    assert followup[-1]["role"] == "tool" and "sunny" in followup[-1]["content"]
    assert followup[-2]["content"] == ""  # not null: this server rejects null next to tool calls


# -- structured replies: llama-cpp-python refuses json_schema, takes json_object + schema --


@dataclass
class Sentiment:
    label: Literal["positive", "negative"]
    stars: int


def test_structured_replies_go_through_the_grammar_fallback_and_every_object_parses(
    llama_server: LocalServer, make_chat: MakeChat
) -> None:
    chat, sent = make_chat(llama_server, temperature=0, max_tokens=40, schema_retries=0)
    notices: list[str] = []
    questions = [
        "I love this kettle, it works perfectly.",
        "Terrible. It broke after one day.",
        "Great value, would buy again!",
        "The worst purchase I ever made.",
    ]
    for question in questions:
        reply = chat.ask(
            f"Review: {question}\nClassify it.",
            schema=Sentiment,
            history=False,
            on_event=lambda e: notices.append(e.text) if isinstance(e, Notice) else None,
        )
        # Grammar-constrained: even the 135M model returns JSON that fits, first time.
        assert isinstance(reply.value, Sentiment)
        assert reply.value.label in ("positive", "negative")
        assert len(reply.completions) == 1
    forms = [body["response_format"]["type"] for body in sent.bodies]
    # The first form is refused once (llama-cpp-python allows only text and json_object)...
    assert forms[0] == "json_schema"
    assert sum(form == "json_schema" for form in forms) == 1
    # ...then every request carries the schema as llama-cpp-python's grammar form.
    assert all(form == "json_object" for form in forms[1:])
    assert all(
        body["response_format"]["schema"]["required"] == ["label", "stars"]
        for body in sent.bodies[1:]
    )
    assert sum("does not accept response_format json_schema" in n for n in notices) == 1


def test_a_map_over_rows_against_the_real_model(
    llama_server: LocalServer, make_chat: MakeChat
) -> None:
    chat, sent = make_chat(llama_server, temperature=0, max_tokens=40)
    rows = [{"review": text} for text in ("Lovely!", "Awful.", "Nice.", "Broken.", "Lovely!")]
    result = chat.map("Review: {review}\nClassify it.", rows, schema=Sentiment, concurrency=2)
    assert all(isinstance(value, Sentiment) for value in result)
    assert result[0] == result[4]  # the same prompt, sent once
    assert chat.last_map is not None
    assert (chat.last_map.done, chat.last_map.failed, chat.last_map.prompts) == (5, 0, 4)
    assert all(body["stream"] is False for body in sent.bodies)
