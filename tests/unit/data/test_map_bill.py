"""What a map costs: its estimate and confirmation, its cost, and the spending cap (issue 12)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tf_magics import Chat
from tf_magics.budget import kernel_ledger
from tf_magics.cost import MapEstimate
from tf_magics.errors import MapBudgetExceeded, MapError
from tf_magics.events import Event, MapProgress, Notice
from tf_testing.fake_openai import FakeOpenAI, TextReply

USAGE = {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(default=TextReply("ok", usage=USAGE)) as fake:
        yield fake


def _chat(server: FakeOpenAI, **settings: Any) -> Chat:
    settings.setdefault("confirm_map_rows", 0)
    return Chat(base_url=server.base_url, model="fake-model", **settings)


ROWS = [f"row {n}" for n in range(12)]


def test_the_summary_and_the_progress_show_the_cost(server: FakeOpenAI) -> None:
    chat = _chat(server, prices={"fake-model": [1.0, 5.0]})
    seen: list[Event] = []
    chat.map("Say {text}", ROWS, on_event=seen.append)
    summary = chat.last_map
    assert summary is not None
    expected = 12 * (100 * 1.0 + 20 * 5.0) / 1e6
    assert summary.cost == pytest.approx(expected)
    assert "$0.0024" in summary.line()
    final = [e for e in seen if isinstance(e, MapProgress)][-1]
    assert final.final and final.cost == pytest.approx(expected)


def test_an_unknown_price_is_said_not_shown_as_zero(server: FakeOpenAI) -> None:
    chat = _chat(server, prices={"another-model": [1.0, 1.0]})
    chat.map("Say {text}", ROWS[:2])
    assert chat.last_map is not None and chat.last_map.cost is None
    assert "cost unknown" in chat.last_map.line()
    bare = _chat(server)
    bare.map("Say {text}", ROWS[:2])
    assert bare.last_map is not None and "cost" not in bare.last_map.line()


def test_a_map_stops_at_the_cap_keeping_its_rows_and_never_sends_past_it(
    server: FakeOpenAI,
) -> None:
    # Each request: ~20 prompt tokens estimated + max_tokens 50 reserved; 120 used.
    chat = _chat(server, budget_tokens=500, max_tokens=50)
    with pytest.raises(MapBudgetExceeded) as caught:
        chat.map("Say {text}", ROWS, concurrency=1)
    error = caught.value
    sent = len(server.chat_requests)
    assert 0 < sent < len(ROWS)
    assert kernel_ledger().spent_tokens == sent * 120 <= 500
    result = error.result
    assert result[:sent] == ["ok"] * sent
    assert [str(r) for r in result[sent:]] == ["not run: the spending cap was reached"] * (
        len(ROWS) - sent
    )
    assert f"{sent:,} of 12 rows finished" in str(error)
    assert "budget_tokens" in str(error.hint)
    assert error.summary is not None and error.summary.stopped == "budget"
    assert isinstance(error, MapError)


def test_rows_in_flight_finish_when_the_cap_is_reached(server: FakeOpenAI) -> None:
    server.default = TextReply("ok", usage=USAGE, first_token_delay=0.05)
    chat = _chat(server, budget_tokens=700, max_tokens=50)
    with pytest.raises(MapBudgetExceeded) as caught:
        chat.map("Say {text}", ROWS, concurrency=4)
    finished = [row for row in caught.value.result if row == "ok"]
    # Every request that was sent was answered and kept: none was cut off by the stop.
    assert len(finished) == len(server.chat_requests)


def test_a_large_map_is_estimated_and_declined_when_no_one_can_confirm(
    server: FakeOpenAI,
) -> None:
    chat = _chat(server, confirm_map_rows=10, prices={"fake-model": [1.0, 2.0]}, max_tokens=100)
    with pytest.raises(MapError, match="Not started: no one could confirm") as caught:
        chat.map("Say {text}", ROWS)
    assert "12 rows" in str(caught.value) and "at most 1,200 completion tokens" in str(caught.value)
    assert "confirm_map_rows=13" in str(caught.value.hint)
    assert "confirm_spend" in str(caught.value.hint)
    assert server.chat_requests == []


def test_the_person_sees_the_estimate_and_decides(server: FakeOpenAI) -> None:
    asked: list[MapEstimate] = []

    def decline(estimate: MapEstimate) -> bool:
        asked.append(estimate)
        return False

    chat = _chat(server, confirm_map_rows=10, prices={"fake-model": [1.0, 2.0]}, max_tokens=100)
    chat.confirm_spend = decline
    with pytest.raises(MapError, match="Not started: declined"):
        chat.map("Say {text}", ROWS + ROWS[:3])
    (estimate,) = asked
    assert (estimate.rows, estimate.requests) == (15, 12)
    assert estimate.max_completion_tokens == 1_200
    assert estimate.max_cost is not None and estimate.prompt_cost is not None
    assert estimate.max_cost == pytest.approx((estimate.prompt_tokens * 1.0 + 1_200 * 2.0) / 1e6)
    assert server.chat_requests == []

    seen: list[Event] = []
    chat.confirm_spend = lambda estimate: True
    chat.map("Say {text}", ROWS, on_event=seen.append)
    assert len(server.chat_requests) == 12
    notices = [event.text for event in seen if isinstance(event, Notice)]
    assert any(text.startswith("Estimate: 12 rows") for text in notices)


def test_small_maps_are_not_asked_about(server: FakeOpenAI) -> None:
    chat = _chat(server, confirm_map_rows=1_000)
    chat.map("Say {text}", ROWS)
    assert len(server.chat_requests) == 12


def test_the_estimate_counts_the_prompts_as_sent() -> None:
    from tf_magics import ChatSettings
    from tf_magics.data.spend import estimate_map

    options = ChatSettings(base_url="http://127.0.0.1:9/v1", model="m", max_tokens=10).resolve()
    short = estimate_map(["hi"] * 3, 3, None, options, None, None)
    long = estimate_map(["hi " * 400] * 3, 3, None, options, "You are terse.", None)
    assert short.prompt_tokens < long.prompt_tokens
    assert long.prompt_tokens >= 3 * 1_200 // 4
    assert short.max_completion_tokens == 30
    assert "cost unknown (no price for m)" in short.text()
