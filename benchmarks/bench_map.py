"""Benchmark of ``%%chat --map``: a real kernel, loopback servers, every figure in one run.

Run from the repository root::

    .venv/bin/python -m benchmarks.bench_map            # full: about 8 minutes
    .venv/bin/python -m benchmarks.bench_map --quick    # smaller runs, about 2 minutes

It starts :class:`tf_testing.fake_openai.FakeOpenAI` servers in this process and real ``python3``
kernels with ``jupyter_client``, and prints one table: each figure of the issue's "Performance"
section next to its target and its baselines. It reports and never gates: the exit code is 0, and
a missed target is printed as ``MISSED`` with the margin. See ``benchmarks/README.md``.

1. 1,000 rows, each answered after 200 ms, at concurrency 32: wall time against the ideal
   ``rows x latency / concurrency``, kernel CPU per row, IOPub bytes of the whole map (the
   progress bar's widget messages included), and the most requests the server saw in flight.
2. The same rows against a server that answers 429 above 16 requests in flight: the map, a
   sequential loop of ``Chat.ask`` and an unbounded ``asyncio.gather`` of ``Chat.aask`` (rows
   lost, requests refused, wall time).
3. 100,000 rows against a server that answers at once: rows per second, and the kernel's memory
   growth per row beyond the result DataFrame itself (its peak while the map runs, and what
   stays after).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks._harness import CellRun, Kernel
from benchmarks._report import Row, judge, kbytes, render_table, seconds
from tf_testing.fake_openai import Dynamic, FakeOpenAI, RecordedRequest, ResponseSpec, TextReply

ROOT = Path(__file__).resolve().parents[1]
LATENCY = 0.2
CONCURRENCY = 32
SERVER_LIMIT = 16
WALL_TARGET = 1.15  # x the ideal
IOPUB_TARGET = 200_000  # bytes
MEMORY_TARGET = 2048  # bytes per row

SETUP = """\
%load_ext tf_magics
%config ChatSettings.base_url = {url!r}
%config ChatSettings.model = 'fake-model'
%config ChatSettings.confirm_map_rows = 0
from benchmarks.map_kernel_side import Label, MemoryProbe, make_rows, sequential, unbounded_gather
rows = make_rows({rows})
warmup = rows.head(50)
"""
MAP_CELL = (
    "%%chat --map rows --schema Label --concurrency {concurrency} -o out\n"
    "Classify review {{n}}: {{text}}"
)
CHECK = (
    "_bench_result = {'ok': bool(out['error'].isna().all()), "
    "'ordered': out['row'].tolist() == out['n'].tolist(), "
    "'elapsed': tf_magics.get_chat().last_map.elapsed, "
    "'rate_limited': tf_magics.get_chat().last_map.rate_limited, "
    "'failed': int(out['error'].notna().sum())}"
)


def log(message: str) -> None:
    """Progress goes to stderr; the table goes to stdout."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def labeller(delay: float) -> ResponseSpec:
    """Answers each row with its own label and row number after ``delay`` seconds."""

    def answer(request: RecordedRequest) -> ResponseSpec:
        text = request.json["messages"][-1]["content"]
        n = int(text.split(":", 1)[0].rsplit(" ", 1)[-1])
        label = "neg" if any(w in text for w in ("awful", "broken", "slow")) else "pos"
        return TextReply(json.dumps({"label": label, "row": n}), first_token_delay=delay)

    return Dynamic(answer)


@dataclass
class Figures:
    """Everything measured, for the table."""

    rows: int
    wall: float = 0.0
    elapsed: float = 0.0
    cpu: float = 0.0
    iopub: int = 0
    outputs: int = 0
    peak: int = 0
    correct: bool = False
    storm: dict[str, Any] | None = None
    sequential: dict[str, Any] | None = None
    gather: dict[str, Any] | None = None
    big_rows: int = 0
    big_wall: float = 0.0
    big_elapsed: float = 0.0
    big_iopub: int = 0
    memory: dict[str, int] | None = None
    result_bytes: int = 0


def _setup(kernel: Kernel, url: str, rows: int) -> None:
    kernel.run(SETUP.format(url=url, rows=rows) + "import tf_magics\n")


def _map(kernel: Kernel, concurrency: int) -> tuple[CellRun, dict[str, Any]]:
    run = kernel.run(MAP_CELL.format(concurrency=concurrency))
    check = kernel.value(CHECK)
    return run, check


