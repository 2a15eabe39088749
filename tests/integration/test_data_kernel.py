"""Structured replies and ``%%chat --map`` in a real Jupyter kernel, against a recording server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from jupyter_core.utils import ensure_event_loop

from tf_testing.fake_openai import Dynamic, FakeOpenAI, RecordedRequest, ResponseSpec, TextReply
from tf_testing.kernels import KernelSession, kernel_session

pytestmark = pytest.mark.kernel

SETUP = """
%load_ext tf_magics
%config ChatSettings.base_url = {url!r}
%config ChatSettings.model = 'fake-model'
import pandas as pd
from dataclasses import dataclass
from typing import Literal

@dataclass
class Verdict:
    label: Literal["pos", "neg"]
    row: int

reviews = pd.DataFrame({{"text": [f"review {{n}}" for n in range(200)]}})
"""


def _answer(request: RecordedRequest) -> ResponseSpec:
    """Each row's own verdict, after a fixed latency (odd rows are negative)."""
    n = int(request.json["messages"][-1]["content"].rsplit(" ", 1)[-1])
    value = {"label": "neg" if n % 2 else "pos", "row": n}
    return TextReply(json.dumps(value), first_token_delay=0.02)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(scope="module")
def kernel(server: FakeOpenAI) -> Iterator[KernelSession]:
    with kernel_session() as session:
        setup = session.run(SETUP.format(url=server.base_url))
        assert setup.status == "ok", setup.error
        yield session


@pytest.fixture(autouse=True)
def _fresh(server: FakeOpenAI) -> None:
    server.reset()
    server.max_in_flight = None
    server.default = Dynamic(_answer)


def _printed(run: Any) -> str:
    return "".join(m["content"].get("text", "") for m in run.of_type("stream"))


def test_a_structured_cell_shows_a_table_and_o_gets_the_instance(
    kernel: KernelSession, server: FakeOpenAI
) -> None:
    run = kernel.run("%%chat --new --schema Verdict -o verdict\nJudge review 3")
    assert run.status == "ok", run.error
    (output,) = run.outputs()
    assert '<table class="tf-magics-value' in output["data"]["text/html"]
    assert "Verdict(label='neg', row=3)" in output["data"]["text/plain"]
    check = kernel.run("print(type(verdict).__name__, verdict.label, verdict.row)")
    assert _printed(check).strip() == "Verdict neg 3"
    assert server.chat_requests[-1]["response_format"]["json_schema"]["name"] == "Verdict"


def test_a_map_cell_shows_a_bar_at_a_bounded_rate_then_one_summary(
    kernel: KernelSession, server: FakeOpenAI
) -> None:
    run = kernel.run(
        "%%chat --map reviews --schema Verdict --concurrency 8 -o labelled\nJudge {text}"
    )
    assert run.status == "ok", run.error
    opened = run.of_type("comm_open")
    assert any(
        "IntProgress" in m["content"]["data"]["state"].get("_model_name", "") for m in opened
    )
    updates = [m for m in run.of_type("comm_msg") if m["content"]["data"].get("method") == "update"]
    times = [m["header"]["date"] for m in updates]
    span = (times[-1] - times[0]).total_seconds() if len(times) > 1 else 0.0
    # A bar and a label per redraw, at most ten redraws a second (and the last one).
    assert 2 <= len(updates) <= 2 * (10 * span + 3)
    outputs = run.outputs()
    assert len(outputs) == 1  # nothing per row: the bar, replaced by the summary
    summary = outputs[0]["data"]["text/plain"]
    assert summary.startswith("✓ 200 rows in ") and "200 done" in summary
    assert len(server.chat_requests) == 200 and server.peak_in_flight == 8
    check = kernel.run(
        "print(labelled['row'].tolist() == list(range(200)), "
        "labelled['label'].tolist()[:3], labelled['error'].isna().all())"
    )
    assert _printed(check).strip() == "True ['pos', 'neg', 'pos'] True"


def test_an_interrupted_map_keeps_the_rows_done_and_leaves_nothing_running(
    kernel: KernelSession, server: FakeOpenAI
) -> None:
    def answer(request: RecordedRequest) -> ResponseSpec:
        n = int(request.json["messages"][-1]["content"].rsplit(" ", 1)[-1])
        delay = 0.0 if n < 20 else 60.0  # the rest would take a minute each
        return TextReply(json.dumps({"label": "pos", "row": n}), first_token_delay=delay)

    server.default = Dynamic(answer)

    def interrupt_once_the_quick_rows_are_answered() -> None:
        deadline = time.monotonic() + 30
        while len(server.chat_requests) < 24 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
        kernel.manager.interrupt_kernel()
        ensure_event_loop().close()

    interrupter = threading.Thread(target=interrupt_once_the_quick_rows_are_answered, daemon=True)
    interrupter.start()
    began = time.monotonic()
    run = kernel.run(
        "%%chat --map reviews --schema Verdict --concurrency 4 -o partial\nJudge {text}",
        timeout=60,
    )
    interrupter.join()
    assert time.monotonic() - began < 30
    assert run.status == "error" and run.error is not None
    assert run.error["ename"] == "MapInterrupted"
    (line,) = run.error["traceback"]
    assert "20 of 200 rows finished" in line and "The rows done are in partial." in line
    server.wait_until_idle(timeout=2)  # every request was stopped with the cell
    count = len(server.chat_requests)
    summary = run.outputs()[0]["data"]["text/plain"]
    assert summary.startswith("⏹ Interrupted: 200 rows") and "180 not finished" in summary
    check = kernel.run(
        "print(partial['row'].notna().sum(), (partial['error'] == 'interrupted').sum())"
    )
    assert _printed(check).strip() == "20 180"
    time.sleep(0.3)
    assert len(server.chat_requests) == count  # nothing kept running after the cell


def test_a_429_storm_in_a_kernel_loses_no_row(kernel: KernelSession, server: FakeOpenAI) -> None:
    server.max_in_flight = 4
    run = kernel.run(
        "%%chat --map reviews --schema Verdict --concurrency 16 -o stormy\nJudge {text}",
        timeout=120,
    )
    assert run.status == "ok", run.error
    assert server.rejected > 0
    check = kernel.run(
        "print(stormy['error'].isna().all(), stormy['row'].tolist() == list(range(200)))"
    )
    assert _printed(check).strip() == "True True"
    summary = run.outputs()[0]["data"]["text/plain"]
    assert "rate-limited requests retried" in summary
