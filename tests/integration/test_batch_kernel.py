"""``%%chat --map DATA --batch`` and ``%chat batch`` in real kernels, across a kernel restart."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_core.utils import ensure_event_loop

from tf_testing.fake_openai import Dynamic, FakeBatches, FakeOpenAI, RecordedRequest, TextReply
from tf_testing.kernels import KernelSession, kernel_session

pytestmark = pytest.mark.kernel

SETUP = """
%load_ext tf_magics
%config ChatSettings.base_url = {url!r}
%config ChatSettings.model = 'fake-model'
%config ChatSettings.batch_dir = {jobs!r}
%config ChatSettings.batch_poll = 0.05
import pandas as pd
from dataclasses import dataclass
from typing import Literal

@dataclass
class Verdict:
    label: Literal["pos", "neg"]
    row: int

reviews = pd.DataFrame({{"text": [f"review {{n}}" for n in range(40)]}}, index=range(500, 540))
"""


def _verdict(n: int) -> str:
    return json.dumps({"label": "neg" if n % 2 else "pos", "row": n})


def _number(messages: list[dict[str, Any]]) -> int:
    return int(messages[-1]["content"].rsplit(" ", 1)[-1])


def _batch_answer(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-b",
        "object": "chat.completion",
        "model": body.get("model"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": _verdict(_number(body["messages"]))},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 30, "completion_tokens": 10, "total_tokens": 40},
    }


def _interactive(request: RecordedRequest) -> TextReply:
    return TextReply(
        _verdict(_number(request.json["messages"])),
        usage={"prompt_tokens": 30, "completion_tokens": 10, "total_tokens": 40},
    )


@pytest.fixture
def batches() -> FakeBatches:
    return FakeBatches(respond=_batch_answer)


@pytest.fixture
def server(batches: FakeBatches) -> Iterator[FakeOpenAI]:
    with FakeOpenAI(batches=batches, default=Dynamic(_interactive)) as fake:
        yield fake


def _start(server: FakeOpenAI, jobs: Path) -> Any:
    session = kernel_session()
    kernel = session.__enter__()
    setup = kernel.run(SETUP.format(url=server.base_url, jobs=str(jobs)))
    assert setup.status == "ok", setup.error
    return session, kernel


@pytest.fixture
def kernel(server: FakeOpenAI, tmp_path: Path) -> Iterator[KernelSession]:
    session, kernel = _start(server, tmp_path / "jobs")
    try:
        yield kernel
    finally:
        session.__exit__(None, None, None)


def _printed(run: Any) -> str:
    return "".join(m["content"].get("text", "") for m in run.of_type("stream"))


def _text(run: Any) -> str:
    return "\n".join(str(o.get("data", {}).get("text/plain", "")) for o in run.outputs())


def test_a_batch_cell_gives_the_frame_of_the_interactive_cell(
    kernel: KernelSession, server: FakeOpenAI
) -> None:
    interactive = kernel.run("%%chat --map reviews --schema Verdict -o live\nJudge {text}")
    assert interactive.status == "ok", interactive.error
    server.reset()
    run = kernel.run("%%chat --map reviews --schema Verdict --batch -o batched\nJudge {text}")
    assert run.status == "ok", run.error
    assert {r.path.split("/")[2] for r in server.requests} == {"files", "batches"}
    summary = _text(run)
    assert "✓ 40 rows in" in summary and "40 done" in summary and "Batch API" in summary
    assert "submitted" in summary and "%chat batch collect job-" in summary
    check = kernel.run(
        "print(batched.equals(live), type(batched.loc[503, 'label']).__name__, "
        "batched.loc[503, 'label'], batched.index[0])"
    )
    assert _printed(check).strip() == "True str neg 500"


def test_a_job_survives_a_kernel_restart_and_is_collected_by_id(
    server: FakeOpenAI, batches: FakeBatches, tmp_path: Path
) -> None:
    jobs = tmp_path / "jobs"
    batches.steps_per_status = 10**9  # the provider takes its time
    session, kernel = _start(server, jobs)
    try:

        def interrupt_once_submitted() -> None:
            deadline = time.monotonic() + 30
            while not batches.batches and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.5)
            kernel.manager.interrupt_kernel()
            ensure_event_loop().close()

        interrupter = threading.Thread(target=interrupt_once_submitted, daemon=True)
        interrupter.start()
        run = kernel.run("%%chat --map reviews --batch -o batched\nJudge {text}", timeout=60)
        interrupter.join()
        assert run.status == "error" and run.error is not None
        (line,) = run.error["traceback"]
        assert "Stopped waiting; job job-" in line and "goes on at the provider" in line
        assert "%chat batch collect job-" in line
    finally:
        session.__exit__(None, None, None)

    # A new kernel: only the files beside the notebook remember the job.
    (job,) = json.loads((jobs / "jobs.json").read_text())["jobs"]
    session, kernel = _start(server, jobs)
    try:
        listed = _text(kernel.run("%chat batch list"))
        assert job["id"] in listed and "submitted" in listed and "40" in listed
        early = kernel.run(f"%chat batch collect {job['id']} -o got")
        assert early.status == "error" and early.error is not None
        assert "is not finished: 0 of 40 requests done" in early.error["traceback"][0]
        batches.steps_per_status = 1
        for batch in batches.batches.values():
            batch.polls = 0
        deadline = time.monotonic() + 30
        status = ""
        while "Finished" not in status and time.monotonic() < deadline:
            status = _text(kernel.run(f"%chat batch status {job['id']}"))
        assert "batch completed · 40 / 40 requests" in status
        done = kernel.run(f"%chat batch collect {job['id']} --map reviews --schema Verdict -o got")
        assert done.status == "ok", done.error
        assert "40 done" in _text(done)
        check = kernel.run("print(got.shape, got.loc[539, 'label'], got['error'].isna().all())")
        assert _printed(check).strip() == "(40, 4) neg True"
        assert "collected" in _text(kernel.run("%chat batch list"))
    finally:
        session.__exit__(None, None, None)


def test_a_large_map_run_headless_is_declined_with_how_to_allow_it(
    kernel: KernelSession, server: FakeOpenAI
) -> None:
    kernel.run("%chat set confirm_map_rows=10")
    run = kernel.run("%%chat --map reviews -o out\nJudge {text}")
    assert run.status == "error" and run.error is not None
    (line,) = run.error["traceback"]
    assert "Not started: no one could confirm this map (40 rows" in line
    assert "confirm_map_rows=41" in line
    assert server.chat_requests == []


def test_a_map_stops_at_the_cap_and_out_gets_the_rows_done(
    kernel: KernelSession, server: FakeOpenAI
) -> None:
    kernel.run("%chat set budget_tokens=600 max_tokens=20")
    run = kernel.run("%%chat --map reviews --concurrency 1 -o partial\nJudge {text}")
    assert run.status == "error" and run.error is not None
    assert run.error["ename"] == "MapBudgetExceeded"
    sent = len(server.chat_requests)
    assert 0 < sent < 40
    assert f"{sent} of 40 rows finished" in run.error["traceback"][0]
    check = kernel.run(
        "print(partial['reply'].notna().sum(), "
        "(partial['error'] == 'not run: the spending cap was reached').sum())"
    )
    assert _printed(check).strip() == f"{sent} {40 - sent}"