def measure_main(kernel: Kernel, server: FakeOpenAI, figures: Figures) -> None:
    """Scenario 1: the map at concurrency 32, 200 ms per row."""
    server.default = labeller(LATENCY)
    kernel.run("%config ChatSettings.base_url = " + repr(server.base_url))
    server.reset_counters()
    log(f"{figures.rows:,} rows, {LATENCY * 1000:.0f} ms each, concurrency {CONCURRENCY}")
    run, check = _map(kernel, CONCURRENCY)
    figures.wall, figures.elapsed, figures.cpu = run.wall, check["elapsed"], run.cpu_seconds
    figures.iopub, figures.peak = run.all_bytes, server.peak_in_flight
    figures.outputs = run.count("display_data")
    figures.correct = check["ok"] and check["ordered"]


def measure_storm(
    kernel: Kernel, limited: FakeOpenAI, figures: Figures, skip_sequential: bool
) -> None:
    """Scenario 2: a server that answers 429 above 16 in flight; the map and two baselines."""
    limited.default = labeller(LATENCY)
    kernel.run("%config ChatSettings.base_url = " + repr(limited.base_url))
    limited.reset_counters()
    log(f"the map against a server that refuses above {SERVER_LIMIT} in flight")
    run, check = _map(kernel, CONCURRENCY)
    figures.storm = {
        "wall": run.wall,
        "lost": check["failed"],
        "refused": limited.rejected,
        "peak": limited.peak_in_flight,
    }
    limited.reset_counters()
    log("unbounded asyncio.gather of Chat.aask")
    gather = kernel.value(f"_bench_result = await unbounded_gather({limited.base_url!r}, rows)")
    figures.gather = {**gather, "refused": limited.rejected, "peak": limited.peak_in_flight}
    if skip_sequential:
        return
    limited.reset_counters()
    log(f"sequential loop of Chat.ask ({figures.rows:,} x {LATENCY:g} s: the longest part)")
    result = kernel.value(f"_bench_result = sequential({limited.base_url!r}, rows)")
    figures.sequential = {**result, "refused": limited.rejected}


def measure_big(server: FakeOpenAI, figures: Figures) -> None:
    """Scenario 3: many rows against an instant server, in a fresh kernel; memory per row."""
    server.default = TextReply("ok")
    kernel = Kernel(ROOT, env={"TF_MAGICS_NO_PREWARM": "1"})
    try:
        _setup(kernel, server.base_url, figures.big_rows)
        kernel.run("big = rows.copy(); del rows; probe = MemoryProbe()")
        log(f"{figures.big_rows:,} rows against an instant server")
        run = kernel.run(
            f"%%chat --map big --concurrency {CONCURRENCY} -o done\nClassify review {{n}}: {{text}}"
        )
        figures.big_wall, figures.big_iopub = run.wall, run.all_bytes
        values = kernel.value(
            "_m = probe.stop()\n"
            "_bench_result = {**_m, 'result': int(done.memory_usage(deep=True).sum()), "
            "'elapsed': tf_magics.get_chat().last_map.elapsed, "
            "'ok': bool(done['error'].isna().all())}"
        )
        figures.big_elapsed = values.pop("elapsed")
        figures.result_bytes = values.pop("result")
        if not values.pop("ok"):
            log("warning: some rows of the big map failed")
        figures.memory = values
    finally:
        kernel.shutdown()


def table(figures: Figures) -> str:
    """The report: each figure next to its target and baseline."""
    ideal = figures.rows * LATENCY / CONCURRENCY
    ratio = figures.wall / ideal
    rows = [
        Row(
            f"{figures.rows:,} rows, wall (cell) / ideal {seconds(ideal)}",
            f"{ratio:.2f}x ({seconds(figures.wall)})",
            f"<= {WALL_TARGET}x",
            _sequential_text(figures),
            judge(ratio, WALL_TARGET, lambda x: f"{x:.2f}x"),
        ),
        Row(
            "  the map itself (first request to last answer)",
            f"{figures.elapsed / ideal:.2f}x ({seconds(figures.elapsed)})",
        ),
        Row("kernel CPU per row", f"{figures.cpu / figures.rows * 1000:.2f} ms"),
        Row(
            "IOPub bytes, whole map (bar + summary)",
            kbytes(figures.iopub),
            f"<= {kbytes(IOPUB_TARGET)}",
            "—",
            judge(figures.iopub, IOPUB_TARGET, kbytes),
        ),
        Row(
            "peak requests in flight (server)",
            str(figures.peak),
            f"= {CONCURRENCY}",
            "—",
            "ok" if figures.peak == CONCURRENCY else f"MISSED ({figures.peak} != {CONCURRENCY})",
        ),
        Row("rows correct and in input order", "yes" if figures.correct else "NO"),
    ]
    rows += _storm_rows(figures)
    rows += _big_rows(figures)
    return render_table(rows)


