"""What the benchmark runs *inside* the kernel: the timed magic, the bare loop, the baselines.

The benchmark process imports this module in the kernel (``from benchmarks import kernel_side``).
Fresh-kernel figures (``%load_ext`` time, first-call overhead) are timed with short inline code
before it is imported; its own imports are light (httpx, markdown and tf_magics load on first use)
so that the diagnostic profile of a first call still sees a cold start.

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
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

    import httpx

__all__ = [
    "bare_stream",
    "breakdown",
    "naive_stream",
    "no_stream_display",
    "profile_magic",
    "profile_view",
    "request_body",
    "time_magic",
]

#: What the naive baseline renders with (so its HTML is comparable to ours: tables, fences).
NAIVE_EXTENSIONS = ["fenced_code", "tables"]


@lru_cache(maxsize=1)
def _http() -> httpx.Client:
    # One client reused across runs: the baseline pays no connection or TLS-context setup, so it
    # is as fast as a bare loop can be (the strict choice for the ratio).
    import httpx

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
    """The naive per-token view: after every token, re-render the whole accumulated markdown to
    HTML and ``update_display`` it (an in-place display updated on every token)."""
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
    """The "no streaming" view: wait for the whole reply, then display it once (what the project
    brief reports for ``%%ai`` and ipython-gpt)."""
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
    from tf_magics.engine.private_loop import _LOOP  # private, but this is a diagnosis tool

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


# --------------------------------------------------------------------------- diagnosis


class NullOutput:
    """An :class:`~tf_magics.notebook.outputs.Output` that shows nothing (a view without IOPub)."""

    def show(self, bundle: dict[str, str]) -> object:
        return object()

    def update(self, handle: object, bundle: dict[str, str]) -> None:
        pass

    def clear(self, *args: Any, **kwargs: Any) -> None:
        pass


def _fastest(action: Callable[[], object], repeat: int) -> float:
    """The fastest of ``repeat`` runs: a layer's own cost, with the least noise from a busy
    machine."""
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        runs.append(time.perf_counter() - start)
    return min(runs)


@lru_cache(maxsize=1)
def _async_loop() -> tuple[asyncio.AbstractEventLoop, httpx.AsyncClient]:
    """A private event loop on a daemon thread with one AsyncClient: tf_magics' architecture,
    without tf_magics."""
    import asyncio

    import httpx

    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="bench-async-loop", daemon=True).start()
    return loop, httpx.AsyncClient(timeout=httpx.Timeout(600.0))


async def _async_bare(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> int:
    parts: list[str] = []
    async with client.stream("POST", url, json=body) as response:
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            for choice in json.loads(data).get("choices") or ():
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    parts.append(piece)
    return len("".join(parts))


def breakdown(url: str, base_url: str, body: dict[str, Any], repeat: int = 3) -> dict[str, float]:
    """Time the layers of a ``%%chat`` separately, in this warm kernel (fastest of ``repeat``).

    The server must answer every request with the same reply (its ``default``).
    """
    import asyncio

    from tf_magics import Chat
    from tf_magics.events import ContentDelta
    from tf_magics.notebook.live_view import LiveView
    from tf_magics.notebook.outputs import IPythonOutput
    from tf_magics.render import StreamingMarkdown, render_markdown

    max_tokens = body["max_tokens"]
    chat = Chat(base_url=base_url, max_tokens=max_tokens)
    events: list[Any] = []

    def client_only() -> None:
        chat.ask(body["messages"][0]["content"], history=False)

    def client_events() -> None:
        events.clear()
        chat.ask(body["messages"][0]["content"], history=False, on_event=events.append)

    def with_view() -> None:
        view = LiveView(NullOutput())
        reply = chat.ask(body["messages"][0]["content"], history=False, observer=view)
        view.finish(reply)

    def with_display() -> None:
        view = LiveView(IPythonOutput())
        reply = chat.ask(body["messages"][0]["content"], history=False, observer=view)
        view.finish(reply)

    def async_bare() -> None:
        loop, client = _async_loop()
        asyncio.run_coroutine_threadsafe(_async_bare(client, url, body), loop).result()

    def bare() -> None:
        bare_stream(url, body)

    client_events()  # warm, and record the events for the replay below
    text = "".join(e.text for e in events if isinstance(e, ContentDelta))

    def replay() -> None:
        view = LiveView(NullOutput())
        for event in events:
            view.handle(event)

    def feed_only() -> None:
        markdown = StreamingMarkdown()
        for event in events:
            if isinstance(event, ContentDelta):
                markdown.feed(event.text)

    return {
        "bare httpx loop, sync (1b)": _fastest(bare, repeat),
        "bare httpx loop, async, on a private loop thread (result awaited here)": _fastest(
            async_bare, repeat
        ),
        "Chat.ask, no events handler": _fastest(client_only, repeat),
        "Chat.ask, events collected in a list": _fastest(client_events, repeat),
        "Chat.ask + LiveView on a null output (no IOPub)": _fastest(with_view, repeat),
        "Chat.ask + LiveView on IPython's display (IOPub)": _fastest(with_display, repeat),
        "LiveView replay of the recorded events (one thread, no network)": _fastest(replay, repeat),
        "  of which StreamingMarkdown.feed per event": _fastest(feed_only, repeat),
        "render_markdown(whole reply) once": _fastest(lambda: render_markdown(text), repeat),
        "  of which without sanitizing": _fastest(
            lambda: render_markdown(text, sanitize=False), repeat
        ),
        "events": float(len(events)),
    }


def profile_view(base_url: str, prompt: str, max_tokens: int, top: int = 25) -> None:
    """cProfile a LiveView replaying one reply's recorded events (one thread, no network)."""
    from tf_magics import Chat
    from tf_magics.notebook.live_view import LiveView

    events: list[Any] = []
    reply = Chat(base_url=base_url, max_tokens=max_tokens).ask(
        prompt, history=False, on_event=events.append
    )
    profile = cProfile.Profile()
    profile.enable()
    view = LiveView(NullOutput())
    for event in events:
        view.handle(event)
    view.finish(reply)
    profile.disable()
    out = io.StringIO()
    out.write(f"\n=== LiveView replay of {len(events):,} events (top {top} by cumulative) ===\n")
    pstats.Stats(profile, stream=out).strip_dirs().sort_stats("cumulative").print_stats(top)
    print(out.getvalue())
