"""Chat.map against the scripted server: order, concurrency, 429s, failures, interrupts."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd
import pytest

from tf_magics import Chat, ToolRegistry
from tf_magics.data import MapSummary, RowError
from tf_magics.errors import ConfigurationError, MapError, MapInterrupted
from tf_magics.events import Event, MapProgress, Notice
from tf_testing.fake_openai import (
    Dynamic,
    ErrorReply,
    FakeOpenAI,
    RecordedRequest,
    ResponseSpec,
    TextReply,
)


@dataclass
class Label:
    label: Literal["even", "odd"]
    echo: int


def _number(request: RecordedRequest) -> int:
    return int(request.json["messages"][-1]["content"].rsplit(" ", 1)[-1])


def _labeller(delay: float = 0.0, fail: set[int] = frozenset()) -> ResponseSpec:  # type: ignore[assignment]
    """Answers each row from its own prompt ("... N"), after a random delay up to ``delay``."""

    def answer(request: RecordedRequest) -> ResponseSpec:
        n = _number(request)
        if n in fail:
            return ErrorReply(400, {"error": {"message": f"row {n} is cursed"}})
        value = {"label": "odd" if n % 2 else "even", "echo": n}
        return TextReply(json.dumps(value), first_token_delay=random.uniform(0, delay))

    return Dynamic(answer)


def _chat(server: FakeOpenAI, **settings: Any) -> Chat:
    return Chat(base_url=server.base_url, model="m", tools=ToolRegistry(), **settings)


def _frame(count: int) -> pd.DataFrame:
    return pd.DataFrame({"n": range(count)}, index=[f"row{i}" for i in range(count)])


def test_rows_come_back_in_input_order_with_values_from_their_own_row(
    fake_server: FakeOpenAI,
) -> None:
    fake_server.default = _labeller(delay=0.05)  # answers finish out of order
    frame = _frame(40)
    result = _chat(fake_server).map("Label {n}", frame, schema=Label, concurrency=8)
    assert list(result.index) == list(frame.index)
    assert list(result.columns) == ["n", "label", "echo", "error"]
    assert result["label"].tolist() == ["odd" if n % 2 else "even" for n in range(40)]
    assert result["echo"].tolist() == list(range(40))  # each row's own answer
    assert result["error"].tolist() == [None] * 40
    assert result["error"].dtype == object
    assert len(fake_server.chat_requests) == 40
    assert all("Label" in r["messages"][-1]["content"] for r in fake_server.chat_requests)


def test_a_list_of_strings_gives_the_texts_back_in_order(fake_server: FakeOpenAI) -> None:
    fake_server.default = Dynamic(lambda r: TextReply(f"echo {_number(r)}"))
    result = _chat(fake_server).map("Say {text}", [f"it {n}" for n in range(12)], concurrency=4)
    assert result == [f"echo {n}" for n in range(12)]


def test_the_in_flight_limit_is_used_and_never_exceeded(fake_server: FakeOpenAI) -> None:
    fake_server.default = TextReply("ok", first_token_delay=0.05)
    fake_server.max_in_flight = 6  # one more would be answered 429
    chat = _chat(fake_server, max_retries=0)
    result = chat.map("Q {text}", [str(n) for n in range(60)], concurrency=6)
    assert result == ["ok"] * 60
    assert fake_server.rejected == 0
    assert fake_server.peak_in_flight == 6
    summary = chat.last_map
    assert summary is not None and summary.peak == 6 and summary.requests == 60


def test_a_429_storm_loses_no_row(fake_server: FakeOpenAI) -> None:
    fake_server.default = _labeller(delay=0.03)
    fake_server.max_in_flight = 4
    fake_server.over_limit = ErrorReply(
        429,
        {"error": {"message": "slow down", "code": "rate_limit_exceeded"}},
        {"retry-after-ms": "20"},
    )
    windows: list[int] = []

    def watch(event: Event) -> None:
        if isinstance(event, MapProgress):
            windows.append(event.window)

    chat = _chat(fake_server, max_retries=4)
    result = chat.map("Label {n}", _frame(80), schema=Label, concurrency=16, on_event=watch)
    assert result["error"].tolist() == [None] * 80
    assert result["echo"].tolist() == list(range(80))
    assert fake_server.rejected > 0
    summary = chat.last_map
    assert summary is not None and summary.rate_limited == fake_server.rejected
    assert summary.done == 80 and summary.failed == 0
    assert min(windows) < 16  # the window shrank while the server refused


def test_a_failing_row_does_not_stop_the_others(fake_server: FakeOpenAI) -> None:
    fake_server.default = _labeller(fail={3, 7})
    chat = _chat(fake_server)
    result = chat.map("Label {n}", _frame(10), schema=Label)
    errors = result["error"].tolist()
    assert [i for i, e in enumerate(errors) if e is not None] == [3, 7]
    assert errors[3].startswith("BadRequestError: ") and "row 3 is cursed" in errors[3]
    assert pd.isna(result.loc["row3", "label"]) and result.loc["row4", "label"] == "even"
    summary = chat.last_map
    assert summary is not None and (summary.done, summary.failed) == (8, 2)
    assert summary.errors[0].startswith("row row3: BadRequestError")
    as_list = chat.map("Label {n}", [{"n": n} for n in range(5)], schema=Label, on_error="record")
    assert isinstance(as_list[3], RowError) and not as_list[3]
    assert as_list[3].kind == "BadRequestError" and as_list[4] == Label("even", 4)


def test_on_error_raise_stops_at_the_first_failure_with_the_rows_done(
    fake_server: FakeOpenAI,
) -> None:
    fake_server.default = _labeller(delay=0.02, fail={5})
    chat = _chat(fake_server)
    with pytest.raises(MapError) as caught:
        chat.map("Label {n}", _frame(200), schema=Label, concurrency=4, on_error="raise")
    error = caught.value
    assert "row 5 is cursed" in str(error) and "on_error='raise'" in str(error)
    result = error.result
    assert "row 5 is cursed" in result.loc["row5", "error"]
    not_run = result["error"].str.startswith("not run").sum()
    done = result["label"].notna().sum()
    assert not_run > 100 and done + not_run + 1 == 200
    assert len(fake_server.chat_requests) < 200
    fake_server.wait_until_idle(timeout=1)  # nothing left running


def test_identical_prompts_are_sent_once(fake_server: FakeOpenAI) -> None:
    fake_server.default = Dynamic(lambda r: TextReply(r.json["messages"][-1]["content"].upper()))
    chat = _chat(fake_server)
    result = chat.map("{text}", ["a", "b", "a", "a", "c", "b"])
    assert result == ["A", "B", "A", "A", "C", "B"]
    assert sorted(r["messages"][-1]["content"] for r in fake_server.chat_requests) == [
        "a",
        "b",
        "c",
    ]
    summary = chat.last_map
    assert summary is not None and summary.total == 6 and summary.prompts == 3
    assert summary.done == 6


def test_each_row_is_one_request_with_the_system_prompt_and_settings(
    fake_server: FakeOpenAI,
) -> None:
    chat = _chat(fake_server, system="You label numbers.", temperature=0.1)
    chat.ask("an earlier question")
    before = list(chat.conversation.messages)
    chat.map("N {text}", ["1", "2"], temperature=0, max_tokens=7)
    for request in fake_server.chat_requests[1:]:
        assert [m["role"] for m in request["messages"]] == ["system", "user"]
        assert request["messages"][0]["content"] == "You label numbers."
        assert request["temperature"] == 0 and request["max_tokens"] == 7
        assert request["stream"] is False and "tools" not in request
    assert chat.conversation.messages == before  # the history is unchanged


def test_progress_is_reported_at_a_bounded_rate_and_once_at_the_end(
    fake_server: FakeOpenAI,
) -> None:
    fake_server.default = TextReply("ok")
    events: list[tuple[float, MapProgress]] = []

    def watch(event: Event) -> None:
        if isinstance(event, MapProgress):
            events.append((time.monotonic(), event))

    began = time.monotonic()
    _chat(fake_server).map("{text}", [str(n) for n in range(300)], concurrency=8, on_event=watch)
    took = time.monotonic() - began
    assert events[0][1].finished == 0 and not events[0][1].final
    last = events[-1][1]
    assert last.final and last.done == 300 and last.total == 300 and last.tokens > 0
    assert len(events) <= took / 0.1 + 3
    finished = [e.finished for _, e in events]
    assert finished == sorted(finished)


def test_the_requests_per_minute_cap_spaces_the_starts(fake_server: FakeOpenAI) -> None:
    arrivals: list[float] = []

    def answer(request: RecordedRequest) -> ResponseSpec:
        arrivals.append(time.monotonic())
        return TextReply("ok")

    fake_server.default = Dynamic(answer)
    chat = _chat(fake_server)
    chat.map("{text}", [str(n) for n in range(5)], concurrency=5, requests_per_minute=600)
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    # 600 a minute: one every 0.1 s (measured where the server receives them: a little jitter).
    assert sum(gaps) >= 0.38 and min(gaps) > 0.05


def test_ctrl_c_stops_every_request_and_keeps_the_rows_done(fake_server: FakeOpenAI) -> None:
    fake_server.default = Dynamic(
        lambda r: TextReply(
            "fast" if _number(r) < 6 else "slow", first_token_delay=0 if _number(r) < 6 else 30
        )
    )
    chat = _chat(fake_server)
    seen: list[MapProgress] = []

    def interrupt_when_the_fast_rows_are_done() -> None:
        deadline = time.monotonic() + 10
        while not (seen and seen[-1].done >= 6) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGINT)

    def watch(event: Event) -> None:
        if isinstance(event, MapProgress):
            seen.append(event)

    threading.Thread(target=interrupt_when_the_fast_rows_are_done, daemon=True).start()
    began = time.monotonic()
    with pytest.raises(MapInterrupted) as caught:
        chat.map("Row {n}", _frame(20), concurrency=4, on_event=watch)
    assert time.monotonic() - began < 10  # not after the slow replies' 30 s
    error = caught.value
    assert "6 of 20 rows finished" in str(error)
    result = error.result
    assert result["reply"].tolist()[:6] == ["fast"] * 6
    assert result["error"].tolist()[:6] == [None] * 6
    assert result["error"].tolist()[6:] == ["interrupted"] * 14
    fake_server.wait_until_idle(timeout=1)  # every request was stopped
    count = len(fake_server.chat_requests)
    time.sleep(0.3)
    assert len(fake_server.chat_requests) == count  # and nothing starts afterwards
    assert chat.last_map is not None and chat.last_map.unfinished == 14


def test_amap_on_the_callers_loop_and_its_cancellation(fake_server: FakeOpenAI) -> None:
    fake_server.default = _labeller()

    async def main() -> Any:
        chat = _chat(fake_server)
        result = await chat.amap("Label {n}", _frame(6), schema=Label)
        fake_server.default = TextReply("slow", first_token_delay=30)
        task = asyncio.ensure_future(chat.amap("Row {text}", ["a", "b"]))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await chat.aclose()
        return result, chat.last_map

    result, summary = asyncio.run(main())
    assert result["label"].tolist() == ["even", "odd"] * 3
    assert isinstance(summary, MapSummary) and summary.unfinished == 2
    fake_server.wait_until_idle(timeout=1)


def test_a_server_that_refuses_json_schema_falls_back_for_the_whole_map(
    fake_server: FakeOpenAI,
) -> None:
    def answer(request: RecordedRequest) -> ResponseSpec:
        if request.json["response_format"]["type"] == "json_schema":
            return ErrorReply(
                500,
                {"error": {"message": "response_format: Input should be 'text' or 'json_object'"}},
            )
        n = _number(request)
        return TextReply(json.dumps({"label": "odd" if n % 2 else "even", "echo": n}))

    fake_server.default = Dynamic(answer)
    notes: list[str] = []
    chat = _chat(fake_server)
    result = chat.map(
        "Label {n}",
        _frame(30),
        schema=Label,
        concurrency=4,
        on_event=lambda e: notes.append(e.text) if isinstance(e, Notice) else None,
    )
    assert result["error"].tolist() == [None] * 30
    refused = [
        r for r in fake_server.chat_requests if r["response_format"]["type"] == "json_schema"
    ]
    assert 1 <= len(refused) <= 4  # only the first rows in flight tried it
    assert len([n for n in notes if "does not accept" in n]) == 1  # said once for the map
    assert chat.last_map is not None and any("does not accept" in n for n in chat.last_map.notes)


def test_a_result_column_named_like_an_input_column_replaces_it(fake_server: FakeOpenAI) -> None:
    fake_server.default = _labeller()
    frame = _frame(4).assign(label="?", error="old")
    chat = _chat(fake_server)
    result = chat.map("Label {n}", frame, schema=Label)
    assert list(result.columns) == ["n", "label", "echo", "error"]
    assert result["label"].tolist() == ["even", "odd", "even", "odd"]
    assert frame["label"].tolist() == ["?"] * 4  # the input is left as it was
    assert chat.last_map is not None
    assert any("label, error were replaced" in note for note in chat.last_map.notes)


def test_arguments_are_checked_before_anything_is_sent(fake_server: FakeOpenAI) -> None:
    chat = _chat(fake_server)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"concurrency": 0}, "between 1 and 256"),
        ({"concurrency": 1.5}, "whole number"),
        ({"requests_per_minute": -1}, "positive number"),
        ({"on_error": "ignore"}, "'record'"),
        ({"schema": "Label"}, "not the string"),
    ]
    for kwargs, words in cases:
        with pytest.raises(ConfigurationError, match=words):
            chat.map("{text}", ["a"], **kwargs)
    with pytest.raises(ConfigurationError, match="no column 'missing'"):
        chat.map("{missing}", _frame(3))
    assert fake_server.chat_requests == []


def test_an_empty_input_sends_nothing(fake_server: FakeOpenAI) -> None:
    chat = _chat(fake_server)
    assert chat.map("{text}", []) == []
    empty = chat.map("{n}", _frame(0))
    assert list(empty.columns) == ["n", "reply", "error"] and len(empty) == 0
    assert fake_server.chat_requests == []
