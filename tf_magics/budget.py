"""A spending cap for the kernel: what has been spent, and whether the next request may go.

Every request passes :meth:`Ledger.reserve` before it is sent: its worst case (the estimated
prompt plus ``max_tokens``, priced when the model has a price) must fit under the cap, counting
what was spent and what requests in flight may still spend. After the reply, :meth:`Ledger.settle`
replaces the reservation with what the usage says (or, when the server reports none, the
estimate). The cap is in money (``ChatSettings.budget``, in the prices' currency) or in tokens
(``ChatSettings.budget_tokens``, for models without a price).

An administrator can impose a cap on every kernel of a notebook server with the environment
variable ``TF_MAGICS_BUDGET`` (``"5"``: five units of money; ``"200000 tokens"``). It is read once,
when tf_magics is first imported in the kernel, so changing ``os.environ`` in a cell does not lift
it, and ``ChatSettings.budget`` can lower it but not raise it. (Python code in the notebook can
still reach anything in its own process: this stops accidents and casual attempts; a hard limit
belongs on the provider's side, on the key.)
"""

from __future__ import annotations

import math
import os
import re
import threading
from dataclasses import dataclass
from typing import Any

from tf_magics.cost import Price, cost_of, estimate_request_tokens, format_money
from tf_magics.errors import BudgetExceededError
from tf_magics.types import Usage

__all__ = [
    "BUDGET_ENV",
    "Caps",
    "EnvironmentBudget",
    "Ledger",
    "Reservation",
    "caps_for",
    "environment_budget",
    "kernel_ledger",
    "parse_budget",
    "read_environment_budget",
]

BUDGET_ENV = "TF_MAGICS_BUDGET"
_TOKENS_RE = re.compile(r"^\s*([0-9][0-9_,]*(?:\.[0-9]*)?)\s*([km]?)\s*tokens?\s*$", re.IGNORECASE)
_SCALE = {"": 1, "k": 1_000, "m": 1_000_000}


@dataclass(frozen=True)
class Caps:
    """The caps in force: money (``None``: none) and tokens (``None``: none)."""

    money: float | None = None
    tokens: int | None = None
    currency: str = "$"
    #: Where the caps come from, for messages ("TF_MAGICS_BUDGET", "ChatSettings.budget").
    source: str = "ChatSettings.budget"

    def __bool__(self) -> bool:
        return self.money is not None or self.tokens is not None


@dataclass(frozen=True)
class Reservation:
    """What one request in flight may spend at most."""

    money: float
    tokens: int
    estimated_prompt: int


def parse_budget(text: str) -> tuple[float | None, int | None]:
    """``"5"`` → ``(5.0, None)``; ``"200k tokens"`` → ``(None, 200000)``.

    Raises
    ------
    ValueError
        When the text is neither a sum nor a number of tokens.
    """
    match = _TOKENS_RE.match(text)
    if match:
        number = float(match.group(1).replace(",", "").replace("_", ""))
        return None, int(number * _SCALE[match.group(2).lower()])
    try:
        money = float(text.strip())
    except ValueError:
        raise ValueError(
            f"{BUDGET_ENV}={text!r} is neither a sum (5) nor tokens (200000 tokens)"
        ) from None
    if not math.isfinite(money) or money < 0:
        raise ValueError(f"{BUDGET_ENV} must be zero or more, got {text!r}")
    return money, None


@dataclass(frozen=True)
class EnvironmentBudget:
    """What ``TF_MAGICS_BUDGET`` said when the kernel started."""

    money: float | None = None
    tokens: int | None = None
    #: Why the variable could not be read (then nothing may be spent until it is fixed).
    problem: str | None = None


def read_environment_budget(environ: dict[str, str] | None = None) -> EnvironmentBudget:
    """Read ``TF_MAGICS_BUDGET`` (see the module docstring)."""
    value = (os.environ if environ is None else environ).get(BUDGET_ENV, "").strip()
    if not value:
        return EnvironmentBudget()
    try:
        money, tokens = parse_budget(value)
    except ValueError as error:
        # A broken administrator setting must not mean "no cap": nothing may be spent.
        return EnvironmentBudget(0.0, 0, f"{error}: nothing is sent until it is fixed")
    return EnvironmentBudget(money, tokens)


# Read once, at import: a cell that edits os.environ afterwards does not lift the cap.
_ENVIRONMENT = read_environment_budget()


def environment_budget() -> EnvironmentBudget:
    """The caps ``TF_MAGICS_BUDGET`` imposed when the kernel started."""
    return _ENVIRONMENT


def caps_for(money: float | None, tokens: int | None, currency: str) -> Caps:
    """The caps in force: the settings', lowered (never raised) by ``TF_MAGICS_BUDGET``."""
    env = environment_budget()
    source = "ChatSettings.budget"
    if env.money is not None and (money is None or env.money <= money):
        money, source = env.money, BUDGET_ENV
    if env.tokens is not None and (tokens is None or env.tokens <= tokens):
        tokens, source = env.tokens, BUDGET_ENV
    return Caps(money, tokens, currency, source)


