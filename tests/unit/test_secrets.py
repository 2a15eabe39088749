"""No secret leaves by accident: the scanner, and every outgoing message masked before sending."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tf_magics import Chat, Conversation, Notice
from tf_magics._secrets import SecretScanner, looks_secret
from tf_magics.events import Event
from tf_testing.fake_openai import FakeOpenAI, TextReply, ToolCallReply

DB_PASSWORD = "correct-horse-battery-staple"
HF_TOKEN = "hf_AbCdEfGhIjKlMnOpQrStUvWxYz123456"


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PASSWORD", DB_PASSWORD)
    monkeypatch.setenv("HF_TOKEN", HF_TOKEN)
    monkeypatch.setenv("FEATURE_KEY", "on")  # too short to be a secret
    monkeypatch.setenv("FAVOURITE_COLOUR", "a long enough ultramarine")  # not a secret's name


def _chat(server: FakeOpenAI, **settings: Any) -> Chat:
    return Chat(base_url=server.base_url, model="fake-model", max_retries=0, **settings)


def _sent(server: FakeOpenAI) -> bytes:
    return b"".join(request.body for request in server.requests)


def test_names_that_look_secret() -> None:
    assert all(
        looks_secret(name)
        for name in ("OPENAI_API_KEY", "gh_token", "AWS_SECRET", "PGPASSWORD", "MY_PASSWORD_FILE")
    )
    assert not any(looks_secret(name) for name in ("HOME", "KEYBOARD", "TOKENIZER", "PATH"))


def test_the_scanner_takes_the_environment_and_the_key_but_not_short_values(secrets: None) -> None:
    scanner = SecretScanner.from_environment(keys=[("set in Python", "sk-python-key-123456")])
    assert {"DB_PASSWORD", "HF_TOKEN", "API key"} <= set(scanner.names())
    assert "FEATURE_KEY" not in scanner.names() and "FAVOURITE_COLOUR" not in scanner.names()
    text, found = scanner.redact(f"pw={DB_PASSWORD}; key=sk-python-key-123456; on")
    assert text == "pw=[redacted: DB_PASSWORD]; key=[redacted: API key]; on"
    assert found == ["DB_PASSWORD", "API key"]
    assert DB_PASSWORD not in repr(scanner)


def test_a_secret_that_contains_another_is_masked_whole() -> None:
    scanner = SecretScanner.from_environment(
        {"A_TOKEN": "abcdefgh", "B_TOKEN": "abcdefgh-ijklmnop"}
    )
    assert scanner.redact("x abcdefgh-ijklmnop y")[0] == "x [redacted: B_TOKEN] y"


def test_nothing_from_the_environment_is_ever_sent(fake_server: FakeOpenAI, secrets: None) -> None:
    chat = _chat(fake_server)
    chat.system = f"Connect with {DB_PASSWORD}."
    events: list[Event] = []
    chat.ask(
        f"Use {HF_TOKEN} to log in",
        context={"settings": {"token": HF_TOKEN}},
        on_event=events.append,
    )
    body = _sent(fake_server)
    assert DB_PASSWORD.encode() not in body and HF_TOKEN.encode() not in body
    sent = fake_server.chat_requests[-1]["messages"]
    assert sent[0]["content"] == "Connect with [redacted: DB_PASSWORD]."
    assert "[redacted: HF_TOKEN] to log in" in sent[1]["content"]
    notices = [e.text for e in events if isinstance(e, Notice) and e.kind != "progress"]
    assert len(notices) == 1
    assert "DB_PASSWORD (in the system prompt)" in notices[0]
    assert "HF_TOKEN (in the question, attachment `settings`)" in notices[0]
    # The history keeps what was sent, so the next turn sends the same.
    assert chat.conversation.system == "Connect with [redacted: DB_PASSWORD]."
    assert HF_TOKEN not in json.dumps(chat.conversation.to_dict())


def test_a_tool_result_with_a_secret_is_masked_before_it_goes_back(
    fake_server: FakeOpenAI, secrets: None
) -> None:
    def read_config() -> str:
        """Read the app's configuration."""
        return f"host=db.internal password={DB_PASSWORD}"

    fake_server.enqueue(ToolCallReply([("read_config", "{}")]), TextReply("done"))
    events: list[Event] = []
    reply = _chat(fake_server).ask("configure", tools=[read_config], on_event=events.append)
    assert reply.text == "done"
    assert DB_PASSWORD.encode() not in _sent(fake_server)
    assert fake_server.chat_requests[-1]["messages"][-1]["content"] == (
        "host=db.internal password=[redacted: DB_PASSWORD]"
    )
    assert any("the result of read_config" in e.text for e in events if isinstance(e, Notice))


def test_the_configured_key_is_masked_wherever_it_appears(fake_server: FakeOpenAI) -> None:
    key = "sk-configured-0123456789abcdef"
    with FakeOpenAI(api_key=key) as server:
        chat = Chat(base_url=server.base_url, model="m", api_key=key, max_retries=0)
        chat.ask(f"my key is {key}")
        (request,) = server.requests
        assert request.headers["authorization"] == f"Bearer {key}"  # in the header, as it must
        assert key.encode() not in request.body
        assert "[redacted: API key]" in server.chat_requests[0]["messages"][0]["content"]
        chat.close()


def test_a_loaded_history_with_a_secret_is_masked_too(
    fake_server: FakeOpenAI, secrets: None
) -> None:
    conversation = Conversation.from_dict(
        {
            "messages": [
                {"role": "user", "content": f"old {HF_TOKEN}"},
                {"role": "assistant", "content": "ok"},
            ]
        }
    )
    chat = Chat(conversation=conversation, base_url=fake_server.base_url, model="m")
    chat.ask("and now?")
    assert HF_TOKEN.encode() not in _sent(fake_server)
    assert conversation.messages[0].content == "old [redacted: HF_TOKEN]"