def _sequential_text(figures: Figures) -> str:
    if figures.sequential is None:
        return "sequential: not run"
    return f"sequential: {seconds(figures.sequential['wall'])}"


def _storm_rows(figures: Figures) -> list[Row]:
    storm, gather, sequential = figures.storm, figures.gather, figures.sequential
    if storm is None or gather is None:
        return []
    rows = [
        Row(
            f"429 above {SERVER_LIMIT} in flight: map, rows lost",
            f"{storm['lost']} of {figures.rows:,}",
            "0",
            f"gather: {gather['lost']:,} lost",
            "ok" if storm["lost"] == 0 else f"MISSED ({storm['lost']} lost)",
        ),
        Row(
            "  map: 429s answered (each retried), peak in flight",
            f"{storm['refused']:,}, {storm['peak']}",
            "—",
            f"gather: {gather['refused']:,}, {gather['peak']}",
        ),
        Row(
            "  map wall time",
            seconds(storm["wall"]),
            "—",
            f"gather: {seconds(gather['wall'])}",
        ),
    ]
    if gather.get("kinds"):
        kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(gather["kinds"].items()))
        rows.append(Row("  gather: how rows were lost", "—", "—", kinds))
    if sequential is not None:
        rows.append(
            Row(
                "  sequential Chat.ask loop: lost, wall",
                "—",
                "—",
                f"{sequential['lost']} lost, {seconds(sequential['wall'])}",
            )
        )
    return rows


def _big_rows(figures: Figures) -> list[Row]:
    memory = figures.memory
    if memory is None:
        return []
    count = figures.big_rows
    peak = (memory["peak"] - memory["baseline"] - figures.result_bytes) / count
    after = (memory["after"] - memory["baseline"] - figures.result_bytes) / count
    return [
        Row(f"{count:,} rows, instant server: rows/s (cell)", f"{count / figures.big_wall:,.0f}"),
        Row("  rows/s of the map itself", f"{count / figures.big_elapsed:,.0f}"),
        Row(
            "  memory per row beyond the result, at the peak",
            f"{peak:,.0f} B",
            f"<= {MEMORY_TARGET:,} B",
            "—",
            judge(peak, MEMORY_TARGET, lambda x: f"{x:,.0f} B"),
        ),
        Row("  memory per row kept after the map", f"{after:,.0f} B"),
        Row("  result DataFrame", kbytes(figures.result_bytes)),
        Row("  IOPub bytes (bar for the whole run + summary)", kbytes(figures.big_iopub)),
    ]


def notes(args: argparse.Namespace) -> str:
    """What the table counts."""
    return "\n".join(
        [
            "",
            f"Load average at the start: {args.load_before}; at the end: {os.getloadavg()[0]:.2f}.",
            "Wall (cell): execute_request sent -> the cell's idle status, as a user waits for it.",
            "IOPub bytes: serialized content of every output and widget (comm) message.",
            "Memory: the kernel's RSS, sampled every 20 ms while the map runs, minus the RSS",
            "before it and minus the result DataFrame (memory_usage(deep=True)); per input row.",
            "The servers run in this process (one thread per connection); the kernels are",
            "separate processes on the same machine.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Run every scenario and print the table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_map")
    parser.add_argument("--quick", action="store_true", help="fewer rows (about 2 minutes)")
    parser.add_argument("--rows", type=int, default=None, help="rows of scenarios 1 and 2")
    parser.add_argument("--big-rows", type=int, default=None, help="rows of scenario 3")
    parser.add_argument("--skip-sequential", action="store_true", help="skip the slow baseline")
    args = parser.parse_args(argv)
    args.load_before = f"{os.getloadavg()[0]:.2f}"
    figures = Figures(rows=args.rows or (200 if args.quick else 1000))
    figures.big_rows = args.big_rows or (10_000 if args.quick else 100_000)
    with (
        FakeOpenAI() as server,
        FakeOpenAI(max_in_flight=SERVER_LIMIT) as limited,
    ):
        kernel = Kernel(ROOT, env={"TF_MAGICS_NO_PREWARM": "1"})
        try:
            _setup(kernel, server.base_url, figures.rows)
            # The first map imports what maps need (ipywidgets...): not part of the figures.
            kernel.run("%%chat --map warmup --concurrency 4 -o warm\nWarm up {n}")
            measure_main(kernel, server, figures)
            measure_storm(kernel, limited, figures, args.skip_sequential)
        finally:
            kernel.shutdown()
        measure_big(server, figures)
    print(table(figures))
    print(notes(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
