"""How fast record/replay is: replaying a long reply, recording one, finding one in a big file.

A report, not a test: it always exits 0 and prints ``MISSED`` next to any target it misses. It
runs in this process against the scripted loopback server (``tf_testing.fake_openai``) through
the real :class:`tf_magics.Chat`; nothing leaves the machine and the files go to a temporary
folder.

==  =====================================================================  ======================
#   figure                                                                 target
==  =====================================================================  ======================
1   an 8,000-token reply replayed at once: ``chat.ask`` time               ≤ 0.1 s ("instant")
1b  the same reply recorded one token per read (8,000 events), at once     ≤ 0.1 s
2   the same reply sent live, recorded ÷ not recorded (unpaced stream)     ≤ 1.25x
3   replayed at the recorded pace: turn time ÷ recorded time               within 5 %
4   a recording of 1,000 ten-turn conversations: first lookup (reads it)   ≤ 1 s
5   the same file: a hit (key + lookup) once it is read                    ≤ 5 ms
6   the same file: a miss, with what differs from the closest recording    ≤ 0.2 s
==  =====================================================================  ======================

Run from the repository root: ``.venv/bin/python -m benchmarks.bench_replay`` (``--quick`` for
fewer repeats).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tf_magics import Chat
from tf_magics.cache import Entry, RecordReplay, canonical_request, recording_file, request_key
from tf_magics.errors import CacheMissError
from tf_magics.events import ContentDelta
from tf_magics.types import Completion, Usage
from tf_testing.fake_openai import FakeOpenAI, TextReply
from tf_testing.markdown_text import make_markdown_tokens

TOKENS = 8_000
INSTANT_TARGET = 0.1
RECORDING_OVERHEAD_TARGET = 1.25
PACE_TOLERANCE = 0.05
LOAD_TARGET = 1.0
HIT_TARGET = 0.005
MISS_TARGET = 0.2
CONVERSATIONS = 1_000
TURNS = 10


def median_time(action: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """(median, fastest) seconds of ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        action()
        times.append(time.perf_counter() - began)
    return statistics.median(times), min(times)


def verdict(value: float, target: float, *, at_most: bool = True) -> str:
    met = value <= target if at_most else value >= target
    return "met" if met else f"MISSED by {abs(value - target) / target:.0%}"


def long_reply(folder: Path, repeat: int) -> list[tuple[str, str, str, str]]:
    """Figures 1-3: one long reply recorded, replayed at once and at its pace."""
    tokens = make_markdown_tokens(TOKENS)
    rows = []
    with FakeOpenAI() as server:
        server.default = TextReply(tokens)

        def live(mode: str, file: Path) -> Callable[[], Any]:
            def ask() -> None:
                chat = Chat(base_url=server.base_url, model="m", cache=mode, cache_file=str(file))
                chat.ask("Write a long document.", history=False)
                chat.close()

            return ask

        ask = live("off", folder / "unused.jsonl")
        ask()  # warm up: imports, connection pool
        off, _ = median_time(ask, repeat)
        files = iter(range(repeat + 1))
        recorded, _ = median_time(
            lambda: live("record", folder / f"long-{next(files)}.jsonl")(), repeat
        )
        source = folder / "long-0.jsonl"
    size = source.stat().st_size
    replayer = Chat(cache="replay", cache_file=str(source))
    assert replayer.ask("Write a long document.", history=False).text == "".join(tokens)
    instant, fastest = median_time(
        lambda: replayer.ask("Write a long document.", history=False), repeat
    )
    rows.append(
        (
            f"1  {TOKENS:,}-token reply replayed at once (chat.ask)",
            f"{instant * 1000:.1f} ms [min {fastest * 1000:.1f}]",
            f"≤ {INSTANT_TARGET * 1000:.0f} ms",
            verdict(instant, INSTANT_TARGET),
        )
    )
    rows.append(token_by_token(folder, tokens, repeat))
    rows.append(
        (
            "2  sent live and recorded ÷ sent live, unpaced",
            f"{recorded / off:.2f}x ({recorded * 1000:.0f} vs {off * 1000:.0f} ms)",
            f"≤ {RECORDING_OVERHEAD_TARGET:.2f}x",
            verdict(recorded / off, RECORDING_OVERHEAD_TARGET),
        )
    )
    rows.append(("   its line in the recording", f"{size / 1024:,.0f} kB", "—", "info"))
    rows.append(paced(folder))
    return rows


