"""Streaming benchmark for ``%%chat``: a real kernel, a loopback server, every figure in one run.

Run from the repository root::

    .venv/bin/python -m benchmarks.bench_stream           # full: 8,000 tokens, 4-8 minutes
    .venv/bin/python -m benchmarks.bench_stream --quick   # 2,000 tokens, ~1 minute

It starts :class:`tf_testing.fake_openai.FakeOpenAI` in this process and real ``python3`` kernels
with ``jupyter_client``, then prints one table: each figure next to its target (issue 3,
"Performance") and next to the naive per-token baseline. It reports and never gates: the exit
code is 0, and a missed target is printed as ``MISSED`` with the margin. See
``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks._harness import CellRun, Kernel, max_in_window
from benchmarks._report import (
    FIRST_TOKEN_DELAY,
    FIRST_TOKEN_SPREAD,
    Naive,
    Results,
    Row,
    Traffic,
    importtime_table,
    notes,
    render_table,
    seconds,
    table_rows,
    times,
)
from tf_testing.fake_openai import FakeOpenAI, TextReply
from tf_testing.markdown_text import make_markdown_tokens

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "Write long notes about streaming."
MARKER = "Quokka"  # the first token of the latency reply: easy to spot in an output
LATENCY_TOKENS = 100  # after the marker, at the paced rate
# A fresh kernel's first bare request: import httpx, make a client, read and parse the stream.
COLD_BARE = """\
import time
_t = time.perf_counter()
import httpx, json
_parts = []
with httpx.Client() as _client:
    _body = {{"model": "fake-model", "stream": True,
             "messages": [{{"role": "user", "content": "Say hello."}}]}}
    with _client.stream("POST", {url!r}, json=_body) as _response:
        for _line in _response.iter_lines():
            if _line.startswith("data: {{"):
                for _choice in json.loads(_line[5:])["choices"]:
                    _parts.append(_choice["delta"].get("content") or "")
_bench_result = time.perf_counter() - _t
"""


def log(message: str) -> None:
    """Progress goes to stderr; the table goes to stdout."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the server side


class FirstContentProbe:
    """Timestamps (``perf_counter``) the server's first write that carries reply content."""

    _CONTENT = re.compile(rb'"content":"[^"]')

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed = False
        self.at: float | None = None

    def arm(self) -> None:
        """Watch for the next content write."""
        with self._lock:
            self.at, self._armed = None, True

    def on_write(self, data: bytes) -> None:
        """The fake server's ``on_write`` hook (runs on its connection thread)."""
        if not self._armed:
            return
        now = time.perf_counter()
        with self._lock:
            if self._armed and self._CONTENT.search(data):
                self.at, self._armed = now, False


# --------------------------------------------------------------------------- the benchmark


