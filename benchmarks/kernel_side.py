"""What the benchmark runs *inside* the kernel: the timed magic, the bare loop, the baselines.

The benchmark process imports this module in the kernel (``from benchmarks import kernel_side``)
once the kernel is warm; fresh-kernel figures (``%load_ext`` time, first-call overhead) use short
inline code instead, so this module's imports (httpx, json) cannot hide a cold start.

Every function returns a small dict of numbers that the benchmark reads back through the execute
reply's ``user_expressions``.
"""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import threading
import time
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import httpx

__all__ = [
    "bare_stream",
    "naive_stream",
    "no_stream_display",
    "profile_magic",
    "request_body",
    "time_magic",
]

#: What the naive baseline renders with (so its HTML is comparable to ours: tables, fences).
NAIVE_EXTENSIONS = ["fenced_code", "tables"]


@lru_cache(maxsize=1)
def _http() -> httpx.Client:
    # One client reused across runs: the baseline pays no connection or TLS-context setup, so it
    # is as fast as a bare loop can be (the strict choice for the ratio).
    return httpx.Client(timeout=httpx.Timeout(600.0))


def request_body(prompt: str, max_tokens: int) -> dict[str, Any]:
    """The body the bare loops send: what ``%%chat --new`` sends for the same prompt."""
    return {
        "model": "fake-model",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def _shell() -> Any:
    from IPython import get_ipython

    return get_ipython()


def time_magic(line: str, cell: str, output: str = "_bench_text") -> dict[str, float]:
    """Run ``%%chat line`` on ``cell`` exactly as a cell would, timed with ``perf_counter``.

    ``%%chat`` in a cell is transformed by IPython into this very ``run_cell_magic`` call.
    """
    shell = _shell()
    shell.user_ns.pop(output, None)
    start = time.perf_counter()
    shell.run_cell_magic("chat", f"{line} --output {output}", cell)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "chars": len(shell.user_ns.get(output) or "")}


def bare_stream(url: str, body: dict[str, Any]) -> dict[str, float]:
    """The reference: read and parse the stream with a plain httpx loop, concatenating content."""
    start = time.perf_counter()
    parts: list[str] = []
    with _http().stream("POST", url, json=body) as response:
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            chunk = json.loads(data)
            for choice in chunk.get("choices") or ():
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    parts.append(piece)
    text = "".join(parts)
    return {"seconds": time.perf_counter() - start, "chars": len(text)}


def _pieces(url: str, body: dict[str, Any]) -> Iterator[str]:
    with _http().stream("POST", url, json=body) as response:
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                return
            for choice in json.loads(data).get("choices") or ():
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    yield piece


def naive_stream(url: str, body: dict[str, Any]) -> dict[str, float]:
    """The naive per-token view (what chatlab does): after every token, re-render the whole
    accumulated markdown to HTML and ``update_display`` it."""
    import markdown
    from IPython.display import display

    start = time.perf_counter()
    handle = display({"text/plain": ""}, raw=True, display_id=True)
    text = ""
    updates = 0
    for piece in _pieces(url, body):
        text += piece
        html = markdown.markdown(text, extensions=NAIVE_EXTENSIONS)
        handle.update({"text/html": html, "text/plain": text}, raw=True)
        updates += 1
    return {"seconds": time.perf_counter() - start, "chars": len(text), "updates": updates}


def no_stream_display(url: str, body: dict[str, Any]) -> dict[str, float]:
    """The "no streaming" view (jupyter-ai's ``%%ai``, ipython-gpt): wait for the whole reply,
    then display it once."""
    import markdown
    from IPython.display import display

    start = time.perf_counter()
    text = "".join(_pieces(url, body))
    html = markdown.markdown(text, extensions=NAIVE_EXTENSIONS)
    display({"text/html": html, "text/plain": text}, raw=True)
    return {"seconds": time.perf_counter() - start, "chars": len(text)}


def profile_magic(line: str, cell: str, top: int = 25) -> None:
    """Run ``%%chat`` under cProfile on both threads it uses and print the top functions.

    cProfile only sees the thread that enables it, so a second profiler is switched on inside
    tf_magics' private event-loop thread (HTTP, SSE parsing, accumulation) while the first covers
    the cell's thread (event handling, rendering, display).
    """
    from tf_magics._runner import _LOOP  # private, but this is a diagnosis tool

    loop = _LOOP.get()
    cell_profile, loop_profile = cProfile.Profile(), cProfile.Profile()

    def on_loop(action: Any) -> None:
        done = threading.Event()

        def run() -> None:
            action()
            done.set()

        loop.call_soon_threadsafe(run)
        done.wait(5)

    on_loop(loop_profile.enable)
    cell_profile.enable()
    try:
        _shell().run_cell_magic("chat", line, cell)
    finally:
        cell_profile.disable()
        on_loop(loop_profile.disable)
    out = io.StringIO()
    for title, profile in (
        ("cell thread: event handling, rendering, display", cell_profile),
        ("tf_magics-loop thread: HTTP, SSE, accumulation", loop_profile),
    ):
        out.write(f"\n=== {title} (top {top} by cumulative time) ===\n")
        stats = pstats.Stats(profile, stream=out)
        stats.strip_dirs().sort_stats("cumulative").print_stats(top)
    print(out.getvalue())
