"""Prices, the cost of a reply, and the kernel's spending cap (issue 12)."""

from __future__ import annotations

from typing import Any

import pytest
from traitlets import TraitError

from tf_magics import Chat, ChatSettings
from tf_magics import budget as budget_module
from tf_magics.budget import EnvironmentBudget, kernel_ledger, parse_budget, read_environment_budget
from tf_magics.cost import Price, cost_of, format_money, parse_price
from tf_magics.errors import BudgetExceededError, ConfigurationError
from tf_magics.notebook.layout import footer_text
from tf_magics.types import Usage
from tf_testing.fake_openai import FakeOpenAI, TextReply

USAGE = {"prompt_tokens": 1_000, "completion_tokens": 500, "total_tokens": 1_500}


# -- arithmetic ------------------------------------------------------------------------------------


def test_cost_is_prompt_and_completion_tokens_at_their_price_per_million() -> None:
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=500_000)
    assert cost_of(usage, Price(2.0, 6.0)) == pytest.approx(5.0)


def test_cached_prompt_tokens_are_billed_at_the_cached_price_when_there_is_one() -> None:
    usage = Usage(prompt_tokens=1_000, completion_tokens=0, cached_tokens=600)
    assert cost_of(usage, Price(10.0, 0.0, 1.0)) == pytest.approx((400 * 10 + 600 * 1) / 1e6)
    assert cost_of(usage, Price(10.0, 0.0)) == pytest.approx(1_000 * 10 / 1e6)


def test_an_unknown_price_or_usage_is_an_unknown_cost_never_zero() -> None:
    assert cost_of(Usage(prompt_tokens=5), None) is None
    assert cost_of(None, Price(1, 1)) is None
    assert cost_of(Usage(), Price(1, 1)) is None


def test_cached_tokens_are_read_from_the_wire_and_survive_a_save() -> None:
    usage = Usage.from_wire({**USAGE, "prompt_tokens_details": {"cached_tokens": 256}})
    assert usage is not None and usage.cached_tokens == 256
    assert Usage.from_wire(usage.to_dict()) == usage


@pytest.mark.parametrize(
    ("value", "price"),
    [
        ([1, 2], Price(1, 2)),
        ((1.5, 2, 0.1), Price(1.5, 2, 0.1)),
        ({"input": 3, "output": 4}, Price(3, 4)),
    ],
)
def test_prices_are_read_from_lists_and_objects(value: Any, price: Price) -> None:
    assert parse_price(value) == price


@pytest.mark.parametrize(
    "value", [[1], [1, 2, 3, 4], [-1, 2], [float("nan"), 1], ["1", 2], "cheap"]
)
def test_a_bad_price_is_refused(value: Any) -> None:
    with pytest.raises(ValueError, match="price"):
        parse_price(value)


def test_money_is_shown_with_enough_digits() -> None:
    assert format_money(0.0042, "$") == "$0.0042"
    assert format_money(12.5, "EUR") == "12.50 EUR"
    assert format_money(0.000012, "$") == "$0.000012"


# -- cost where tokens are shown -----------------------------------------------------------------


def _chat(server: FakeOpenAI, **settings: Any) -> Chat:
    return Chat(base_url=server.base_url, model="fake-model", **settings)


def test_a_reply_knows_its_cost_and_the_footer_shows_it(fake_server: FakeOpenAI) -> None:
    fake_server.enqueue(TextReply("hi", usage=USAGE))
    reply = _chat(fake_server, prices={"fake-model": [2.0, 8.0]}).ask("hello")
    assert reply.cost == pytest.approx((1_000 * 2 + 500 * 8) / 1e6)
    assert "$0.0060" in footer_text(reply)


def test_the_conversation_and_its_turns_add_their_costs(fake_server: FakeOpenAI) -> None:
    fake_server.enqueue(TextReply("one", usage=USAGE), TextReply("two", usage=USAGE))
    chat = _chat(fake_server, prices={"fake-model": [1.0, 1.0]})
    chat.ask("a")
    reply = chat.ask("b")
    assert [t.cost for t in chat.conversation.turns()] == [pytest.approx(0.0015)] * 2
    assert chat.conversation.cost == pytest.approx(0.003)
    assert reply.conversation_cost == pytest.approx(0.003)
    assert "conversation 3,000 tokens, $0.0030" in footer_text(
        reply, conversation_usage=chat.conversation.usage
    )


def test_without_a_price_the_cost_is_unknown_and_said_so_only_when_costs_matter(
    fake_server: FakeOpenAI,
) -> None:
    fake_server.enqueue(TextReply("x", usage=USAGE), TextReply("y", usage=USAGE))
    plain = _chat(fake_server).ask("q")
    assert plain.cost is None and "cost" not in footer_text(plain)
    priced = _chat(fake_server, prices={"other-model": [1, 1]}).ask("q")
    assert priced.cost is None
    assert "cost unknown (no price for fake-model)" in footer_text(priced)


def test_a_price_the_server_publishes_in_models_is_used(fake_server: FakeOpenAI) -> None:
    fake_server.models = [
        {"id": "fake-model", "pricing": {"prompt": "0.000002", "completion": "0.000004"}}
    ]
    fake_server.enqueue(TextReply("x", usage=USAGE))
    chat = Chat(base_url=fake_server.base_url)  # no model set: /models is read for the default
    reply = chat.ask("q")
    assert reply.cost == pytest.approx((1_000 * 2 + 500 * 4) / 1e6)