class Bench:
    """Runs every scenario against one fake server."""

    def __init__(self, server: FakeOpenAI, probe: FirstContentProbe, args: argparse.Namespace):
        self.server = server
        self.probe = probe
        self.args = args
        self.tokens: list[str] = make_markdown_tokens(args.tokens)
        self.content = "".join(self.tokens)
        self.results = Results(tokens=args.tokens, rate=args.rate)
        self.url = f"{server.base_url}/chat/completions"
        self.max_tokens = args.tokens * 2 + 100
        self.magic_line = f"--new --max-tokens {self.max_tokens}"

    # -- helpers

    def _setup(self, kernel: Kernel) -> None:
        kernel.run(
            "%load_ext tf_magics\n"
            f"%config ChatSettings.base_url = {self.server.base_url!r}\n"
            "from benchmarks import kernel_side\n"
            "import markdown\n"
            f"_bench_body = kernel_side.request_body({PROMPT!r}, {self.max_tokens})\n"
        )

    def _ours(self, kernel: Kernel, spec: TextReply, marker: str | None = None) -> CellRun:
        self.server.enqueue(spec)
        code = f"_bench_result = kernel_side.time_magic({self.magic_line!r}, {PROMPT!r})"
        run = kernel.run(code, expressions={"r": "_bench_result"}, marker=marker)
        self._check(run, spec)
        return run

    def _baseline(
        self, kernel: Kernel, function: str, spec: TextReply, marker: str | None = None
    ) -> CellRun:
        self.server.enqueue(spec)
        code = f"_bench_result = kernel_side.{function}({self.url!r}, _bench_body)"
        run = kernel.run(code, expressions={"r": "_bench_result"}, marker=marker)
        self._check(run, spec)
        return run

    @staticmethod
    def _check(run: CellRun, spec: TextReply) -> None:
        got, want = run.value()["chars"], len(spec.content)
        if got != want:
            raise RuntimeError(f"the kernel received {got} characters of {want}: {run.code!r}")

    def _unpaced(self) -> TextReply:
        return TextReply(self.tokens)

    # -- scenarios

    def fresh_kernels(self) -> None:
        """Figures 4 and 5: ``%load_ext`` and the first ``%%chat`` in fresh kernels."""
        res = self.results
        for index in range(self.args.fresh):
            log(f"fresh kernel {index + 1}/{self.args.fresh}: %load_ext, first %%chat")
            kernel = Kernel(ROOT)
            try:
                loaded = kernel.value(
                    "import sys, time\n"
                    "_before = set(sys.modules)\n"
                    "_t = time.perf_counter()\n"
                    "get_ipython().run_line_magic('load_ext', 'tf_magics')\n"
                    "_bench_result = (time.perf_counter() - _t,"
                    " sorted(set(sys.modules) - _before))\n"
                )
                res.load_ext.append(loaded[0])
                res.load_modules = loaded[1]
                kernel.run(f"%config ChatSettings.base_url = {self.server.base_url!r}")
                first = kernel.value(
                    "_t = time.perf_counter()\n"
                    "get_ipython().run_cell_magic('chat', '--max-tokens 64', 'Say hello.')\n"
                    "_bench_result = time.perf_counter() - _t\n"
                )
                res.first_call.append(first)
                # The server's time: the same short streamed reply, read by a warm bare loop.
                kernel.run("from benchmarks import kernel_side")
                body = "kernel_side.request_body('Say hello.', 64)"
                bare = [
                    kernel.value(
                        f"_bench_result = kernel_side.bare_stream({self.url!r}, {body})['seconds']"
                    )
                    for _ in range(4)
                ]
                res.first_bare.append(min(bare[1:]))  # the first one warms the connection
            finally:
                kernel.shutdown()
        log("fresh kernel: a cold bare httpx request, for reference")
        kernel = Kernel(ROOT)
        try:
            res.cold_bare = kernel.value(COLD_BARE.format(url=self.url))
        finally:
            kernel.shutdown()

    def warm_up(self, kernel: Kernel) -> None:
        """Import and connect everything once, so the steady-state figures are steady."""
        log("warming up the kernel (one %%chat and one bare loop)")
        self._setup(kernel)
        self._ours(kernel, self._unpaced())
        self._baseline(kernel, "bare_stream", self._unpaced())

    def unpaced(self, kernel: Kernel) -> None:
        """Figure 1: the reply as fast as the server can send it, ours and bare, interleaved."""
        res = self.results
        for index in range(self.args.repeat):
            log(f"unpaced {self.args.tokens:,} tokens: run {index + 1}/{self.args.repeat}")
            run = self._ours(kernel, self._unpaced())
            res.ours.append(run)
            res.ours_kernel.append(run.value()["seconds"])
            run = self._baseline(kernel, "bare_stream", self._unpaced())
            res.bare.append(run)
            res.bare_kernel.append(run.value()["seconds"])

    def paced(self, kernel: Kernel) -> None:
        """Figure 2: the same reply at the paced rate."""
        duration = self.args.tokens / self.args.rate
        log(f"paced: {self.args.tokens:,} tokens at {self.args.rate:g}/s (~{duration:.0f} s)")
        spec = TextReply(self.tokens, tokens_per_second=self.args.rate)
        self.results.paced = self._ours(kernel, spec)

    def latency(self, kernel: Kernel) -> None:
        """Figure 3: first token written by the server -> first output with content received."""
        res = self.results
        tokens = [MARKER, " latency", " probe", ".", "\n\n", *make_markdown_tokens(LATENCY_TOKENS)]
        for index in range(self.args.repeat):
            log(f"first visible content: run {index + 1}/{self.args.repeat}")
            delay = FIRST_TOKEN_DELAY + FIRST_TOKEN_SPREAD * (index + 0.5) / self.args.repeat
            spec = TextReply(tokens, tokens_per_second=self.args.rate, first_token_delay=delay)
            for name, target in (
                ("ours", res.latency),
                ("naive_stream", res.latency_naive),
                ("no_stream_display", res.latency_nostream),
            ):
                self.probe.arm()
                if name == "ours":
                    run = self._ours(kernel, spec, marker=MARKER)
                else:
                    run = self._baseline(kernel, name, spec, marker=MARKER)
                if self.probe.at is None or run.first_content_at is None:
                    raise RuntimeError(f"latency ({name}): no first content seen")
                target.append(run.first_content_at - self.probe.at)

    def naive(self, kernel: Kernel) -> None:
        """Figure 6: the naive per-token view on the unpaced reply (once: it is slow)."""
        log(f"naive per-token baseline, unpaced, {self.args.tokens:,} tokens (one run; slow)")
        run = self._baseline(kernel, "naive_stream", self._unpaced())
        sent = [r.sent for r in run.records if r.msg_type == "update_display_data"]
        if len(sent) != len(self.tokens):
            raise RuntimeError(f"naive: {len(sent)} updates received for {len(self.tokens)}")
        # Per-token cost as the kernel paid it (gaps between its sends), replayed against a paced
        # arrival schedule: estimates the paced naive run without spending minutes on it.
        costs = [b - a for a, b in itertools.pairwise(sent)]
        costs.insert(0, costs[0] if costs else 0.0)
        clock, behind_at, paced_times = 0.0, None, []
        for k, cost in enumerate(costs):
            arrival = k / self.args.rate
            if clock > arrival and behind_at is None:
                behind_at = k
            clock = max(clock, arrival) + cost
            paced_times.append(clock)
        self.results.naive = Naive(
            traffic=Traffic.of(run),
            seconds=run.value()["seconds"],
            paced_wall=clock,
            paced_cpu=sum(costs) / clock if clock else 0.0,
            paced_max_window=max_in_window(paced_times),
            behind_at=behind_at,
        )

    def profile(self, kernel: Kernel, paced: bool) -> None:
        """Print where the kernel's time goes during one ``%%chat`` (both of its threads)."""
        tokens = self.tokens if not paced else self.tokens[: min(len(self.tokens), 2000)]
        spec = TextReply(tokens, tokens_per_second=self.args.rate if paced else None)
        what = f"paced at {self.args.rate:g}/s" if paced else "unpaced"
        log(f"profiling one %%chat ({len(tokens):,} tokens, {what})")
        self.server.enqueue(spec)
        run = kernel.run(
            f"kernel_side.profile_magic({self.magic_line!r}, {PROMPT!r}, {self.args.top})"
        )
        self.results.diagnosis.append(
            f"cProfile of one %%chat, {len(tokens):,} tokens, {what}:\n{run.stream_text}"
        )

    def breakdown(self, kernel: Kernel) -> None:
        """Time the layers of ``%%chat`` one by one on the unpaced reply, and profile the view."""
        log("breakdown: timing the layers of %%chat separately")
        default, self.server.default = self.server.default, self._unpaced()
        try:
            parts = kernel.value(
                f"_bench_result = kernel_side.breakdown({self.url!r}, "
                f"{self.server.base_url!r}, _bench_body, {max(5, self.args.repeat)})"
            )
            run = kernel.run(
                f"kernel_side.profile_view({self.server.base_url!r}, {PROMPT!r}, "
                f"{self.max_tokens}, {self.args.top})"
            )
        finally:
            self.server.default = default
        bare = parts["bare httpx loop, sync (1b)"]
        lines = [
            f"Layers of %%chat, {self.args.tokens:,} tokens unpaced, fastest of "
            f"{max(5, self.args.repeat)} runs in the kernel:"
        ]
        for name, value in parts.items():
            if name == "events":
                continue
            lines.append(f"  {seconds(value):>10}  {times(value / bare):>7} bare  {name}")
        lines.append(f"  ({parts['events']:,.0f} events reach the view)")
        self.results.diagnosis.append("\n".join(lines) + "\n" + run.stream_text)

    def first_call_diagnosis(self) -> None:
        """A fresh kernel with ``-X importtime``: imports of ``%load_ext`` and of the first
        ``%%chat``, and a profile of that first call."""
        log("diagnosis: fresh kernel with import timing, profiled first %%chat")
        kernel = Kernel(ROOT, env={"PYTHONPROFILEIMPORTTIME": "1"})
        try:
            kernel.run("from benchmarks import kernel_side")
            loaded = kernel.run("%load_ext tf_magics")
            kernel.run(f"%config ChatSettings.base_url = {self.server.base_url!r}")
            first = kernel.run(
                f"kernel_side.profile_magic('--max-tokens 64', 'Say hello.', {self.args.top})"
            )
        finally:
            kernel.shutdown()
        self.results.diagnosis.append(
            importtime_table("%load_ext tf_magics", loaded.stream_text, 12)
            + "\n\n"
            + importtime_table("first %%chat", first.stream_text, 20)
            + "\n\ncProfile of the first %%chat in a fresh kernel (import timing on):"
            + "".join(
                f"\n{line}" for line in first.stream_text.splitlines() if "import time:" not in line
            )
        )


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_stream", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer tokens and runs (~1 min)")
    parser.add_argument("--tokens", type=int, help="reply length (default 8000; quick 2000)")
    parser.add_argument("--rate", type=float, default=200.0, help="paced tokens/s (200)")
    parser.add_argument("--repeat", type=int, help="runs per timed case (default 5; quick 3)")
    parser.add_argument("--fresh", type=int, help="fresh kernels for figures 4-5 (3; quick 2)")
    parser.add_argument("--skip-naive", action="store_true", help="skip the naive baseline")
    parser.add_argument(
        "--profile", action="store_true", help="print kernel profiles even when targets are met"
    )
    parser.add_argument("--top", type=int, default=25, help="functions per profile (25)")
    args = parser.parse_args(argv)
    args.tokens = args.tokens or (2000 if args.quick else 8000)
    args.repeat = args.repeat or (3 if args.quick else 5)
    args.fresh = args.fresh or (2 if args.quick else 3)
    return args


