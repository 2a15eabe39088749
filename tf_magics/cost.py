"""What tokens cost: prices per model, and the one function that turns usage into money.

Prices are per million tokens, for the prompt, the completion and (where the server reports cached
prompt tokens) the cached part of the prompt. They come from ``ChatSettings.prices`` or, when a
server publishes them, from ``GET /models``. A cost is only ever computed from a known price: an
unknown price gives ``None`` ("cost unknown"), never zero.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tf_magics.types import Usage

__all__ = [
    "MapEstimate",
    "Price",
    "cost_of",
    "estimate_request_tokens",
    "format_money",
    "parse_price",
]


@dataclass(frozen=True)
class Price:
    """What a million tokens of one model cost.

    Attributes
    ----------
    input, output
        Prompt and completion tokens.
    cached_input
        Prompt tokens read from the server's prompt cache (``None``: billed as ``input``).
    """

    input: float
    output: float
    cached_input: float | None = None

    def scaled(self, factor: float) -> Price:
        """The price times ``factor`` (a Batch API discount)."""
        cached = None if self.cached_input is None else self.cached_input * factor
        return Price(self.input * factor, self.output * factor, cached)

    def per_million(self, currency: str) -> str:
        """``$0.15 / $0.60 per million tokens``."""
        return (
            f"{format_money(self.input, currency)} / {format_money(self.output, currency)} "
            "per million tokens"
        )


def cost_of(usage: Usage | None, price: Price | None) -> float | None:
    """The cost of ``usage`` at ``price``; ``None`` when either is unknown.

    Cached prompt tokens are billed at ``cached_input`` when the price has one.
    """
    if usage is None or price is None:
        return None
    if usage.prompt_tokens is None and usage.completion_tokens is None:
        return None
    prompt = usage.prompt_tokens or 0
    cached = min(usage.cached_tokens or 0, prompt) if price.cached_input is not None else 0
    total = (
        (prompt - cached) * price.input
        + cached * (price.cached_input or 0.0)
        + (usage.completion_tokens or 0) * price.output
    )
    return total / 1_000_000


def parse_price(value: Any, where: str = "a price") -> Price:
    """A :class:`Price` from ``[input, output]`` or ``[input, output, cached_input]``.

    Also accepts ``{"input": .., "output": .., "cached_input": ..}``.

    Raises
    ------
    ValueError
        When it is not two or three non-negative, finite numbers.
    """
    if isinstance(value, Price):
        return value
    if isinstance(value, Mapping):
        value = [
            value.get("input"),
            value.get("output"),
            *([value["cached_input"]] if "cached_input" in value else []),
        ]
    if not isinstance(value, (list, tuple)) or len(value) not in (2, 3):
        raise ValueError(
            f"{where} must be [input, output] or [input, output, cached input], per million tokens"
        )
    numbers = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            raise ValueError(f"{where} must hold numbers, got {item!r}")
        if not math.isfinite(item) or item < 0:
            raise ValueError(f"{where} must hold finite numbers of zero or more, got {item!r}")
        numbers.append(float(item))
    return Price(*numbers)


def estimate_request_tokens(body: Mapping[str, Any]) -> int:
    """A prudent estimate of a request's prompt tokens, before it is sent.

    About four characters per token over the JSON of the messages and tools (what a server
    tokenizes, plus its framing), rounded up, plus a few tokens per message.
    """
    messages = body.get("messages") or []
    text = json.dumps([messages, body.get("tools") or [], body.get("response_format")])
    return len(text) // 4 + 1 + 4 * len(messages)


def format_money(amount: float, currency: str) -> str:
    """``$0.0042`` or ``0.0042 EUR``: two significant digits below a cent, cents above."""
    digits = 2 if amount <= 0 else min(6, max(2, 1 - math.floor(math.log10(amount))))
    number = f"{amount:,.{digits}f}"
    symbol = currency.strip()
    if len(symbol) <= 1 and not symbol.isalpha():
        return f"{symbol}{number}"
    return f"{number} {symbol}"


@dataclass(frozen=True)
class MapEstimate:
    """What a map may cost, before it starts.

    Attributes
    ----------
    rows, requests
        Rows in the input, and distinct prompts sent (identical prompts are sent once).
    prompt_tokens
        Estimated prompt tokens over every request (about four characters a token).
    max_completion_tokens
        The upper bound on completion tokens: ``requests * max_tokens``.
    max_tokens
        Each request's ``max_tokens``.
    price
        The model's price (already discounted for a batch), ``None`` when unknown.
    model, currency
        For the message.
    """

    rows: int
    requests: int
    prompt_tokens: int
    max_completion_tokens: int
    max_tokens: int
    price: Price | None
    model: str
    currency: str = "$"
    batch: bool = False

    @property
    def max_tokens_total(self) -> int:
        """Prompt and completion tokens at most."""
        return self.prompt_tokens + self.max_completion_tokens

    @property
    def max_cost(self) -> float | None:
        """The worst case in money (``None`` without a price)."""
        usage = Usage(
            prompt_tokens=self.prompt_tokens, completion_tokens=self.max_completion_tokens
        )
        return cost_of(usage, self.price)

    @property
    def prompt_cost(self) -> float | None:
        """What the prompts alone cost: the least the map can cost if every row is answered."""
        return cost_of(Usage(prompt_tokens=self.prompt_tokens, completion_tokens=0), self.price)

    def text(self) -> str:
        """The estimate in one line, tokens and money."""
        sent = f"{self.rows:,} rows"
        if self.requests != self.rows:
            sent += f" ({self.requests:,} distinct prompts)"
        way = " through the Batch API" if self.batch else ""
        tokens = (
            f"about {self.prompt_tokens:,} prompt tokens + at most "
            f"{self.max_completion_tokens:,} completion tokens (max_tokens={self.max_tokens:,})"
        )
        low, high = self.prompt_cost, self.max_cost
        if low is None or high is None or self.price is None:
            money = f"cost unknown (no price for {self.model})"
        else:
            money = (
                f"{format_money(low, self.currency)} to {format_money(high, self.currency)} at "
                f"{self.price.per_million(self.currency)}"
            )
        return f"{sent}{way}: {tokens}; {money}"
