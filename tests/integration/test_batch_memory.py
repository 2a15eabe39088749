"""A real 10,000-row batch through the loopback Batch API, within the memory goal of ``map``.

The goal (issue 11's, which issue 12 holds batches to): at most 2 kB per row beyond the result
DataFrame itself. The server runs in its own process, so only the client's memory is measured:
the peak of everything Python allocated during the map (tracemalloc), minus the result's size.
"""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from tf_magics import Chat

pd = pytest.importorskip("pandas")

ROWS = 10_000
GOAL_PER_ROW = 2_048


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tf_testing.fake_openai", "--batches"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def test_a_10000_row_batch_stays_within_two_kilobytes_a_row(base_url: str, tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"review": [f"Review number {n}: the kettle was fine, I suppose." for n in range(ROWS)]}
    )
    chat = Chat(
        base_url=base_url,
        model="fake-model",
        batch_dir=str(tmp_path),
        batch_poll=0.01,
        confirm_map_rows=0,
    )
    tracemalloc.start()
    try:
        result = chat.map("Classify: {review}", frame, batch=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result["error"].isna().all()
    assert (
        result["reply"].iloc[1234]
        == "echo: Classify: Review number 1234: the kettle was fine, I suppose."
    )
    result_bytes = int(result.memory_usage(deep=True).sum())
    beyond = (peak - result_bytes) / ROWS
    print(
        f"peak {peak / 1e6:.1f} MB, result {result_bytes / 1e6:.1f} MB, {beyond:,.0f} B/row beyond"
    )
    assert beyond <= GOAL_PER_ROW
