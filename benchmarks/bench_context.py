"""How long attaching notebook values takes, and how big the result is, whatever their size.

Run from the repository root::

    .venv/bin/python -m benchmarks.bench_context           # every case, about a minute
    .venv/bin/python -m benchmarks.bench_context --quick   # no 10-million-row frame

Each case summarises one value with :func:`tf_magics.context.attach` at the default budget
(``context_max_tokens`` = 2,000 tokens, ~8,000 characters), in this process: summarising runs on
the cell's thread, so it costs the same here as in a kernel. The masking of secrets before every
request is timed on a long history. It prints each figure next to its target and never gates
(exit code 0, ``MISSED`` with the margin).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from tf_magics._secrets import SecretScanner
from tf_magics.context import attach
from tf_magics.conversation import Conversation
from tf_magics.engine.outgoing import Redactions, scan_conversation

BUDGET_TOKENS = 2_000
BUDGET_CHARS = BUDGET_TOKENS * 4


def mixed_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    """Twelve columns of the usual kinds: numbers, text, categories, dates, flags, some nulls."""
    rng = np.random.default_rng(seed)
    amount = rng.normal(100, 15, rows)
    amount[rng.integers(0, rows, rows // 100)] = np.nan
    return pd.DataFrame(
        {
            "id": np.arange(rows),
            "amount": amount,
            "quantity": rng.integers(0, 50, rows),
            "price": rng.uniform(1, 20, rows).round(2),
            "discount": rng.uniform(0, 0.3, rows),
            "score": rng.standard_normal(rows),
            "region": pd.Categorical(rng.choice(["north", "south", "east", "west"], rows)),
            "product": rng.choice(["espresso", "latte", "tea", "pastry", "juice"], rows).astype(
                object
            ),
            "channel": pd.Categorical(rng.choice(["store", "web", "app"], rows)),
            "when": pd.date_range("2020-01-01", periods=rows, freq="s"),
            "returned": rng.random(rows) < 0.05,
            "note": np.resize(np.array(["", "gift", "late", "vip customer"], dtype=object), rows),
        }
    )


def timed(function: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median seconds of ``repeat`` runs, and the last result."""
    times = []
    result = None
    for _ in range(repeat):
        began = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - began)
    return statistics.median(times), result


def row(name: str, seconds: float, target: float, size: int | None) -> str:
    verdict = "ok" if seconds <= target else f"MISSED by {seconds - target:.2f} s"
    shown = f"{size:,} chars" if size is not None else ""
    fits = "" if size is None else ("within budget" if size <= BUDGET_CHARS + 200 else "OVER")
    timing = f"{seconds * 1000:>9.1f} ms  (target ≤ {target * 1000:,.0f} ms, {verdict})"
    return f"{name:<46} {timing}  {shown} {fits}"


def attachment_case(name: str, value: Any, target: float, repeat: int) -> str:
    seconds, attachments = timed(lambda: attach([("x", value)], max_tokens=BUDGET_TOKENS), repeat)
    text = attachments[0].text
    body = len(text) - len(text.split("\n", 1)[0])
    return row(name, seconds, target, body)


def secret_case(repeat: int) -> str:
    env = {f"SERVICE_{n}_TOKEN": f"tok-{n:04d}-" + "x" * 30 for n in range(20)}
    scanner = SecretScanner.from_environment(env)
    text = "A long message about data, " * 80  # ~2,000 characters

    def scan() -> None:
        conversation = Conversation("You are helpful.")
        for n in range(100):
            conversation.add_user(f"{text} question {n}")
        scan_conversation(conversation, scanner, Redactions())

    seconds, _ = timed(scan, repeat)
    return row("mask 20 secrets in a 100-message history", seconds, 0.05, None)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="skip the 10-million-row frame")
    args = parser.parse_args(argv)
    repeat = 3
    print(f"budget: {BUDGET_TOKENS:,} tokens = {BUDGET_CHARS:,} characters per attachment")
    print(f"{'case':<46} {'median':>12}")
    cases: list[tuple[str, Callable[[], Any], float]] = [
        ("DataFrame 1,092 rows × 12", lambda: mixed_frame(1_092), 0.2),
        ("DataFrame 1,000,000 rows × 12", lambda: mixed_frame(1_000_000), 2.0),
    ]
    if not args.quick:
        cases.append(("DataFrame 10,000,000 rows × 12", lambda: mixed_frame(10_000_000), 2.0))
    cases += [
        (
            "DataFrame 10,000 rows × 2,000 columns",
            lambda: pd.DataFrame(np.ones((10_000, 2_000)), columns=[f"c{n}" for n in range(2_000)]),
            1.0,
        ),
        (
            "numpy array of 20,000,000 floats",
            lambda: np.random.default_rng(0).normal(size=20_000_000),
            1.0,
        ),
        ("list of 10,000,000 ints", lambda: list(range(10_000_000)), 0.2),
        ("str of 50,000,000 characters", lambda: "abc " * 12_500_000, 0.2),
    ]
    for name, make, target in cases:
        print(f"  building {name}…", file=sys.stderr)
        value = make()
        print(attachment_case(name, value, target, repeat), flush=True)
        del value
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.8))
    axes.plot(np.random.default_rng(0).normal(size=1_000).cumsum())
    print(attachment_case("matplotlib figure (6.4 × 4.8 in) → PNG", figure, 0.5, repeat))
    plt.close(figure)
    print(secret_case(repeat))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
