"""Structured replies through Chat: what is sent, the fallbacks, asking again, the history."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Literal

import pytest

from tf_magics import Chat, ToolRegistry
from tf_magics.errors import ConfigurationError, StructuredOutputError
from tf_magics.events import ContentDelta, Event, Notice
from tf_testing.fake_openai import (
    Dynamic,
    ErrorReply,
    FakeOpenAI,
    RawReply,
    RecordedRequest,
    ResponseSpec,
    TextReply,
    ToolCallReply,
    chat_chunk,
)

# What llama-cpp-python 0.3 answers to response_format json_schema (its request model allows
# only "text" and "json_object"): a 500 whose message names the field.
LLAMA_REFUSAL = ErrorReply(
    500,
    {
        "error": {
            "message": "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', "
            "'response_format', 'type'), 'msg': \"Input should be 'text' or 'json_object'\", "
            "'input': 'json_schema'}",
            "type": "internal_server_error",
            "param": None,
            "code": None,
        }
    },
)


@dataclass
class Verdict:
    label: Literal["pos", "neg"]
    confidence: float


def _chat(server: FakeOpenAI, **settings: Any) -> Chat:
    return Chat(base_url=server.base_url, model="fake-model", tools=ToolRegistry(), **settings)


def _json(value: Any) -> TextReply:
    return TextReply(json.dumps(value))


def test_the_request_carries_the_schema_and_the_value_is_an_instance(
    fake_server: FakeOpenAI,
) -> None:
    fake_server.enqueue(_json({"label": "pos", "confidence": 0.9}))
    reply = _chat(fake_server).ask("Great product!", schema=Verdict)
    assert reply.value == Verdict("pos", 0.9) and isinstance(reply.value, Verdict)
    assert reply.schema_name == "Verdict"
    assert reply.text == '{"label": "pos", "confidence": 0.9}'  # the raw text stays
    sent = fake_server.chat_requests[0]["response_format"]
    assert sent["type"] == "json_schema"
    assert sent["json_schema"]["name"] == "Verdict" and sent["json_schema"]["strict"] is True
    assert sent["json_schema"]["schema"]["properties"]["label"]["enum"] == ["pos", "neg"]


def test_no_schema_no_value_and_no_response_format(fake_server: FakeOpenAI) -> None:
    reply = _chat(fake_server).ask("hi")
    assert reply.value is None and reply.schema_name is None
    assert "response_format" not in fake_server.chat_requests[0]


def test_a_list_schema_and_a_dict_schema(fake_server: FakeOpenAI) -> None:
    chat = _chat(fake_server)
    fake_server.enqueue(_json({"items": [{"label": "neg", "confidence": 0.2}]}))
    assert chat.ask("x", schema=list[Verdict]).value == [Verdict("neg", 0.2)]
    fake_server.enqueue(_json({"n": 3}))
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    assert chat.ask("y", schema=schema).value == {"n": 3}
    sent = fake_server.chat_requests[-1]["response_format"]["json_schema"]
    assert sent["schema"] == schema and sent["strict"] is False


def test_a_server_that_refuses_json_schema_gets_the_grammar_form_once_and_for_all(
    fake_server: FakeOpenAI,
) -> None:
    chat = _chat(fake_server, max_retries=2)
    fake_server.enqueue(LLAMA_REFUSAL, _json({"label": "neg", "confidence": 0.4}))
    events: list[Event] = []
    reply = chat.ask("meh", schema=Verdict, on_event=events.append)
    assert reply.value == Verdict("neg", 0.4)
    first, second = fake_server.chat_requests
    assert first["response_format"]["type"] == "json_schema"
    # Not retried as a server error: the refusal is read at once and the next form sent.
    assert second["response_format"] == {
        "type": "json_object",
        "schema": first["response_format"]["json_schema"]["schema"],
    }
    notices = [e.text for e in events if isinstance(e, Notice)]
    assert any("does not accept response_format json_schema" in n for n in notices)
    # Remembered for this server and model: the next structured turn starts there.
    fake_server.enqueue(_json({"label": "pos", "confidence": 1}))
    chat.ask("again", schema=Verdict)
    assert fake_server.chat_requests[-1]["response_format"]["type"] == "json_object"
    assert len(fake_server.chat_requests) == 3


def _refusing(forms: set[str]) -> ResponseSpec:
    """A server that refuses some response_format forms (400, naming the field)."""

    def answer(request: RecordedRequest) -> ResponseSpec:
        body = request.json
        form = body.get("response_format")
        name = "none" if form is None else form["type"] + ("+schema" if "schema" in form else "")
        if name in forms:
            return ErrorReply(400, {"error": {"message": f"response_format {name} unsupported"}})
        return _json({"label": "pos", "confidence": 0.5})

    return Dynamic(answer)


def test_the_ladder_ends_with_the_schema_in_the_instructions(fake_server: FakeOpenAI) -> None:
    fake_server.default = _refusing({"json_schema", "json_object+schema", "json_object"})
    chat = _chat(fake_server, system="Be brief.")
    reply = chat.ask("x", schema=Verdict)
    assert reply.value == Verdict("pos", 0.5)
    forms = [r.get("response_format") for r in fake_server.chat_requests]
    assert [f and f["type"] for f in forms] == ["json_schema", "json_object", "json_object", None]
    third, last = fake_server.chat_requests[2], fake_server.chat_requests[3]
    for request in (third, last):
        system = request["messages"][0]
        assert system["role"] == "system" and system["content"].startswith("Be brief.\n\n")
        assert "JSON Schema (Verdict)" in system["content"]
    # The instructions went to the request only, never into the conversation.
    assert chat.conversation.system == "Be brief."
    assert all("JSON Schema" not in m.content for m in chat.conversation.messages)


def test_instructions_make_a_system_message_when_there_is_none(fake_server: FakeOpenAI) -> None:
    fake_server.default = _refusing({"json_schema", "json_object+schema"})
    _chat(fake_server).ask("x", schema=Verdict)
    messages = fake_server.chat_requests[-1]["messages"]
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"].startswith("Answer with one JSON value")


def test_the_fallback_is_remembered_per_server_and_model(fake_server: FakeOpenAI) -> None:
    fake_server.default = _refusing({"json_schema"})
    _chat(fake_server).ask("x", schema=Verdict)
    other = Chat(base_url=fake_server.base_url, model="other-model", tools=ToolRegistry())
    other.ask("x", schema=Verdict)
    assert [r["response_format"]["type"] for r in fake_server.chat_requests] == [
        "json_schema",
        "json_object",
        "json_schema",
        "json_object",
    ]


def test_a_real_server_error_is_not_mistaken_for_a_refusal(fake_server: FakeOpenAI) -> None:
    fake_server.enqueue(
        ErrorReply(503, {"error": {"message": "overloaded"}}, {"retry-after-ms": "1"}),
        _json({"label": "pos", "confidence": 1}),
    )
    reply = _chat(fake_server, max_retries=1).ask("x", schema=Verdict)
    assert reply.value == Verdict("pos", 1.0)
    assert [r["response_format"]["type"] for r in fake_server.chat_requests] == [
        "json_schema",
        "json_schema",  # retried as it was
    ]


def test_an_answer_that_does_not_fit_is_asked_again_with_the_problems(
    fake_server: FakeOpenAI,
) -> None:
    chat = _chat(fake_server)
    fake_server.enqueue(
        _json({"label": "positive", "confidence": "high"}),
        _json({"label": "pos", "confidence": 0.8}),
    )
    reply = chat.ask("Good?", schema=Verdict)
    assert reply.value == Verdict("pos", 0.8)
    correction = fake_server.chat_requests[1]["messages"][-1]
    assert correction["role"] == "user"
    assert 'label: expected one of "pos", "neg", got string "positive"' in correction["content"]
    assert 'confidence: expected a number, got string "high"' in correction["content"]
    assert len(reply.completions) == 2
    assert any("did not fit the schema Verdict" in note for note in reply.notes)
    # The history keeps the question and the answer that fits.
    assert [(m.role, m.content) for m in chat.conversation.messages] == [
        ("user", "Good?"),
        ("assistant", '{"label": "pos", "confidence": 0.8}'),
    ]


def test_invalid_json_is_asked_again_too(fake_server: FakeOpenAI) -> None:
    fake_server.enqueue(
        TextReply("I think it is positive"), _json({"label": "pos", "confidence": 1})
    )
    reply = _chat(fake_server).ask("x", schema=Verdict)
    assert reply.value == Verdict("pos", 1.0)
    assert "not valid JSON" in fake_server.chat_requests[1]["messages"][-1]["content"]


def test_still_wrong_after_asking_again_fails_in_one_line_keeping_the_raw_text(
    fake_server: FakeOpenAI,
) -> None:
    chat = _chat(fake_server)
    fake_server.enqueue(_json({"label": "good"}), _json({"label": "great"}))
    with pytest.raises(StructuredOutputError) as caught:
        chat.ask("x", schema=Verdict)
    error = caught.value
    message = str(error)
    assert "\n" not in message
    assert message.startswith("The reply does not fit the schema Verdict: ")
    assert 'got string "great"' in message and "2 answers tried" in message
    assert error.reply is not None and error.reply.text == '{"label": "great"}'
    assert error.reply.value is None and chat.last_reply is error.reply
    # The history stays sendable: the question and the last answer, marked.
    messages = chat.conversation.messages
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[1].content == '{"label": "great"}'
    assert messages[1].note == "does not fit the schema Verdict"
    fake_server.enqueue(TextReply("fine"))
    assert chat.ask("next").text == "fine"
    assert [m["role"] for m in fake_server.chat_requests[-1]["messages"]] == [
        "user",
        "assistant",
        "user",
    ]


def test_schema_retries_is_a_setting(fake_server: FakeOpenAI) -> None:
    fake_server.enqueue(_json({"label": "x"}))
    with pytest.raises(StructuredOutputError):
        _chat(fake_server, schema_retries=0).ask("x", schema=Verdict)
    assert len(fake_server.chat_requests) == 1
    fake_server.enqueue(_json({}), _json({}), _json({"label": "neg", "confidence": 0}))
    reply = _chat(fake_server).ask("y", schema=Verdict, schema_retries=2)
    assert reply.value == Verdict("neg", 0.0)


def test_a_cut_off_answer_says_to_raise_max_tokens(fake_server: FakeOpenAI) -> None:
    cut = TextReply('{"label": "po', finish_reason="length")
    fake_server.enqueue(cut, cut)
    with pytest.raises(StructuredOutputError) as caught:
        _chat(fake_server, max_tokens=5).ask("x", schema=Verdict)
    assert "cut off at max_tokens" in str(caught.value) and "--max-tokens" in str(caught.value)


def test_tools_run_first_and_the_final_answer_is_structured(fake_server: FakeOpenAI) -> None:
    calls: list[str] = []

    def lookup(product: str) -> str:
        """Reviews of a product."""
        calls.append(product)
        return "5 stars, loved it"

    fake_server.enqueue(
        ToolCallReply([("lookup", {"product": "kettle"})]),
        _json({"label": "pos", "confidence": 0.95}),
    )
    chat = Chat(base_url=fake_server.base_url, model="m", tools=[lookup])
    reply = chat.ask("How is the kettle reviewed?", schema=Verdict)
    assert calls == ["kettle"] and reply.value == Verdict("pos", 0.95)
    first, second = fake_server.chat_requests
    assert "tools" in first and first["response_format"]["type"] == "json_schema"
    assert second["response_format"] == first["response_format"]  # on every request
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "tool"]


def test_the_json_streams_as_content_while_it_arrives(fake_server: FakeOpenAI) -> None:
    fake_server.enqueue(TextReply(['{"label": ', '"neg", ', '"confidence": 0.1}']))
    events: list[Event] = []
    reply = _chat(fake_server).ask("x", schema=Verdict, on_event=events.append)
    pieces = [e.text for e in events if isinstance(e, ContentDelta)]
    assert "".join(pieces) == reply.text and reply.value == Verdict("neg", 0.1)


def test_a_bad_schema_fails_before_anything_is_sent_or_changed(fake_server: FakeOpenAI) -> None:
    chat = _chat(fake_server)
    with pytest.raises(ConfigurationError):
        chat.ask("x", schema="Verdict")
    assert fake_server.chat_requests == [] and chat.conversation.messages == []


def test_aask_takes_a_schema_too(fake_server: FakeOpenAI) -> None:
    fake_server.enqueue(_json({"label": "pos", "confidence": 0.7}))

    async def main() -> Any:
        chat = _chat(fake_server)
        reply = await chat.aask("x", schema=Verdict)
        await chat.aclose()
        return reply.value

    assert asyncio.run(main()) == Verdict("pos", 0.7)


def test_a_one_off_structured_question_leaves_the_history_alone(fake_server: FakeOpenAI) -> None:
    chat = _chat(fake_server, system="sys")
    fake_server.enqueue(_json({"label": "pos", "confidence": 1}))
    assert chat.ask("x", schema=Verdict, history=False).value == Verdict("pos", 1.0)
    assert [m.role for m in chat.conversation.messages] == ["system"]


def test_a_refusal_fails_at_once_and_says_what_the_model_said(fake_server: FakeOpenAI) -> None:
    refusal = RawReply.events(
        [
            chat_chunk(
                {"role": "assistant", "content": None, "refusal": "I can't help with that."}
            ),
            chat_chunk({}, "stop"),
            "[DONE]",
        ]
    )
    fake_server.enqueue(refusal)
    with pytest.raises(StructuredOutputError) as caught:
        _chat(fake_server).ask("x", schema=Verdict)
    assert "the model refused: I can't help with that." in str(caught.value)
    assert len(fake_server.chat_requests) == 1  # not asked again