def run(args: argparse.Namespace) -> tuple[Results, list[Row]]:
    """Every scenario, in an order that keeps them from disturbing each other."""
    probe = FirstContentProbe()
    with FakeOpenAI() as server:
        server.on_write = probe.on_write
        bench = Bench(server, probe, args)
        bench.fresh_kernels()  # first, before any other kernel holds memory or CPU
        kernel = Kernel(ROOT)
        try:
            bench.warm_up(kernel)
            bench.unpaced(kernel)
            bench.latency(kernel)
            bench.paced(kernel)
            rows = table_rows(bench.results)
            missed = {r.figure[:2] for r in rows if r.result.startswith("MISSED")}
            missed |= {"1 ", "2 "} if args.profile else set()
            if "1 " in missed:
                bench.profile(kernel, paced=False)
                bench.breakdown(kernel)
            if "2 " in missed:
                bench.profile(kernel, paced=True)
            if not args.skip_naive:
                bench.naive(kernel)  # last: it leaves the kernel heavy
        finally:
            kernel.shutdown()
        if missed & {"4 ", "5 "} or args.profile:
            bench.first_call_diagnosis()
    res = bench.results
    return res, table_rows(res)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table; always exit 0 (a report, not a gate)."""
    args = parse_args(argv)
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    res, rows = run(args)
    print()
    print(
        f"tf_magics streaming benchmark — {'quick' if args.quick else 'full'} mode, "
        f"{time.perf_counter() - started:.0f} s, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs, load average {load_before:.1f} at start and "
        f"{os.getloadavg()[0]:.1f} at the end (other work on the machine makes timings noisy)"
    )
    print(render_table(rows))
    print()
    print(notes(res, args))
    missed = [r for r in rows if r.result.startswith("MISSED")]
    print()
    if missed:
        print(f"MISSED {len(missed)} target(s):")
        for r in missed:
            print(f"  MISSED  {r.figure.strip()}: {r.ours} (target {r.target}) — {r.result}")
    else:
        print("All targets met.")
    for text in res.diagnosis:
        print()
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
