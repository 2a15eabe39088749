"""What ``bench_map`` runs inside the kernel: the rows, the two baselines, the memory probe.

Imported in the kernel (the repository root is its working directory); nothing here talks to the
benchmark process except through the return values the cells read back.
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "Label",
    "MemoryProbe",
    "make_rows",
    "rss",
    "sequential",
    "unbounded_gather",
]

TEMPLATE = "Classify review {n}: {text}"
_WORDS = ("great", "awful", "fine", "broken", "lovely", "slow", "cheap", "sturdy")


@dataclass
class Label:
    """The structured reply of the benchmark: a sentiment label and the row it answers."""

    label: Literal["pos", "neg"]
    row: int


def make_rows(count: int) -> Any:
    """A DataFrame of ``count`` short reviews (the same for the same count)."""
    import pandas as pd

    texts = [f"{_WORDS[n % 8]} and {_WORDS[(n * 5 + 3) % 8]}" for n in range(count)]
    return pd.DataFrame({"n": range(count), "text": texts})


def _prompt(row: Any) -> str:
    return TEMPLATE.format(n=row.n, text=row.text)


def sequential(base_url: str, frame: Any) -> dict[str, Any]:
    """The naive loop: ``Chat.ask`` row after row (a one-off question each)."""
    from tf_magics import Chat, ToolRegistry

    chat = Chat(base_url=base_url, model="fake-model", tools=ToolRegistry(), stream=False)
    lost = 0
    began = time.perf_counter()
    for row in frame.itertuples():
        try:
            chat.ask(_prompt(row), schema=Label, history=False)
        except Exception:
            lost += 1
    return {"wall": time.perf_counter() - began, "lost": lost, "rows": len(frame)}


async def unbounded_gather(base_url: str, frame: Any) -> dict[str, Any]:
    """The other naive way: every row's ``aask`` at once with ``asyncio.gather``."""
    from tf_magics import Chat, ToolRegistry

    chat = Chat(base_url=base_url, model="fake-model", tools=ToolRegistry(), stream=False)
    began = time.perf_counter()
    results = await asyncio.gather(
        *(chat.aask(_prompt(row), schema=Label, history=False) for row in frame.itertuples()),
        return_exceptions=True,
    )
    wall = time.perf_counter() - began
    await chat.aclose()
    errors = [r for r in results if isinstance(r, BaseException)]
    kinds: dict[str, int] = {}
    for error in errors:
        kinds[type(error).__name__] = kinds.get(type(error).__name__, 0) + 1
    return {"wall": wall, "lost": len(errors), "rows": len(frame), "kinds": kinds}


def rss() -> int:
    """The kernel's resident memory, in bytes."""
    fields = Path("/proc/self/statm").read_text().split()
    return int(fields[1]) * os.sysconf("SC_PAGE_SIZE")


class MemoryProbe:
    """Samples the resident memory on a thread while a cell runs; keeps the peak."""

    def __init__(self, every: float = 0.02) -> None:
        self.every = every
        gc.collect()
        self.baseline = rss()
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="bench-rss", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, rss())

    def stop(self) -> dict[str, int]:
        """Stop sampling: the baseline, the peak and what stays after a collection."""
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss())
        gc.collect()
        return {"baseline": self.baseline, "peak": self.peak, "after": rss()}
