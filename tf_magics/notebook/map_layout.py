"""The words of a map's progress and of its summary (pure functions: text and escaped HTML)."""

from __future__ import annotations

from tf_magics.cost import format_money
from tf_magics.data import MapSummary
from tf_magics.errors import MapInterrupted
from tf_magics.events import BatchProgress, MapProgress
from tf_magics.render import NO_MATH, escape

from .outputs import Bundle

__all__ = ["batch_text", "progress_html", "progress_text", "summary_bundle"]

_MUTED = "color:var(--jp-ui-font-color2,#666);font-size:0.85em"
_COLOURS = {"error": "#c0392b", "warning": "#b9770e", "info": "inherit"}


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(int(seconds + 0.5), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def progress_text(progress: MapProgress | BatchProgress, elapsed: float) -> str:
    """One line: rows finished of the total, failures, tokens, speed and time left."""
    if isinstance(progress, BatchProgress):
        return batch_text(progress, elapsed)
    parts = [f"{progress.finished:,} / {progress.total:,} rows"]
    if progress.failed:
        parts.append(f"{progress.failed:,} failed")
    if progress.tokens:
        parts.append(f"{progress.tokens:,} tokens")
    if progress.cost is not None:
        parts.append(format_money(progress.cost, progress.currency))
    finished = progress.finished
    rate = finished / elapsed if elapsed > 0 and finished else None
    if rate is not None:
        parts.append(f"{rate:,.1f} rows/s")
        left = progress.total - finished
        if left:
            parts.append(f"ETA {_duration(left / rate)}")
    else:
        parts.append(f"{_duration(elapsed)} elapsed")
    if progress.window < progress.concurrency:
        parts.append(f"slowed to {progress.window} at once (429 Too Many Requests)")
    return " · ".join(parts)


def batch_text(progress: BatchProgress, elapsed: float) -> str:
    """One line for a batch job: its status, requests done and failed, time since submission."""
    status = progress.status.replace("_", " ")
    parts = [f"batch {status}", f"{progress.finished:,} / {progress.total:,} requests"]
    if progress.failed:
        parts.append(f"{progress.failed:,} failed")
    if len(progress.statuses) > 1:
        parts.append(f"{len(progress.statuses)} batches")
    parts.append(f"{_duration(elapsed)} since submitted")
    parts.append(progress.job)
    return " · ".join(parts)


def progress_html(progress: MapProgress | BatchProgress, elapsed: float) -> str:
    """The progress line as escaped, muted HTML (the label next to the bar)."""
    text = escape(progress_text(progress, elapsed))
    return f'<span class="tf-magics-map-progress {NO_MATH}" style="{_MUTED}">{text}</span>'


def summary_lines(
    summary: MapSummary | None, notes: list[str], error: BaseException | None
) -> list[tuple[str, str]]:
    """``(level, text)`` lines: the summary first, then failures and notes."""
    lines: list[tuple[str, str]] = []
    if summary is not None:
        if isinstance(error, MapInterrupted):
            icon, level = "⏹ Interrupted:", "warning"
        elif error is not None:
            icon, level = "✗ Stopped:", "error"
        elif summary.failed:
            icon, level = "⚠", "warning"
        else:
            icon, level = "✓", "info"
        lines.append((level, f"{icon} {summary.line()}"))
        lines.extend(("error", f"  {failure}") for failure in summary.errors)
        if summary.failed > len(summary.errors):
            lines.append(("error", f"  … {summary.failed - len(summary.errors):,} more in 'error'"))
    every = dict.fromkeys([*(summary.notes if summary else []), *notes])
    lines.extend(("info", note) for note in every)
    return lines


def summary_bundle(
    summary: MapSummary | None, notes: list[str], error: BaseException | None = None
) -> Bundle:
    """The output a finished map leaves: its summary line, the first failures, the notes."""
    lines = summary_lines(summary, notes, error)
    html = "".join(
        f'<div class="tf-magics-map-summary {NO_MATH}" style="{_MUTED};color:{_COLOURS[level]}">'
        f"{escape(text)}</div>"
        for level, text in lines
    )
    return {"text/plain": "\n".join(text for _, text in lines), "text/html": html}
