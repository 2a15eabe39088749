"""Byte-exact captures of a real llama-cpp-python server, replayed through the client.

Each ``NAME.response.http`` in ``tests/wire/llama-cpp-python`` is served again by the loopback
server (whole, and one event per read), and the request is rebuilt from ``NAME.request.json``
through :class:`RequestOptions`, so the test also checks that we send what the capture sent.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.paths import WIRE
from tf_magics.client import ModelInfo, RequestOptions
from tf_magics.client.chunks import ChunkAccumulator
from tf_magics.client.http import Client
from tf_magics.conversation import Conversation
from tf_magics.errors import APIError, EmptyStreamError, ServerError
from tf_magics.events import ContentDelta, Event
from tf_magics.types import Completion, ToolCall, ToolResult
from tf_testing.fake_openai import FakeOpenAI, ReplayCapture

# httpx builds an SSL context for every new client (~0.1 s); the replays share one instead.
_SSL = ssl.create_default_context()
SAMPLING = ("temperature", "top_p", "seed", "stop", "presence_penalty", "frequency_penalty")


def request_of(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((WIRE / f"{name}.request.json").read_text())
    return data


def options_for(request: dict[str, Any], base_url: str) -> RequestOptions:
    """The options that make our client send ``request`` (validation bypassed on purpose)."""
    return RequestOptions(
        base_url=base_url,
        model=request.get("model"),
        max_tokens=request.get("max_tokens", 1024),
        stream=request.get("stream", False),
        sampling={k: request[k] for k in SAMPLING if k in request},
        connect_timeout=5.0,
        read_timeout=10.0,
        max_retries=0,
        include_usage="stream_options" in request,
        max_tool_rounds=1,
        extra_body={},
    )


class Replay:
    def __init__(self, name: str, split_events: bool) -> None:
        self.name = name
        self.request = request_of(name)
        self.capture = ReplayCapture(WIRE / f"{name}.response.http", split_events=split_events)
        self.events: list[Event] = []
        self.completion: Completion | None = None
        self.error: APIError | None = None
        self.sent: dict[str, Any] = {}

    def run(self) -> Replay:
        with FakeOpenAI() as server:
            server.enqueue(self.capture)

            async def main() -> None:
                client = Client(transport=httpx.AsyncHTTPTransport(verify=_SSL))
                try:
                    self.completion = await client.chat(
                        options_for(self.request, server.base_url),
                        self.request["messages"],
                        ChunkAccumulator(),
                        on_event=self.events.append,
                        tools=self.request.get("tools"),
                        tool_choice=self.request.get("tool_choice"),
                    )
                except APIError as error:
                    self.error = error
                finally:
                    await client.aclose()

            asyncio.run(main())
            (self.sent,) = server.chat_requests
            assert server.errors == []
        return self

    @property
    def ok(self) -> Completion:
        assert self.error is None, f"{type(self.error).__name__}: {self.error}"
        assert self.completion is not None
        return self.completion


@pytest.fixture(params=[False, True], ids=["whole", "event-per-read"])
def split_events(request: pytest.FixtureRequest) -> bool:
    value: bool = request.param
    return value


def replay(name: str, split_events: bool) -> Replay:
    result = Replay(name, split_events).run()
    if "max_tokens" in result.request:
        # The request we send is the one that was captured, field for field (we always say
        # whether to stream; the captured non-streaming requests left it to the default).
        assert result.sent == {"stream": False, **result.request}
    return result


def content_events(result: Replay) -> str:
    return "".join(e.text for e in result.events if isinstance(e, ContentDelta))


# --------------------------------------------------------------------------- text


def test_stream_text_is_a_complete_streamed_answer(split_events: bool) -> None:
    result = replay("stream-text", split_events)
    completion = result.ok
    assert completion.content == "The primary colors are: red, blue, and yellow."
    assert content_events(result) == completion.content
    assert (completion.finish_reason, completion.ended) == ("stop", "done")
    assert completion.model == "smollm2"
    assert completion.id == "chatcmpl-248ef49b-d4a2-4ce3-b9af-812dfbe5f038"
    assert completion.tool_calls == [] and completion.reasoning == ""


def test_stream_text_usage_reports_no_usage_because_the_server_sends_none(
    split_events: bool,
) -> None:
    result = replay("stream-text-usage", split_events)
    assert result.sent["stream_options"] == {"include_usage": True}
    completion = result.ok
    assert completion.usage is None
    assert completion.content.startswith("Hello")
    assert completion.ended == "done"


def test_stream_length_ends_with_finish_reason_length(split_events: bool) -> None:
    completion = replay("stream-length", split_events).ok
    assert completion.finish_reason == "length"
    assert completion.finish_kind == "length"
    assert completion.content.startswith("Once upon a time, there was a dragon named")
    assert completion.ended == "done"


def test_nonstream_text_is_read_with_its_usage(split_events: bool) -> None:
    result = replay("nonstream-text", split_events)
    assert result.sent["stream"] is False and "stream_options" not in result.sent
    completion = result.ok
    assert completion.content == (
        "Hello! I'm here to help with any kind of creative writing project. "
        "What can I assist you with?"
    )
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (33, 22)
    assert completion.usage.total_tokens == 55
    assert completion.ended == "complete"


def test_tool_result_followup_with_empty_content_streams_a_reply(split_events: bool) -> None:
    completion = replay("tool-result-followup-empty-content", split_events).ok
    assert completion.content.startswith("The weather in Paris is a classic example of")
    assert completion.ended == "done"


# --------------------------------------------------------------------------- tools


def test_nonstream_tool_auto_gives_one_call_despite_the_legacy_copy(split_events: bool) -> None:
    completion = replay("nonstream-tool-auto", split_events).ok
    (call,) = completion.tool_calls
    assert call.id == "call__0_get_weather_cmpl-8c09a708-3eaf-42d8-84b0-1b29dea9981b"
    assert call.name == "get_weather"  # not the legacy copy's "get_weather:"
    assert call.parsed_arguments() == {"city": "Paris"}
    assert completion.content == ""
    assert completion.finish_kind == "tool_calls"


def test_stream_tool_forced_gives_one_call_with_its_id_kept(split_events: bool) -> None:
    completion = replay("stream-tool-forced", split_events).ok
    (call,) = completion.tool_calls
    assert call.id == "call__0_get_weather_cmpl-7a97c321-395e-43f6-9887-a64f9c0c3289"
    assert call.name == "get_weather"
    assert call.parsed_arguments() == {"city": "Paris"}
    assert (completion.finish_reason, completion.ended) == ("tool_calls", "done")


def test_stream_tool_auto_empty_body_is_an_empty_stream_error(split_events: bool) -> None:
    result = replay("stream-tool-auto", split_events)
    assert isinstance(result.error, EmptyStreamError)
    assert "cannot stream tool calls" in str(result.error)


# --------------------------------------------------------------------------- errors


def test_error_context_overflow_empty_body_is_an_empty_stream_error(split_events: bool) -> None:
    result = replay("error-context-overflow", split_events)
    assert isinstance(result.error, EmptyStreamError)
    assert "context window" in str(result.error)
    assert result.error.partial is not None and result.error.partial.content == ""


def test_tool_result_followup_with_null_content_is_a_readable_server_error(
    split_events: bool,
) -> None:
    result = replay("tool-result-followup", split_events)
    error = result.error
    assert isinstance(error, ServerError)
    assert error.status_code == 500
    message = str(error)
    assert "\n" not in message
    assert "500 Internal Server Error" in message
    assert "7 validation errors" in message
    assert len(message) < 500


def test_error_bad_param_is_a_readable_server_error(split_events: bool) -> None:
    result = replay("error-bad-param", split_events)
    assert result.sent["temperature"] == "hot"
    error = result.error
    assert isinstance(error, ServerError)
    assert error.status_code == 500
    assert error.error_type == "internal_server_error"
    assert "Input should be a valid number" in str(error)
    assert "\n" not in str(error)


def test_error_bad_role_is_a_readable_server_error(split_events: bool) -> None:
    result = replay("error-bad-role", split_events)
    error = result.error
    assert isinstance(error, ServerError)
    assert "7 validation errors" in str(error)
    assert "\n" not in str(error)


# --------------------------------------------------------------------------- models


def test_models_capture_lists_the_served_model() -> None:
    capture = ReplayCapture(WIRE / "models.response.http")
    with FakeOpenAI(models=capture) as server:

        async def main() -> list[ModelInfo]:
            client = Client(transport=httpx.AsyncHTTPTransport(verify=_SSL))
            try:
                return await client.list_models(options_for({}, server.base_url))
            finally:
                await client.aclose()

        assert asyncio.run(main()) == [ModelInfo("smollm2", "me", None)]


# --------------------------------------------------------------------------- what we send back


def test_conversation_sends_empty_content_next_to_tool_calls_as_the_accepted_capture_did() -> None:
    accepted = request_of("tool-result-followup-empty-content")["messages"]
    rejected = request_of("tool-result-followup")["messages"]
    call = ToolCall("call_1", "get_weather", '{"city": "Paris"}')
    conversation = Conversation()
    conversation.add_user("What is the weather in Paris?")
    conversation.add_assistant(Completion(content="", tool_calls=[call], ended="done"))
    conversation.add_tool_result(ToolResult(call, '{"temp_c": 18, "sky": "cloudy"}'))
    wire = conversation.to_wire()
    assert wire[:2] == accepted[:2]
    assert wire[1]["content"] == "" and rejected[1]["content"] is None
    tool_message = wire[2]
    assert {k: tool_message[k] for k in accepted[2]} == accepted[2]


def test_every_capture_is_replayed_here() -> None:
    names = {p.name.removesuffix(".response.http") for p in WIRE.glob("*.response.http")}
    assert len(names) == 13
    source = Path(__file__).read_text()
    assert all(f'"{name}' in source for name in names), names
