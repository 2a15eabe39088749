"""Keys go only where they belong, and no hostile input poisons a conversation.

Each test is one trigger of a class of defects found by an adversarial run (issue 15); the real
servers are the scripted loopback server, so what is checked is what actually went over the wire.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from traitlets import TraitError

from tf_magics import Chat, ChatSettings, Conversation, Tool, ToolRegistry
from tf_magics.errors import (
    APIConnectionError,
    AuthenticationError,
    ConfigurationError,
    TurnInProgressError,
)
from tf_testing.fake_openai import (
    ErrorReply,
    FakeOpenAI,
    RawReply,
    TextReply,
    ToolCallReply,
    chat_chunk,
)

SECRET = "sk-tf-SECRET-0123456789abcdefghijklmnopqrstuvwxyz"


@pytest.fixture
def other_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def authorization(server: FakeOpenAI) -> list[str | None]:
    """The Authorization header of each chat request the server received."""
    chats = [r for r in server.requests if r.path.endswith("/chat/completions")]
    return [r.headers.get("authorization") for r in chats]


# -- 1. no guessed host --------------------------------------------------------------------------


def test_a_key_without_a_base_url_is_refused_before_any_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TOKEN_FACTORY_API_KEY", SECRET)
    with pytest.raises(ConfigurationError) as caught:
        Chat().ask("hello")
    message = str(caught.value)
    assert "TOKEN_FACTORY_BASE_URL" in message and "https://<your host>/v1" in message
    assert "\n" not in message and SECRET not in message


def test_no_vendor_host_is_written_anywhere_in_the_settings() -> None:
    import tf_magics.credentials
    import tf_magics.settings

    for module in (tf_magics.settings, tf_magics.credentials):
        source = Path(module.__file__ or "").read_text(encoding="utf-8")
        assert "tokenfactory" not in source.replace("TOKEN_FACTORY", "").lower()


# -- 2. a key is bound to its origin -------------------------------------------------------------


def test_the_environment_key_goes_to_its_own_origin_only(
    monkeypatch: pytest.MonkeyPatch, fake_server: FakeOpenAI, other_server: FakeOpenAI
) -> None:
    monkeypatch.setenv("TOKEN_FACTORY_API_KEY", SECRET)
    monkeypatch.setenv("TOKEN_FACTORY_BASE_URL", fake_server.base_url)
    settings = ChatSettings()
    chat = Chat(settings=settings)
    reply = chat.ask("to the configured server")
    assert authorization(fake_server) == [f"Bearer {SECRET}"]
    assert reply.key_source == "TOKEN_FACTORY_API_KEY"

    reply = chat.ask("elsewhere", base_url=other_server.base_url)
    assert authorization(other_server) == [None]
    assert reply.key_source is None
    assert any("TOKEN_FACTORY_API_KEY" in note and "api_key_env" in note for note in reply.notes)

    settings.base_url = other_server.base_url  # %chat set base_url=... does the same
    chat.ask("still elsewhere")
    assert authorization(other_server) == [None, None]


def test_an_openai_key_never_goes_to_another_providers_url(
    monkeypatch: pytest.MonkeyPatch, fake_server: FakeOpenAI
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("TOKEN_FACTORY_BASE_URL", fake_server.base_url)
    Chat().ask("hi")
    assert authorization(fake_server) == [None]


def test_a_key_is_sent_elsewhere_only_when_bound_explicitly(
    monkeypatch: pytest.MonkeyPatch, fake_server: FakeOpenAI, other_server: FakeOpenAI
) -> None:
    monkeypatch.setenv("TOKEN_FACTORY_API_KEY", SECRET)
    monkeypatch.setenv("TOKEN_FACTORY_BASE_URL", fake_server.base_url)
    reply = Chat(base_url=other_server.base_url, api_key_env="TOKEN_FACTORY_API_KEY").ask("hi")
    assert authorization(other_server) == [f"Bearer {SECRET}"]
    assert reply.key_source == "TOKEN_FACTORY_API_KEY (api_key_env)"
    Chat(base_url=other_server.base_url, api_key="python-key").ask("hi")
    assert authorization(other_server)[-1] == "Bearer python-key"


def test_a_rejected_request_without_a_key_says_which_key_was_kept_back(
    monkeypatch: pytest.MonkeyPatch, fake_server: FakeOpenAI, other_server: FakeOpenAI
) -> None:
    monkeypatch.setenv("TOKEN_FACTORY_API_KEY", SECRET)
    monkeypatch.setenv("TOKEN_FACTORY_BASE_URL", fake_server.base_url)
    other_server.enqueue(ErrorReply(401, {"error": {"message": "no key"}}))
    with pytest.raises(AuthenticationError) as caught:
        Chat(base_url=other_server.base_url, max_retries=0).ask("hi")
    assert "No API key was sent" in str(caught.value)
    assert "TOKEN_FACTORY_API_KEY" in str(caught.value) and SECRET not in str(caught.value)


@pytest.mark.parametrize("url", ["http://10.255.255.1:9/v1", "http://example.invalid/v1"])
def test_a_key_over_plain_http_to_another_machine_needs_an_opt_in(url: str) -> None:
    settings = ChatSettings(base_url=url, api_key=SECRET)
    with pytest.raises(ConfigurationError, match="allow_http_key") as caught:
        settings.resolve()
    assert SECRET not in str(caught.value)
    settings.allow_http_key = True
    assert settings.resolve().api_key is not None


def test_loopback_http_needs_no_opt_in(fake_server: FakeOpenAI) -> None:
    Chat(base_url=fake_server.base_url.replace("127.0.0.1", "localhost"), api_key=SECRET).ask("x")
    assert authorization(fake_server) == [f"Bearer {SECRET}"]


# -- 3. redirects never move a request -----------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_reported_never_followed(
    status: int, fake_server: FakeOpenAI, other_server: FakeOpenAI
) -> None:
    target = f"{other_server.base_url}/chat/completions"
    fake_server.enqueue(
        RawReply(status=status, headers={"location": target}, chunks=[b"moved"], framing="length")
    )
    with pytest.raises(APIConnectionError) as caught:
        Chat(base_url=fake_server.base_url, api_key=SECRET).ask("secret conversation")
    assert other_server.requests == []
    message = str(caught.value)
    assert "does not follow redirects" in message and target in message
    assert "not JSON" not in message


# -- 5. masking survives truncation --------------------------------------------------------------


def test_a_key_echoed_at_the_end_of_a_long_error_body_is_masked_before_the_cut(
    fake_server: FakeOpenAI,
) -> None:
    fake_server.enqueue(ErrorReply(401, {"error": {"message": "x" * 280 + SECRET}}))
    with pytest.raises(AuthenticationError) as caught:
        Chat(base_url=fake_server.base_url, api_key=SECRET).ask("hi")
    shown = f"{caught.value} {caught.value.body}"
    for size in (6, 12, 24):
        assert all(SECRET[i : i + size] not in shown for i in range(len(SECRET) - size + 1))


# -- 7. text that cannot be encoded --------------------------------------------------------------


def test_a_surrogate_pair_split_across_chunks_is_joined_and_a_lone_half_replaced(
    fake_server: FakeOpenAI,
) -> None:
    def chunk(text_json: str) -> bytes:
        return (
            b'data: {"choices":[{"index":0,"delta":{"content":"' + text_json.encode() + b'"}}]}\n\n'
        )

    fake_server.enqueue(
        RawReply.events([chunk("smile \\ud83d"), chunk("\\ude00 and \\ud800 alone"), "[DONE]"])
    )
    chat = Chat(base_url=fake_server.base_url)
    reply = chat.ask("hi")
    assert reply.text == "smile \U0001f600 and \ufffd alone"
    chat.ask("next")  # the history is sendable
    assert fake_server.chat_requests[-1]["messages"][1]["content"] == reply.text


def test_a_lone_surrogate_in_the_prompt_or_a_tool_result_is_repaired(
    fake_server: FakeOpenAI,
) -> None:
    def broken() -> str:
        return "half \ud83d"

    fake_server.enqueue(ToolCallReply([("broken", {})]), TextReply("done"))
    chat = Chat(base_url=fake_server.base_url, tools=[broken])
    chat.ask("prompt \udc00 here")
    messages = fake_server.chat_requests[-1]["messages"]
    assert messages[0]["content"] == "prompt \ufffd here"
    assert messages[2]["content"] == "half \ufffd"


# -- 8. a failed turn leaves nothing behind ------------------------------------------------------


def test_an_unexpected_failure_while_building_a_request_rolls_the_question_back(
    fake_server: FakeOpenAI,
) -> None:
    def f(x: float) -> float:
        return x

    # A hand-made tool whose schema cannot be written as JSON.
    broken = Tool(name="f", description="d", function=f, schema={"default": float("nan")})
    chat = Chat(base_url=fake_server.base_url, tools=ToolRegistry([broken]))
    with pytest.raises(ConfigurationError, match="cannot be sent as JSON"):
        chat.ask("first")
    assert chat.conversation.messages == []
    assert fake_server.chat_requests == []
    chat.tools.remove("f")
    chat.ask("second")
    assert [m["role"] for m in fake_server.chat_requests[-1]["messages"]] == ["user"]


# -- 9, 10. tool calls nobody offered, and duplicate ids -----------------------------------------


def test_a_tool_call_with_no_tool_enabled_is_answered_as_an_error(fake_server: FakeOpenAI) -> None:
    fake_server.enqueue(ToolCallReply([("rm_rf", {"path": "/"})]), TextReply("ok"))
    chat = Chat(base_url=fake_server.base_url, tools=ToolRegistry())
    reply = chat.ask("hi")
    assert [r.status for r in reply.tool_results] == ["error"]
    assert "unknown tool 'rm_rf'" in reply.tool_results[0].content
    assert reply.text == "ok"


def test_two_calls_with_the_same_id_both_run_and_are_both_answered(
    fake_server: FakeOpenAI,
) -> None:
    ran: list[int] = []

    def add(a: int, b: int) -> int:
        ran.append(a + b)
        return a + b

    fake_server.enqueue(
        ToolCallReply([("add", {"a": 1, "b": 2}), ("add", {"a": 3, "b": 4})], ids=["dup", "dup"]),
        TextReply("3 and 7"),
    )
    Chat(base_url=fake_server.base_url, tools=[add]).ask("sums")
    assert ran == [3, 7]
    messages = fake_server.chat_requests[-1]["messages"]
    ids = [call["id"] for call in messages[1]["tool_calls"]]
    assert len(set(ids)) == 2
    assert [m["tool_call_id"] for m in messages[2:4]] == ids
    assert [m["content"] for m in messages[2:4]] == ["3", "7"]


# -- 11. concurrent turns ------------------------------------------------------------------------


def test_a_second_turn_on_a_busy_conversation_is_refused(fake_server: FakeOpenAI) -> None:
    fake_server.enqueue(TextReply("first", first_token_delay=0.3), TextReply("second"))
    chat = Chat(base_url=fake_server.base_url)

    async def both() -> tuple[Any, ...]:
        return await asyncio.gather(chat.aask("a"), chat.aask("b"), return_exceptions=True)

    results = asyncio.run(both())
    assert isinstance(results[1], TurnInProgressError)
    assert [m.role for m in chat.conversation.messages] == ["user", "assistant"]
    assert chat.conversation.messages[0].content == "a"


# -- 12. hostile conversation files ---------------------------------------------------------------

HOSTILE = {
    "tool_call_id is an object": {
        "messages": [
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": {"x": 1}, "content": "r"},
        ]
    },
    "reasoning is not text": {"messages": [{"role": "assistant", "content": "a", "reasoning": 3}]},
    "a message is a number": {"messages": [1]},
    "tool_calls is a string": {"messages": [{"role": "assistant", "tool_calls": "abc"}]},
    "two system messages": {
        "messages": [{"role": "system", "content": "a"}, {"role": "system", "content": "b"}]
    },
    "content is an object": {"messages": [{"role": "user", "content": {"text": "hi"}}]},
    "a result for a call never made": {
        "messages": [{"role": "user", "content": "q"}, {"role": "tool", "tool_call_id": "x"}]
    },
    "an unknown role": {"messages": [{"role": "root", "content": "x"}]},
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_conversation_file_is_refused_whole_with_one_line(name: str) -> None:
    with pytest.raises(ValueError, match=r"messages|conversation") as caught:
        Conversation.from_dict(HOSTILE[name])  # type: ignore[arg-type]
    assert "\n" not in str(caught.value) and "messages" in str(caught.value)


def test_a_deeply_nested_file_is_refused_cleanly() -> None:
    with pytest.raises(ValueError, match="nests too deeply"):
        Conversation.from_json("[" * 100_000 + "]" * 100_000)


def test_a_valid_file_round_trips_with_its_content_parts() -> None:
    conversation = Conversation.from_dict(
        {
            "messages": [
                {"role": "system", "content": "s"},
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}},
                        {"type": "text", "text": "what is this?"},
                    ],
                },
            ]
        }
    )
    again = Conversation.from_json(conversation.to_json())
    assert again.to_wire() == conversation.to_wire()
    assert again.to_wire()[1]["content"][0]["type"] == "image_url"


# -- 13. settings that reach the wire are checked ------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("read_timeout", -1),
        ("read_timeout", float("nan")),
        ("connect_timeout", float("inf")),
        ("stop", ["a", "b", "c", "d", "e"]),
        ("base_url", "http://127.0.0.1:70000/v1"),
        ("base_url", "http://[::1/v1"),
        ("extra_body", {"messages": []}),
        ("extra_body", {"stream": False}),
        ("extra_body", {"model": "other"}),
        ("extra_body", {"max_completion_tokens": 10**9}),
        ("extra_body", {"x": float("nan")}),
    ],
)
def test_a_setting_that_reaches_the_wire_is_checked(name: str, value: Any) -> None:
    settings = ChatSettings()
    with pytest.raises(TraitError) as caught:
        setattr(settings, name, value)
    assert "\n" not in str(caught.value)
    with pytest.raises(ConfigurationError):
        ChatSettings(base_url="http://127.0.0.1:1/v1").resolve(**{name: value})


# -- 17, 18. messages that tell the truth --------------------------------------------------------


def test_the_settings_repr_reads_well() -> None:
    assert repr(ChatSettings()) == "ChatSettings(max_tokens=1024, key=not set)"
    shown = repr(ChatSettings(base_url="https://h.example/v1", temperature=0, api_key=SECRET))
    assert shown.startswith("ChatSettings(base_url='https://h.example/v1', temperature=0.0, ")
    assert SECRET not in shown


def test_a_stream_that_stalls_before_the_first_token_does_not_claim_a_partial_reply(
    fake_server: FakeOpenAI,
) -> None:
    fake_server.enqueue(RawReply.events([b": keep-alive\n\n", 5.0, chat_chunk({"content": "x"})]))
    chat = Chat(base_url=fake_server.base_url, read_timeout=0.3, max_retries=0)
    with pytest.raises(Exception) as caught:  # noqa: PT011 -- the message is what is checked
        chat.ask("hi")
    assert "partial reply is kept" not in str(caught.value)
    assert "Nothing had arrived" in str(caught.value)
    assert chat.conversation.messages == []


def test_json_dumps_of_a_settings_summary_never_holds_the_key() -> None:
    settings = ChatSettings(base_url="https://h.example/v1", api_key=SECRET)
    assert SECRET not in json.dumps(settings.summary(), default=str)


# -- 7. a view that fails stops the turn before the cell ends ------------------------------------


class _BrokenView:
    """An observer that fails on the first token (as a renderer given bad text once did)."""

    def handle(self, event: Any) -> None:
        from tf_magics.events import ContentDelta

        if isinstance(event, ContentDelta):
            raise UnicodeEncodeError("utf-8", "x", 0, 1, "surrogates not allowed")

    def idle(self) -> None:
        pass

    def run_tool(self, function: Any) -> Any:
        return function()


def test_nothing_writes_to_the_conversation_after_a_failed_cell(fake_server: FakeOpenAI) -> None:
    import time

    fake_server.enqueue(
        TextReply(["one ", "two ", "three ", "four ", "five"], tokens_per_second=10)
    )
    chat = Chat(base_url=fake_server.base_url)
    with pytest.raises(UnicodeEncodeError):
        chat.ask("hi", observer=_BrokenView())
    after_the_cell = [(m.role, m.content) for m in chat.conversation.messages]
    time.sleep(0.8)  # the rest of the reply would have arrived by now
    assert [(m.role, m.content) for m in chat.conversation.messages] == after_the_cell
    assert all(m.role != "user" for m in chat.conversation.messages[-1:])  # no dangling question