def token_by_token(folder: Path, tokens: list[str], repeat: int) -> tuple[str, str, str, str]:
    """Figure 1b: the worst case, a reply recorded one token per network read."""
    request = {"messages": [{"role": "user", "content": "Token by token."}], "model": "m"}
    text = "".join(tokens)
    entry = Entry(
        request={**request, "max_tokens": 1024},
        occurrence=1,
        events=tuple((n * 0.005, ContentDelta(token)) for n, token in enumerate(tokens)),
        completion=Completion(content=text, finish_reason="stop", model="m", ended="done"),
        elapsed=len(tokens) * 0.005,
        recorded_at=time.time(),
    )
    path = folder / "token-by-token.jsonl"
    path.write_text(entry.to_line() + "\n", encoding="utf-8")
    events: list[Any] = []
    replayer = Chat(cache="replay", cache_file=str(path))
    assert replayer.ask("Token by token.", history=False, on_event=events.append).text == text
    assert sum(isinstance(e, ContentDelta) for e in events) == len(tokens)
    instant, fastest = median_time(lambda: replayer.ask("Token by token.", history=False), repeat)
    return (
        f"1b the same, recorded as {len(tokens):,} events (one per token)",
        f"{instant * 1000:.1f} ms [min {fastest * 1000:.1f}]",
        f"≤ {INSTANT_TARGET * 1000:.0f} ms",
        verdict(instant, INSTANT_TARGET),
    )


def paced(folder: Path) -> tuple[str, str, str, str]:
    """Figure 3: a reply streamed at 100 tokens/s replays in the time it took."""
    with FakeOpenAI() as server:
        server.enqueue(TextReply(make_markdown_tokens(200), tokens_per_second=100))
        file = folder / "paced.jsonl"
        chat = Chat(base_url=server.base_url, model="m", cache="record", cache_file=str(file))
        chat.ask("Slowly.")
        chat.close()
    (entry,) = recording_file(file).entries
    replayer = Chat(cache="replay", cache_file=str(file), replay_pace="recorded")
    began = time.perf_counter()
    replayer.ask("Slowly.")
    ratio = (time.perf_counter() - began) / entry.elapsed
    return (
        "3  replayed at the recorded pace ÷ recorded time",
        f"{ratio:.3f} ({entry.elapsed:.2f} s recorded)",
        f"1 ± {PACE_TOLERANCE:.0%}",
        "met" if abs(ratio - 1) <= PACE_TOLERANCE else f"MISSED by {abs(ratio - 1):.1%}",
    )


def _entry(conversation: int, turns: int) -> Entry:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": f"You are tutor {conversation}."}
    ]
    for turn in range(turns):
        messages.append(
            {"role": "user", "content": f"Question {turn} of conversation {conversation}?"}
        )
        if turn < turns - 1:
            messages.append({"role": "assistant", "content": f"Answer {turn}. " * 40})
    answer = f"Final answer of conversation {conversation}. " * 20
    return Entry(
        request={"messages": messages, "model": "m", "max_tokens": 400, "temperature": 0.0},
        occurrence=1,
        events=tuple(
            (0.01 * n, ContentDelta(piece + " ")) for n, piece in enumerate(answer.split())
        ),
        completion=Completion(
            content=answer,
            finish_reason="stop",
            model="m",
            ended="done",
            usage=Usage(prompt_tokens=900, completion_tokens=120),
        ),
        elapsed=1.5,
        recorded_at=time.time(),
        server="local",
    )


def big_file(folder: Path, repeat: int) -> list[tuple[str, str, str, str]]:
    """Figures 4-6: lookups in a recording of many conversations."""
    path = folder / "big.tf_magics.jsonl"
    lines = [_entry(n, TURNS).to_line() for n in range(CONVERSATIONS)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    probe = _entry(CONVERSATIONS // 2, TURNS).request
    key = request_key(canonical_request(probe))
    file = recording_file(path)
    began = time.perf_counter()
    assert file.find(key, None, 1, wrap=False) is not None
    load = time.perf_counter() - began

    def hit() -> None:
        assert file.find(request_key(canonical_request(probe)), None, 1, wrap=False) is not None

    hit_time, _ = median_time(hit, repeat * 20)
    changed = {**probe, "temperature": 0.7}
    chat = Chat(cache="replay", cache_file=str(path))

    layer = chat.settings.resolve().hook
    assert isinstance(layer, RecordReplay)

    def miss() -> None:
        error = layer.miss(canonical_request(changed))
        assert isinstance(error, CacheMissError)
        assert "temperature 0.7 vs 0" in str(error)

    miss_time, _ = median_time(miss, repeat)
    size = path.stat().st_size / 1024 / 1024
    return [
        (
            f"4  {CONVERSATIONS:,} recorded {TURNS}-turn requests ({size:.1f} MB): first lookup",
            f"{load * 1000:.0f} ms",
            f"≤ {LOAD_TARGET * 1000:.0f} ms",
            verdict(load, LOAD_TARGET),
        ),
        (
            "5  the same file: a hit (key + lookup)",
            f"{hit_time * 1000:.2f} ms",
            f"≤ {HIT_TARGET * 1000:.0f} ms",
            verdict(hit_time, HIT_TARGET),
        ),
        (
            "6  the same file: a miss, with what differs",
            f"{miss_time * 1000:.0f} ms",
            f"≤ {MISS_TARGET * 1000:.0f} ms",
            verdict(miss_time, MISS_TARGET),
        ),
    ]


def render(rows: Sequence[tuple[str, str, str, str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    header = ("figure", "measured", "target", "result")
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args(argv)
    repeat = 3 if args.quick else 7
    with tempfile.TemporaryDirectory(prefix="tf_magics-bench-replay-") as folder:
        rows = long_reply(Path(folder), repeat) + big_file(Path(folder), repeat)
    print(render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
