"""The whole tool loop against the scripted server: the history sent back must be exactly right."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.paths import WIRE
from tf_magics import Chat, ToolRegistry, tool
from tf_magics.events import Event, StreamFallback, ToolCallFinished, ToolCallStarted
from tf_testing.fake_openai import (
    FakeOpenAI,
    RawReply,
    ReplayCapture,
    TextReply,
    ToolCallReply,
)

calls: list[tuple[str, Any]] = []


def get_weather(city: str, unit: str = "celsius") -> str:
    """Current weather for a city.

    Args:
        city: The city name.
        unit: celsius or fahrenheit.
    """
    calls.append(("get_weather", (city, unit)))
    return f"Sunny, 21 degrees {unit} in {city}"


def get_time(city: str) -> dict[str, str]:
    """Local time in a city."""
    calls.append(("get_time", city))
    return {"city": city, "time": "14:05"}


def explode(reason: str) -> str:
    """Always fails."""
    raise ValueError(f"cannot do {reason}")


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    calls.clear()


def _chat(server: FakeOpenAI, *functions: Any, **settings: Any) -> Chat:
    registry = ToolRegistry()
    for function in functions or (get_weather, get_time):
        registry.add(function)
    return Chat(
        base_url=server.base_url, model="fake-model", max_retries=0, tools=registry, **settings
    )


def _tool_messages(request: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in request["messages"] if m["role"] == "tool"]


def test_a_tool_call_split_across_deltas_runs_and_the_answer_uses_it(
    fake_server: FakeOpenAI,
) -> None:
    fake_server.enqueue(
        ToolCallReply([("get_weather", '{"city": "Paris"}')], fragments=6, ids=["call_w"]),
        TextReply("It is sunny in Paris."),
    )
    chat = _chat(fake_server)
    events: list[Event] = []
    reply = chat.ask("Weather in Paris?", on_event=events.append)
    assert reply.text == "It is sunny in Paris."
    assert calls == [("get_weather", ("Paris", "celsius"))]  # the omitted default kept
    first, second = fake_server.chat_requests
    assert [t["function"]["name"] for t in first["tools"]] == ["get_weather", "get_time"]
    assert second["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_w",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": "call_w",
            "content": "Sunny, 21 degrees celsius in Paris",
        },
    ]
    kinds = [type(e).__name__ for e in events if isinstance(e, ToolCallStarted | ToolCallFinished)]
    assert kinds == ["ToolCallStarted", "ToolCallFinished"]
    assert len(reply.completions) == 2 and reply.tool_results[0].status == "ok"


def test_parallel_calls_run_in_order_and_results_follow_in_call_order(
    fake_server: FakeOpenAI,
) -> None:
    fake_server.enqueue(
        ToolCallReply(
            [("get_time", '{"city": "Tokyo"}'), ("get_weather", '{"city": "Oslo"}')],
            ids=["a", "b"],
        ),
        TextReply("Done."),
    )
    _chat(fake_server).ask("Time in Tokyo and weather in Oslo?")
    assert calls == [("get_time", "Tokyo"), ("get_weather", ("Oslo", "celsius"))]
    results = _tool_messages(fake_server.chat_requests[1])
    assert [m["tool_call_id"] for m in results] == ["a", "b"]
    assert json.loads(results[0]["content"]) == {"city": "Tokyo", "time": "14:05"}


def test_repeated_ids_and_names_in_every_delta_make_one_call(fake_server: FakeOpenAI) -> None:
    fake_server.enqueue(
        ToolCallReply(
            [("get_weather", '{"city": "Rome"}')],
            fragments=5,
            repeat_id_and_name=True,
            chunk_style="llamacpp",
        ),
        TextReply("ok"),
    )
    _chat(fake_server).ask("Rome?")
    (call,) = fake_server.chat_requests[1]["messages"][1]["tool_calls"]
    assert call["function"] == {"name": "get_weather", "arguments": '{"city": "Rome"}'}
    assert calls == [("get_weather", ("Rome", "celsius"))]


@pytest.mark.parametrize(
    ("name", "arguments", "expected"),
    [
        ("get_weather", '{"city": "Par', "not valid JSON"),
        ("get_weather", '{"town": "Paris"}', "town"),
        ("delete_everything", "{}", "get_weather"),
        ("explode", '{"reason": "this"}', "ValueError: cannot do this"),
    ],
    ids=["invalid-json", "validation", "unknown-tool", "exception"],
)
def test_failures_become_error_results_and_the_model_recovers(
    fake_server: FakeOpenAI, name: str, arguments: str, expected: str
) -> None:
    fake_server.enqueue(
        ToolCallReply([(name, arguments)], ids=["bad"]), TextReply("Sorry, that failed.")
    )
    reply = _chat(fake_server, get_weather, explode).ask("Do it")
    assert reply.text == "Sorry, that failed."
    (result,) = _tool_messages(fake_server.chat_requests[1])
    assert result["tool_call_id"] == "bad" and expected in result["content"]
    assert reply.tool_results[0].status == "error"
    assert calls == []


def test_only_registered_tools_can_run(fake_server: FakeOpenAI) -> None:
    fake_server.enqueue(ToolCallReply([("get_time", '{"city": "Oslo"}')]), TextReply("no"))
    reply = _chat(fake_server, get_weather).ask("time?")  # get_time exists but is not registered
    assert calls == [] and reply.tool_results[0].status == "error"


def test_round_limit_stops_and_leaves_a_valid_history(fake_server: FakeOpenAI) -> None:
    for n in range(3):
        fake_server.enqueue(ToolCallReply([("get_time", '{"city": "Oslo"}')], ids=[f"c{n}"]))
    chat = _chat(fake_server, max_tool_rounds=3)
    reply = chat.ask("loop forever")
    assert len(fake_server.chat_requests) == 3
    assert reply.stopped == "round_limit" and any("limit" in note for note in reply.notes)
    assert len(calls) == 2  # the third round's call is answered "not run", not executed
    history = chat.conversation.to_wire()
    assert history[-1]["role"] == "tool" and "limit of 3" in history[-1]["content"]
    fake_server.enqueue(TextReply("fine"))
    chat.ask("stop now")
    sent = fake_server.chat_requests[-1]["messages"]
    called = {c["id"] for m in sent for c in m.get("tool_calls", [])}
    answered = {m["tool_call_id"] for m in sent if m["role"] == "tool"}
    assert called == answered == {"c0", "c1", "c2"}


def test_confirm_tools_are_declined_when_no_one_can_answer(fake_server: FakeOpenAI) -> None:
    registry = ToolRegistry()

    @tool(confirm=True, registry=registry)
    def send_email(to: str) -> str:
        """Send an email."""
        calls.append(("send_email", to))
        return "sent"

    fake_server.enqueue(ToolCallReply([("send_email", '{"to": "a@b.c"}')]), TextReply("ok"))
    chat = Chat(base_url=fake_server.base_url, model="m", tools=registry)
    reply = chat.ask("email a@b.c")
    assert calls == [] and reply.tool_results[0].status == "declined"
    assert "confirm" in _tool_messages(fake_server.chat_requests[1])[0]["content"]

    asked: list[dict[str, Any]] = []

    def say_no(_tool: Any, arguments: dict[str, Any]) -> bool:
        asked.append(arguments)
        return False

    fake_server.enqueue(ToolCallReply([("send_email", '{"to": "x@y.z"}')]), TextReply("ok"))
    chat.confirm = say_no
    reply = chat.ask("email x@y.z")
    assert asked == [{"to": "x@y.z"}] and calls == []
    assert "Declined by the user" in reply.tool_results[0].content

    fake_server.enqueue(ToolCallReply([("send_email", '{"to": "x@y.z"}')]), TextReply("ok"))
    chat.confirm = lambda _tool, _arguments: True
    chat.ask("email x@y.z again")
    assert calls == [("send_email", "x@y.z")]


def test_empty_stream_with_tools_falls_back_to_a_non_streaming_request(
    fake_server: FakeOpenAI,
) -> None:
    fake_server.enqueue(
        ReplayCapture(WIRE / "stream-tool-auto.response.http"),
        ReplayCapture(WIRE / "nonstream-tool-auto.response.http"),
        TextReply("The weather in Paris is sunny."),
    )
    events: list[Event] = []
    chat = _chat(fake_server)
    reply = chat.ask("Weather in Paris?", on_event=events.append)
    assert [r["stream"] for r in fake_server.chat_requests] == [True, False, False]
    assert any(isinstance(e, StreamFallback) for e in events)
    assert any("without streaming" in note for note in reply.notes)
    assert calls == [("get_weather", ("Paris", "celsius"))]
    assert reply.text == "The weather in Paris is sunny."
    # Remembered: the next turn's tool rounds go straight to non-streaming.
    fake_server.enqueue(TextReply("bye"))
    chat.ask("thanks")
    assert fake_server.chat_requests[-1]["stream"] is False


def test_forced_tool_choice_applies_to_the_first_request_only(fake_server: FakeOpenAI) -> None:
    fake_server.enqueue(ToolCallReply([("get_time", '{"city": "Lima"}')]), TextReply("14:05"))
    _chat(fake_server).ask("time in Lima", tool_choice="get_time")
    first, second = fake_server.chat_requests
    assert first["tool_choice"] == {"type": "function", "function": {"name": "get_time"}}
    assert "tool_choice" not in second


def test_legacy_function_call_replies_are_understood(fake_server: FakeOpenAI) -> None:
    legacy = {
        "id": "x",
        "object": "chat.completion",
        "model": "old",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "function_call": {"name": "get_time", "arguments": '{"city": "Cairo"}'},
                },
                "finish_reason": "function_call",
            }
        ],
    }
    body = json.dumps(legacy).encode()
    fake_server.enqueue(
        RawReply(200, {"content-type": "application/json"}, [body], framing="length"),
        TextReply("It is 14:05 in Cairo."),
    )
    reply = _chat(fake_server, stream=False).ask("time in Cairo")
    assert calls == [("get_time", "Cairo")] and reply.text == "It is 14:05 in Cairo."
    assert (
        "tools" in fake_server.chat_requests[0] and "functions" not in fake_server.chat_requests[0]
    )


def test_usage_is_summed_across_the_tool_rounds(fake_server: FakeOpenAI) -> None:
    fake_server.enqueue(ToolCallReply([("get_time", '{"city": "Oslo"}')]), TextReply("ok"))
    reply = _chat(fake_server).ask("time?")
    first, second = (c.usage for c in reply.completions)
    assert first is not None and second is not None and reply.usage is not None
    assert reply.usage.total_tokens == (first.total_tokens or 0) + (second.total_tokens or 0)


def test_cell_tools_and_the_decorated_registry(fake_server: FakeOpenAI) -> None:
    from tf_magics import default_registry

    @tool
    def shout(text: str) -> str:
        """Upper-case the text."""
        return text.upper()

    assert "shout" in default_registry() and shout("a") == "A"
    fake_server.enqueue(ToolCallReply([("shout", '{"text": "hi"}')]), TextReply("HI"))
    chat = Chat(base_url=fake_server.base_url, model="m")  # the notebook-wide registry
    chat.ask("shout hi", tools=[get_time])
    names = [t["function"]["name"] for t in fake_server.chat_requests[0]["tools"]]
    assert names == ["shout", "get_time"]
    assert "get_time" not in default_registry()  # a cell's extra tools are for that call only