class Ledger:
    """The kernel's spending: money and tokens spent, and reservations of requests in flight."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.spent_money = 0.0
        self.spent_tokens = 0
        #: Tokens spent on models without a known price (their money is unknown, not zero).
        self.unpriced_tokens = 0
        self._held_money = 0.0
        self._held_tokens = 0

    def reserve(
        self, caps: Caps, body: dict[str, Any], max_tokens: int, price: Price | None, model: str
    ) -> Reservation:
        """Hold the worst case of a request, or refuse it before it is sent.

        Raises
        ------
        BudgetExceededError
            When the worst case does not fit under a cap, in one line with what was spent and
            how to raise the cap.
        """
        return self.hold(caps, estimate_request_tokens(body), max_tokens, price, model)

    def hold(
        self, caps: Caps, prompt: int, completion: int, price: Price | None, model: str
    ) -> Reservation:
        """Hold ``prompt`` and ``completion`` tokens at ``price``, or refuse (see :meth:`reserve`).

        A batch job holds its whole worst case this way, from submission to collection.
        """
        worst_tokens = prompt + completion
        worst_money = cost_of(Usage(prompt_tokens=prompt, completion_tokens=completion), price)
        with self._lock:
            if caps.money is not None:
                if worst_money is None:
                    raise BudgetExceededError(
                        f"The budget is set in money ({caps.source}), but there is no price for "
                        f"{model}, so this request's cost cannot be bounded.",
                        hint="Give it a price (%chat set prices=...), or cap tokens instead "
                        "(%chat set budget_tokens=...).",
                    )
                self._check(caps, "money", self.spent_money + self._held_money, worst_money)
            if caps.tokens is not None:
                self._check(caps, "tokens", self.spent_tokens + self._held_tokens, worst_tokens)
            self._held_money += worst_money or 0.0
            self._held_tokens += worst_tokens
        return Reservation(worst_money or 0.0, worst_tokens, prompt)

    def settle(
        self, reservation: Reservation, usage: Usage | None, price: Price | None, produced: int
    ) -> None:
        """Replace a reservation with what the request really used.

        ``produced`` estimates the completion tokens when the server reports no usage (a
        stream cut off, or a server that never says): the prompt is then counted as estimated.
        """
        if usage is None or (usage.prompt_tokens is None and usage.completion_tokens is None):
            usage = Usage(prompt_tokens=reservation.estimated_prompt, completion_tokens=produced)
        tokens = (usage.prompt_tokens or 0) + (usage.completion_tokens or 0)
        money = cost_of(usage, price)
        with self._lock:
            self._held_money -= reservation.money
            self._held_tokens -= reservation.tokens
            self.spent_tokens += tokens
            if money is None:
                self.unpriced_tokens += tokens
            else:
                self.spent_money += money

    def spent_text(self, caps: Caps) -> str:
        """``"$0.0420 of $5.00"`` / ``"12,345 of 200,000 tokens"``: what was spent, against caps."""
        parts = []
        if caps.money is not None or self.spent_money:
            spent = format_money(self.spent_money, caps.currency)
            cap = f" of {format_money(caps.money, caps.currency)}" if caps.money is not None else ""
            parts.append(spent + cap)
        if caps.tokens is not None or not parts:
            cap = f" of {caps.tokens:,}" if caps.tokens is not None else ""
            parts.append(f"{self.spent_tokens:,}{cap} tokens")
        return ", ".join(parts)

    def _check(self, caps: Caps, kind: str, committed: float, worst: float) -> None:
        cap = caps.money if kind == "money" else caps.tokens
        assert cap is not None
        if committed + worst <= cap:
            return
        if kind == "money":
            needed = format_money(worst, caps.currency)
            spent = format_money(committed, caps.currency)
            limit = format_money(cap, caps.currency)
        else:
            needed, spent, limit = f"{worst:,.0f} tokens", f"{committed:,.0f}", f"{cap:,.0f} tokens"
        if caps.source == BUDGET_ENV:
            how = f"{BUDGET_ENV} sets this cap for the kernel: ask whoever runs the server."
        elif kind == "money":
            how = "Raise it with %chat set budget=..., or lower max_tokens."
        else:
            how = "Raise it with %chat set budget_tokens=..., or lower max_tokens."
        raise BudgetExceededError(
            f"Not sent: this request may cost up to {needed}, and {spent} of the {limit} budget "
            "is spent or reserved.",
            hint=how,
        )


_LEDGER = Ledger()


def kernel_ledger() -> Ledger:
    """The ledger of this kernel (one per process: every chat's requests count against it)."""
    return _LEDGER