def test_settings_prices_are_checked() -> None:
    with pytest.raises(TraitError, match="price"):
        ChatSettings(prices={"m": [1]})
    assert ChatSettings(prices={"m": [1, 2]}).prices == {"m": [1, 2]}


# -- the budget ------------------------------------------------------------------------------------


def test_a_request_whose_worst_case_passes_the_cap_is_never_sent(fake_server: FakeOpenAI) -> None:
    chat = _chat(fake_server, prices={"fake-model": [1_000.0, 1_000.0]}, budget=0.5, max_tokens=600)
    with pytest.raises(BudgetExceededError) as caught:
        chat.ask("hello")
    assert fake_server.chat_requests == []
    message = str(caught.value)
    assert "Not sent" in message and "$0.50" in message and "%chat set budget=" in message
    assert "\n" not in message
    assert chat.conversation.messages == []


def test_spending_adds_up_until_the_cap_stops_the_next_request(fake_server: FakeOpenAI) -> None:
    fake_server.enqueue(*[TextReply("ok", usage=USAGE) for _ in range(5)])
    chat = _chat(fake_server, prices={"fake-model": [1.0, 1.0]}, budget=0.0035, max_tokens=600)
    chat.ask("q")
    chat.ask("q")  # $0.0030 spent: the next one's worst case ($0.0006+) would pass $0.0035
    with pytest.raises(BudgetExceededError):
        chat.ask("q")
    assert len(fake_server.chat_requests) == 2
    assert kernel_ledger().spent_money == pytest.approx(0.003)


def test_a_money_budget_refuses_a_model_without_a_price(fake_server: FakeOpenAI) -> None:
    with pytest.raises(BudgetExceededError, match="no price for fake-model"):
        _chat(fake_server, budget=1.0).ask("q")
    assert fake_server.chat_requests == []


def test_a_token_budget_works_without_prices(fake_server: FakeOpenAI) -> None:
    fake_server.enqueue(TextReply("ok", usage=USAGE))
    chat = _chat(fake_server, budget_tokens=2_400, max_tokens=1_000)
    chat.ask("q")
    with pytest.raises(BudgetExceededError, match="tokens"):
        chat.ask("again")
    assert len(fake_server.chat_requests) == 1


def test_the_environment_budget_cannot_be_raised_by_a_cell(
    monkeypatch: pytest.MonkeyPatch, fake_server: FakeOpenAI
) -> None:
    monkeypatch.setattr(budget_module, "_ENVIRONMENT", EnvironmentBudget(money=0.001))
    settings = ChatSettings(
        base_url=fake_server.base_url, model="fake-model", prices={"fake-model": [1, 1]}
    )
    with pytest.raises(TraitError, match="TF_MAGICS_BUDGET caps this kernel"):
        settings.budget = 100
    monkeypatch.setenv("TF_MAGICS_BUDGET", "1000")  # read at import: changing it now lifts nothing
    with pytest.raises(BudgetExceededError, match="TF_MAGICS_BUDGET sets this cap"):
        Chat(settings=settings).ask("q")
    settings.budget = 0.0005  # lowering it is allowed
    with pytest.raises(BudgetExceededError, match="%chat set budget="):
        Chat(settings=settings).ask("q")
    assert fake_server.chat_requests == []


@pytest.mark.parametrize(
    ("text", "caps"),
    [
        ("5", (5.0, None)),
        ("0.25", (0.25, None)),
        ("200000 tokens", (None, 200_000)),
        ("200k tokens", (None, 200_000)),
    ],
)
def test_the_environment_budget_reads_money_or_tokens(text: str, caps: tuple[Any, Any]) -> None:
    assert parse_budget(text) == caps
    assert (
        read_environment_budget({"TF_MAGICS_BUDGET": text}).money,
        read_environment_budget({"TF_MAGICS_BUDGET": text}).tokens,
    ) == caps


def test_a_broken_environment_budget_sends_nothing(
    monkeypatch: pytest.MonkeyPatch, fake_server: FakeOpenAI
) -> None:
    broken = read_environment_budget({"TF_MAGICS_BUDGET": "lots"})
    assert broken.problem is not None
    monkeypatch.setattr(budget_module, "_ENVIRONMENT", broken)
    with pytest.raises(ConfigurationError, match="TF_MAGICS_BUDGET"):
        _chat(fake_server).ask("q")
    assert fake_server.chat_requests == []


def test_a_dry_run_shows_the_most_the_request_may_cost(fake_server: FakeOpenAI) -> None:
    chat = Chat(
        base_url=fake_server.base_url,
        model="fake-model",
        prices={"fake-model": [2.0, 10.0]},
        max_tokens=500,
    )
    preview = chat.preview("How much?")
    assert preview.cost is not None
    assert preview.cost == pytest.approx((preview.prompt_tokens * 2.0 + 500 * 10.0) / 1e6)
    assert f"at most {format_money(preview.cost, '$')}" in preview.size_text()
    assert fake_server.requests == []  # a dry run asks the server nothing, not even its prices
    unpriced = Chat(base_url=fake_server.base_url, model="other-model").preview("How much?")
    assert unpriced.cost is None and "at most" not in unpriced.size_text()
