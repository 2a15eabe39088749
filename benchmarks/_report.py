"""The report of ``bench_stream``: what was measured, the targets, and the table.

Targets come from issue 3 ("Performance"); never weaken one to make a run pass.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from benchmarks._harness import CellRun, max_in_window

__all__ = [
    "FIRST_TOKEN_DELAY",
    "FIRST_TOKEN_SPREAD",
    "Naive",
    "Results",
    "Row",
    "Traffic",
    "importtime_table",
    "notes",
    "render_table",
    "seconds",
    "table_rows",
    "times",
]

# The kernel sits idle in the request before the first token. The delay is spread over 0.1 s
# across runs, so the first token meets every phase of the view's 0.1 s timers.
FIRST_TOKEN_DELAY = 0.3
FIRST_TOKEN_SPREAD = 0.1

# Targets (issue 3). Never weaken these to make a run pass.
RATIO_TARGET = 2.0  # %%chat cell time / bare httpx read+parse time
IOPUB_TARGET = 10.0  # IOPub bytes / final output size
RATE_TARGET = 25.0  # display messages in any 1-second window
CPU_TARGET = 0.25  # kernel CPU / wall at the paced rate ("a small fraction")
UPDATES_TARGET = 3.0  # paced: display messages per second of stream ("a few times a second")
LATENCY_TARGET = 0.050  # first token written -> first output with content received
LOAD_TARGET = 0.1  # %load_ext tf_magics in a fresh kernel
FIRST_CALL_TARGET = 0.3  # first %%chat minus the server's time


# --------------------------------------------------------------------------- results


@dataclass
class Row:
    """One line of the report table."""

    figure: str
    ours: str
    target: str = "—"
    baseline: str = "—"
    result: str = "info"


def judge(
    value: float, limit: float, fmt: Callable[[float], str], *, at_least: bool = False
) -> str:
    """``ok``, or ``MISSED`` with the margin."""
    good = value >= limit if at_least else value <= limit
    if good:
        return "ok"
    if at_least:
        return f"MISSED: {fmt(limit - value)} short ({value / limit:.2f}x the target)"
    return f"MISSED by {fmt(value - limit)} ({value / limit:.1f}x the target)"


def seconds(x: float) -> str:
    """Seconds with a sensible number of digits."""
    return f"{x * 1000:.1f} ms" if x < 1 else f"{x:.2f} s"


def times(x: float) -> str:
    """A ratio."""
    return f"{x:.2f}x" if x < 10 else f"{x:,.0f}x"


def kbytes(n: float) -> str:
    """Bytes, humanly."""
    return f"{n / 1e6:,.1f} MB" if n >= 1e6 else f"{n / 1e3:,.1f} kB"


def percent(x: float) -> str:
    """A fraction as a percentage."""
    return f"{x * 100:.1f} %"


def rate(x: float) -> str:
    """Messages per second."""
    return f"{x:.1f}/s"


@dataclass
class Traffic:
    """The output traffic of one cell, summarized."""

    wall: float
    iopub: int
    final: int
    displays: int
    updates: int
    clears: int
    max_window: int

    @classmethod
    def of(cls, run: CellRun) -> Traffic:
        """Summarize a recorded cell."""
        return cls(
            wall=run.wall,
            iopub=run.iopub_bytes,
            final=run.final_size,
            displays=run.count("display_data"),
            updates=run.count("update_display_data"),
            clears=run.count("clear_output"),
            max_window=max_in_window(run.display_times),
        )

    @property
    def ratio(self) -> float:
        """IOPub bytes per byte of final output."""
        return self.iopub / self.final if self.final else float("inf")

    @property
    def messages(self) -> int:
        """Display messages (display_data + update_display_data + clear_output)."""
        return self.displays + self.updates + self.clears

    def describe(self) -> str:
        """The message counts, by type."""
        return f"{self.displays} display + {self.updates} update + {self.clears} clear"


@dataclass
class Naive:
    """The naive per-token baseline on the unpaced reply, and its paced estimate."""

    traffic: Traffic
    seconds: float
    paced_wall: float
    paced_cpu: float
    paced_max_window: int
    behind_at: int | None


@dataclass
class Results:
    """Everything measured, for the table."""

    tokens: int
    rate: float
    ours: list[CellRun] = field(default_factory=list)
    ours_kernel: list[float] = field(default_factory=list)
    bare: list[CellRun] = field(default_factory=list)
    bare_kernel: list[float] = field(default_factory=list)
    paced: CellRun | None = None
    latency: list[float] = field(default_factory=list)
    latency_naive: list[float] = field(default_factory=list)
    latency_nostream: list[float] = field(default_factory=list)
    load_ext: list[float] = field(default_factory=list)
    load_modules: list[str] = field(default_factory=list)
    first_call: list[float] = field(default_factory=list)
    first_bare: list[float] = field(default_factory=list)
    cold_bare: float | None = None
    naive: Naive | None = None
    diagnosis: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- the report


def med(values: Sequence[float]) -> float:
    """The median (0 when empty)."""
    return statistics.median(values) if values else 0.0


def table_rows(res: Results) -> list[Row]:
    """The report, one figure per row."""
    rows: list[Row] = []
    rows += _unpaced_rows(res)
    rows += _paced_rows(res)
    rows += _startup_rows(res)
    return rows


def _unpaced_rows(res: Results) -> list[Row]:
    naive = res.naive
    n = f"{res.tokens:,}-token reply, unpaced"
    a, b = [r.wall for r in res.ours], [r.wall for r in res.bare]
    ratio = med(a) / med(b)
    traffic = [Traffic.of(r) for r in res.ours]
    middle = sorted(traffic, key=lambda t: t.ratio)[len(traffic) // 2]
    worst_window = max(t.max_window for t in traffic)
    naive_wall = f"naive {seconds(naive.traffic.wall)} (1 run)" if naive else "skipped"
    return [
        Row(
            f"1a {n}: %%chat cell wall, request→idle, median [min]",
            f"{seconds(med(a))} [{seconds(min(a))}]",
            baseline=naive_wall,
        ),
        Row(
            "1b bare httpx loop (read + SSE split + json.loads), same kernel",
            f"{seconds(med(b))} [{seconds(min(b))}]",
        ),
        Row(
            "1  cell time / bare loop time (1a/1b, medians)",
            f"{times(ratio)} [min/min {times(min(a) / min(b))}]",
            f"≤ {times(RATIO_TARGET)}",
            f"naive {times(naive.traffic.wall / med(b))}" if naive else "skipped",
            judge(ratio, RATIO_TARGET, times),
        ),
        Row(
            "   same ratio timed inside the kernel (perf_counter around the call)",
            f"{times(med(res.ours_kernel) / med(res.bare_kernel))} "
            f"({seconds(med(res.ours_kernel))} / {seconds(med(res.bare_kernel))})",
            baseline=f"naive {times(naive.seconds / med(res.bare_kernel))}" if naive else "—",
        ),
        Row(
            "1c IOPub bytes / final output size (median run [worst])",
            f"{times(middle.ratio)} [{times(max(t.ratio for t in traffic))}] "
            f"({kbytes(middle.iopub)} / {kbytes(middle.final)})",
            f"≤ {times(IOPUB_TARGET)}",
            f"naive {times(naive.traffic.ratio)} ({kbytes(naive.traffic.iopub)} / "
            f"{kbytes(naive.traffic.final)})"
            if naive
            else "skipped",
            judge(middle.ratio, IOPUB_TARGET, times),
        ),
        Row(
            "1d display msgs in any 1 s window (worst run); mean = msgs / cell wall",
            f"{worst_window} (mean {rate(middle.messages / middle.wall)})",
            f"≤ {RATE_TARGET:g}/s",
            f"naive {naive.traffic.max_window} (mean "
            f"{rate(naive.traffic.messages / naive.traffic.wall)})"
            if naive
            else "skipped",
            judge(worst_window, RATE_TARGET, lambda x: f"{x:g} msgs"),
        ),
        Row(
            "1e display messages (median run)",
            middle.describe(),
            baseline=f"naive {naive.traffic.describe()}" if naive else "skipped",
        ),
    ]


def _paced_rows(res: Results) -> list[Row]:
    if res.paced is None:
        return []
    naive = res.naive
    t = Traffic.of(res.paced)
    stream = res.tokens / res.rate
    cpu = res.paced.cpu_seconds / res.paced.wall
    per_second = (t.displays + t.updates) / stream
    label = f"2  {res.tokens:,} tokens at {res.rate:g}/s"
    est = "naive (est.)"
    return [
        Row(
            f"{label}: cell wall (stream alone takes {seconds(stream)})",
            seconds(t.wall),
            baseline=f"{est} {seconds(naive.paced_wall)}" if naive else "skipped",
        ),
        Row(
            "2  live updates (display + update msgs) per second of stream",
            f"{rate(per_second)} ({t.displays + t.updates} msgs; {t.describe()})",
            f"≥ {UPDATES_TARGET:g}/s",
            f"{est} {res.tokens + 1} msgs" if naive else "skipped",
            judge(per_second, UPDATES_TARGET, rate, at_least=True),
        ),
        Row(
            "2  IOPub bytes / final output size",
            f"{times(t.ratio)} ({kbytes(t.iopub)} / {kbytes(t.final)})",
            f"≤ {times(IOPUB_TARGET)}",
            f"{est} {times(naive.traffic.ratio)}" if naive else "skipped",
            judge(t.ratio, IOPUB_TARGET, times),
        ),
        Row(
            "2  kernel CPU / wall (psutil, whole kernel process)",
            f"{percent(cpu)} ({res.paced.cpu_seconds:.2f} s CPU)",
            f"≤ {percent(CPU_TARGET)}",
            f"{est} {percent(naive.paced_cpu)}"
            + (f", behind from token {naive.behind_at:,}" if naive.behind_at is not None else "")
            if naive
            else "skipped",
            judge(cpu, CPU_TARGET, percent),
        ),
        Row(
            "2  display msgs in any 1 s window",
            str(t.max_window),
            f"≤ {RATE_TARGET:g}/s",
            f"{est} {naive.paced_max_window}" if naive else "skipped",
            judge(t.max_window, RATE_TARGET, lambda x: f"{x:g} msgs"),
        ),
    ]


def _startup_rows(res: Results) -> list[Row]:
    rows: list[Row] = []
    if res.latency:
        worst = max(res.latency)
        rows.append(
            Row(
                "3  first token written → first output showing it, worst [median] of the runs",
                f"{seconds(worst)} [{seconds(med(res.latency))}]",
                f"≤ {seconds(LATENCY_TARGET)}",
                f"naive {seconds(max(res.latency_naive))}; "
                f"no-stream {seconds(max(res.latency_nostream))}",
                judge(worst, LATENCY_TARGET, seconds),
            )
        )
    if res.load_ext:
        load = med(res.load_ext)
        rows.append(
            Row(
                "4  %load_ext tf_magics in a fresh kernel, median [min]",
                f"{seconds(load)} [{seconds(min(res.load_ext))}]",
                f"< {seconds(LOAD_TARGET)}",
                result=judge(load, LOAD_TARGET, seconds),
            )
        )
    if res.first_call:
        overheads = [c - b for c, b in zip(res.first_call, res.first_bare, strict=True)]
        over = med(overheads)
        rows.append(
            Row(
                "5  first %%chat in a fresh kernel minus a warm bare request, median [min]",
                f"{seconds(over)} [{seconds(min(overheads))}] (first %%chat "
                f"{seconds(med(res.first_call))} - bare {seconds(med(res.first_bare))})",
                f"< {seconds(FIRST_CALL_TARGET)}",
                f"cold bare httpx (import + client + request) {seconds(res.cold_bare)}"
                if res.cold_bare is not None
                else "—",
                judge(over, FIRST_CALL_TARGET, seconds),
            )
        )
    return rows


def render_table(rows: Sequence[Row]) -> str:
    """A plain-text table."""
    header = Row("figure", "ours", "target", "baseline", "result")
    cells = [[r.figure, r.ours, r.target, r.baseline, r.result] for r in (header, *rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    lines = []
    for index, c in enumerate(cells):
        lines.append(" | ".join([*(c[i].ljust(widths[i]) for i in range(4)), c[4]]).rstrip())
        if index == 0:
            lines.append("-+-".join("-" * w for w in [*widths, 6]))
    return "\n".join(lines)


def importtime_table(what: str, text: str, top: int) -> str:
    """The slowest imports in ``-X importtime`` output, by cumulative time."""
    parsed: list[tuple[int, int, str]] = []
    for line in text.splitlines():
        parts = line.split("|")
        if line.startswith("import time:") and len(parts) == 3 and parts[1].strip().isdigit():
            parsed.append((int(parts[1]), int(parts[0].split(":")[1]), parts[2].rstrip()))
    total = sum(cum for cum, _, name in parsed if not name.startswith("  "))
    parsed.sort(reverse=True)
    lines = [
        f"Imports during {what}: {total / 1000:.1f} ms in top-level imports "
        f"({len(parsed)} modules); slowest by cumulative time (self time in brackets):"
    ]
    lines += [
        f"  {cum / 1000:8.1f} ms [{own / 1000:6.1f}]  {name}" for cum, own, name in parsed[:top]
    ]
    return "\n".join(lines)


def notes(res: Results, args: argparse.Namespace) -> str:
    """How each figure was measured (printed under the table)."""
    naive = res.naive
    lines = [
        f"Runs: {args.repeat} per timed case (median shown, [min]); tokens={res.tokens:,}; "
        f"paced rate={res.rate:g}/s; fresh kernels={args.fresh}.",
        "Cell wall = execute_request sent → the cell's idle status received (it includes "
        "delivering every output to this client); both cells run a function of "
        "benchmarks/kernel_side.py, so they pay the same fixed per-cell cost.",
        "IOPub bytes = serialized `content` frames of display_data, update_display_data, "
        "clear_output, stream, execute_result and error messages of the cell; final size = "
        "serialized `data` of the last display_data (naive: of its last update).",
        "Message rates use the kernel's header timestamps; 'display msgs' counts display_data, "
        "update_display_data and clear_output.",
        f"Latency: reply paced at {res.rate:g}/s after a first-token delay spread over "
        f"{FIRST_TOKEN_DELAY:g}-{FIRST_TOKEN_DELAY + FIRST_TOKEN_SPREAD:g} s across runs (so "
        "the token meets every phase of the view's 0.1 s timers); server write of the first "
        "content chunk (fake server `on_write` hook) → arrival "
        "here of the first display/update whose text/plain shows it; same clock (this process).",
    ]
    if naive is not None:
        behind = (
            f"falls behind the stream at token {naive.behind_at:,}"
            if naive.behind_at is not None
            else "keeps up"
        )
        lines.append(
            "Naive paced figures are estimates, not a run: the per-token costs of the unpaced "
            "naive run (gaps between its sends) replayed against the paced arrivals; it "
            f"{behind}. Its messages and bytes are those of the unpaced run (one update per token "
            "whatever the pace)."
        )
    return "\n".join(f"- {line}" for line in lines)
