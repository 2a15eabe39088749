"""Record and replay through a real :class:`Chat` against the scripted loopback server.

A reply recorded from the server is replayed from the file with the server gone: the same text,
the same events in the same order, the same tool calls run again through the notebook's
functions. Replay mode never connects anywhere and needs no base URL and no key.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tf_magics import Chat
from tf_magics.cache import recording_file
from tf_magics.cache.replay import replay
from tf_magics.client import ChunkAccumulator
from tf_magics.errors import CacheMissError, ConfigurationError, IncompleteStreamError
from tf_magics.events import ContentDelta, Event, Notice, ReasoningDelta, ToolCallDelta
from tf_magics.local import local_server_running
from tf_testing.fake_openai import Disconnect, FakeOpenAI, TextReply, ToolCallReply

KEY = "sk-test-7f3a9c1e5b2d4e6f8a0b"


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    return tmp_path / "lesson.tf_magics.jsonl"


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A port that counts connections: replay must never make one."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        sock.setblocking(False)
        yield sock


def _accepted(sock: socket.socket) -> int:
    count = 0
    while True:
        try:
            connection, _ = sock.accept()
        except BlockingIOError:
            return count
        connection.close()
        count += 1


def _url(sock: socket.socket) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


def _recorder(server: FakeOpenAI, recording: Path, mode: str = "record", **settings: Any) -> Chat:
    return Chat(
        base_url=server.base_url,
        model="m1",
        max_retries=0,
        cache=mode,
        cache_file=str(recording),
        **settings,
    )


def _replayer(recording: Path, **settings: Any) -> Chat:
    return Chat(cache="replay", cache_file=str(recording), **settings)


def _deltas(events: list[Event]) -> list[Event]:
    return [e for e in events if isinstance(e, ContentDelta | ReasoningDelta | ToolCallDelta)]


def test_a_recorded_reply_replays_with_the_same_text_and_events(
    fake_server: FakeOpenAI, recording: Path, listener: socket.socket
) -> None:
    fake_server.enqueue(
        TextReply(
            ["## Title", "\n\nSome", " **bold**", " text."],
            reasoning=["Think", "ing."],
            tokens_per_second=100,
        )
    )
    live_events: list[Event] = []
    live = _recorder(fake_server, recording, temperature=0).ask(
        "Write something.", on_event=live_events.append
    )
    replayed_events: list[Event] = []
    chat = _replayer(recording, base_url=_url(listener), temperature=0)
    replayed = chat.ask("Write something.", on_event=replayed_events.append)
    assert replayed.text == live.text == "## Title\n\nSome **bold** text."
    assert replayed.reasoning == live.reasoning == "Thinking."
    assert _deltas(replayed_events) == _deltas(live_events)
    assert replayed.usage == live.usage and replayed.finish_reason == live.finish_reason
    info = replayed.replayed
    assert info is not None and info.model == "fake-model" and info.file == recording.name
    assert info.server == fake_server.base_url
    assert live.replayed is None and replayed.replayed_requests == 1
    assert chat.history[-1] == {"role": "assistant", "content": live.text}
    assert _accepted(listener) == 0
    assert len(fake_server.chat_requests) == 1


def test_replay_needs_no_base_url_no_key_and_no_model_server(
    fake_server: FakeOpenAI, recording: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_server.enqueue(TextReply("Hello, student."))
    _recorder(fake_server, recording).ask("Hi!")
    # A key without its base URL is refused before anything is sent, normally; a model file
    # that does not exist would make starting the local model fail.
    monkeypatch.setenv("TOKEN_FACTORY_API_KEY", KEY)
    monkeypatch.setenv("TF_MAGICS_LOCAL_MODEL", "/nonexistent/model.gguf")
    with pytest.raises(ConfigurationError, match="TOKEN_FACTORY_BASE_URL"):
        Chat().ask("Hi!")
    monkeypatch.setenv("TF_MAGICS_CACHE", "replay")  # the environment wins, as in CI
    reply = Chat(cache_file=str(recording)).ask("Hi!")
    assert reply.text == "Hello, student."
    assert not local_server_running()
    assert reply.key_source is None


def test_the_recording_holds_no_key_and_no_header(fake_server: FakeOpenAI, recording: Path) -> None:
    fake_server.api_key = KEY
    fake_server.enqueue(TextReply("Fine."))
    reply = _recorder(fake_server, recording, api_key=KEY).ask("Is my key safe?")
    assert reply.text == "Fine."
    assert fake_server.requests[-1].headers["authorization"] == f"Bearer {KEY}"
    text = recording.read_text(encoding="utf-8")
    assert KEY not in text and "authorization" not in text.lower() and "bearer" not in text.lower()


def test_auto_answers_what_was_recorded_and_records_the_rest(
    fake_server: FakeOpenAI, recording: Path
) -> None:
    fake_server.enqueue(TextReply("One."), TextReply("Two."))
    chat = _recorder(fake_server, recording, mode="auto")
    assert chat.ask("First?").text == "One."
    assert chat.ask("Second?").text == "Two."
    assert len(fake_server.chat_requests) == 2
    # A new kernel runs the notebook again: nothing is sent for what did not change.
    recording_file(recording).rewind()
    again = _recorder(fake_server, recording, mode="auto")
    assert again.ask("First?").text == "One."
    assert again.ask("Second?").text == "Two."
    fake_server.enqueue(TextReply("Three."))
    assert again.ask("Third?").text == "Three."
    assert len(fake_server.chat_requests) == 3
    assert len(recording.read_text().splitlines()) == 3


def test_record_always_asks_and_the_newer_recording_replays(
    fake_server: FakeOpenAI, recording: Path
) -> None:
    fake_server.enqueue(TextReply("Old."), TextReply("New."))
    assert _recorder(fake_server, recording).ask("Question?").text == "Old."
    recording_file(recording).rewind()
    assert _recorder(fake_server, recording).ask("Question?").text == "New."
    recording_file(recording).rewind()
    assert _replayer(recording).ask("Question?").text == "New."


def test_a_failed_reply_is_not_recorded(fake_server: FakeOpenAI, recording: Path) -> None:
    fake_server.enqueue(Disconnect(after_tokens=2))
    with pytest.raises(IncompleteStreamError):
        _recorder(fake_server, recording, mode="auto").ask("Question?")
    assert not recording.exists()
    fake_server.enqueue(TextReply("Whole answer."))
    assert _recorder(fake_server, recording, mode="auto").ask("Question?").text == "Whole answer."
    (line,) = recording.read_text().splitlines()
    assert json.loads(line)["occurrence"] == 1  # the failed attempt did not count


def test_the_same_request_three_times_replays_its_three_answers(
    fake_server: FakeOpenAI, recording: Path
) -> None:
    fake_server.enqueue(TextReply("Purrfect Bakery"), TextReply("Whisker Loaf"), TextReply("Mew"))
    chat = _recorder(fake_server, recording, temperature=1.0)
    live = [chat.ask("A name?", history=False).text for _ in range(3)]
    recording_file(recording).rewind()
    student = _replayer(recording, temperature=1.0)
    assert [student.ask("A name?", history=False).text for _ in range(3)] == live
    # Once more than recorded: replay goes round again rather than failing the cell.
    assert student.ask("A name?", history=False).text == live[0]


def test_tool_calls_replay_through_the_notebooks_functions(
    fake_server: FakeOpenAI, recording: Path
) -> None:
    ran: list[str] = []
    readings = {"Paris": 18.5}

    def get_temperature(city: str) -> float:
        """Current temperature in a city, in degrees Celsius."""
        ran.append(city)
        return readings[city]

    fake_server.enqueue(
        ToolCallReply([("get_temperature", {"city": "Paris"})]), TextReply("18.5 °C in Paris.")
    )
    live = _recorder(fake_server, recording, tools=[get_temperature]).ask("Paris?")
    assert ran == ["Paris"]
    recording_file(recording).rewind()
    replayed = _replayer(recording, tools=[get_temperature]).ask("Paris?")
    assert replayed.text == live.text and ran == ["Paris", "Paris"]  # the tool ran again
    assert [r.content for r in replayed.tool_results] == ["18.5"]
    assert replayed.replayed_requests == 2
    # The tool now returns something else: its result is part of the next request.
    readings["Paris"] = 17.0
    recording_file(recording).rewind()
    chat = _replayer(recording, tools=[get_temperature])
    with pytest.raises(CacheMissError) as caught:
        chat.ask("Paris?")
    assert caught.value.differences == (
        "the result of tool get_temperature differs: '17.0' vs recorded '18.5' "
        "(the tool returned something else)",
    )


def test_a_changed_request_fails_with_what_differs_and_leaves_the_history(
    fake_server: FakeOpenAI, recording: Path
) -> None:
    fake_server.enqueue(TextReply("Paris."))
    _recorder(fake_server, recording, temperature=0).ask("Capital of France?")
    chat = _replayer(recording, temperature=0.7)
    with pytest.raises(CacheMissError) as caught:
        chat.ask("Capital of France?")
    message = str(caught.value)
    assert message.startswith(
        "Replay mode: the request for 'Capital of France?' is not in the recording "
        "lesson.tf_magics.jsonl; against the closest recorded request, temperature 0.7 vs 0."
    )
    assert "\n" not in message and "Nothing was sent." in message
    assert chat.history == []  # the question was not kept: running the cell again is clean


def test_replay_without_a_recording_says_so(tmp_path: Path) -> None:
    with pytest.raises(CacheMissError, match=r"is not recorded in none\.jsonl \(there is no such"):
        _replayer(tmp_path / "none.jsonl").ask("Hi?")


def test_a_bad_mode_in_the_environment_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TF_MAGICS_CACHE", "sometimes")
    with pytest.raises(ConfigurationError, match="TF_MAGICS_CACHE must be one of off, auto"):
        Chat().ask("Hi?")


def test_auto_with_a_refused_endpoint_still_answers_what_was_recorded(
    fake_server: FakeOpenAI, recording: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_server.enqueue(TextReply("Recorded."))
    _recorder(fake_server, recording).ask("Old question?")
    recording_file(recording).rewind()
    monkeypatch.setenv("TOKEN_FACTORY_API_KEY", KEY)  # no base URL: sending is refused
    chat = Chat(cache="auto", cache_file=str(recording))
    assert chat.ask("Old question?").text == "Recorded."
    with pytest.raises(ConfigurationError, match="TOKEN_FACTORY_BASE_URL is not"):
        chat.ask("New question?")


def test_unreadable_lines_are_skipped_with_one_notice(
    fake_server: FakeOpenAI, recording: Path
) -> None:
    fake_server.enqueue(TextReply("Kept."))
    _recorder(fake_server, recording).ask("Question?")
    with recording.open("a", encoding="utf-8") as sink:
        sink.write('{"hand": "edited"\n')
    recording_file(recording).rewind()
    events: list[Event] = []
    chat = _replayer(recording)
    assert chat.ask("Question?", on_event=events.append).text == "Kept."
    (notice,) = [e for e in events if isinstance(e, Notice)]
    assert notice.kind == "warning"
    assert notice.text == (
        "1 line of the recording lesson.tf_magics.jsonl could not be read and was skipped "
        "(line 2: it is not JSON)."
    )
    events.clear()
    chat.ask("Question?", history=False, on_event=events.append)
    assert not [e for e in events if isinstance(e, Notice)]  # said once


def test_listing_models_is_refused_in_replay_mode(recording: Path) -> None:
    with pytest.raises(ConfigurationError, match="never contacts a server"):
        _replayer(recording).models()


def test_paced_replay_waits_as_the_reply_came_and_fills_the_accumulator(
    fake_server: FakeOpenAI, recording: Path
) -> None:
    fake_server.enqueue(TextReply(["a", "b", "c"], tokens_per_second=20))
    _recorder(fake_server, recording).ask("Slowly?")
    (entry,) = recording_file(recording).entries
    now = [0.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    accumulator = ChunkAccumulator()
    seen: list[Event] = []
    completion = asyncio.run(
        replay(entry, accumulator, seen.append, paced=True, sleep=sleep, clock=lambda: now[0])
    )
    times = [t for t, _ in entry.events]
    assert [round(w, 6) for w in waits[: len(times)]] == [
        round(b - a, 6) for a, b in zip([0.0, *times], times, strict=False)
    ]
    assert now[0] == pytest.approx(entry.elapsed)
    assert accumulator.content == "abc" == completion.content
    assert seen == [event for _, event in entry.events]


def test_a_request_sent_straight_through_the_client_is_recorded_and_replayed(
    fake_server: FakeOpenAI, recording: Path
) -> None:
    """Structured output and map rows call the client directly: the layer is on the request."""
    from tf_magics import ChatSettings
    from tf_magics.client.http import Client

    messages = [{"role": "user", "content": "The city in: 'I live in Lyon.'"}]
    response_format = {"type": "json_schema", "json_schema": {"name": "city", "schema": {}}}

    async def ask(settings: ChatSettings, schema: dict[str, Any]) -> str:
        client = Client()
        try:
            options = settings.resolve()
            extra = {**options.extra_body, "response_format": schema}
            options = dataclasses.replace(options, extra_body=extra)
            completion = await client.chat(options, messages, ChunkAccumulator())
            return completion.content
        finally:
            await client.aclose()

    fake_server.enqueue(TextReply('{"city": "Lyon"}'))
    recorder = ChatSettings(
        base_url=fake_server.base_url, model="m1", cache="record", cache_file=str(recording)
    )
    assert asyncio.run(ask(recorder, response_format)) == '{"city": "Lyon"}'
    assert json.loads(recording.read_text())["request"]["response_format"] == response_format
    player = ChatSettings(cache="replay", cache_file=str(recording))
    assert asyncio.run(ask(player, response_format)) == '{"city": "Lyon"}'
    other = {**response_format, "json_schema": {"name": "country", "schema": {}}}
    with pytest.raises(CacheMissError, match="response_format changed"):
        asyncio.run(ask(player, other))
    assert len(fake_server.chat_requests) == 1
