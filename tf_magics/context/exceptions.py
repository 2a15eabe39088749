"""Exceptions: the type and message, a traceback trimmed to the user's code, and the cell.

What the model needs to explain an error is what a person reads first: the last line, the frames
of the notebook's own code and the line that failed, not forty frames inside pandas. Library
frames (site-packages, the standard library) are folded into one line per run, except the frame
that raised; cells are named as IPython names them (``Cell In [7], line 3``), and the source of
the cell that was run is shown with line numbers.
"""

from __future__ import annotations

import os
import sysconfig
import traceback
from typing import Any

from .budget import Budget, Summary

__all__ = ["is_exception", "summarise_exception"]

_CHAINED = 3  # causes and contexts shown, one line each


def is_exception(value: Any) -> bool:
    """An exception instance."""
    return isinstance(value, BaseException)


def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths.get(key, "") for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    return tuple(root for root in roots if root)


def _package(filename: str) -> str | None:
    """The library a file belongs to (``"pandas"``), or ``None`` for the user's own code."""
    normalized = filename.replace("\\", "/")
    for marker in ("/site-packages/", "/dist-packages/"):
        if marker in normalized:
            return normalized.split(marker, 1)[1].split("/", 1)[0].removesuffix(".py")
    if filename.startswith("<frozen") or any(filename.startswith(r) for r in _library_roots()):
        return "the standard library"
    return None


def _shown_path(filename: str) -> str:
    """A short path: inside a library from its package, else relative to the working folder."""
    normalized = filename.replace("\\", "/")
    for marker in ("/site-packages/", "/dist-packages/"):
        if marker in normalized:
            return normalized.split(marker, 1)[1]
    try:
        relative = os.path.relpath(filename)
    except ValueError:
        return filename
    return filename if relative.startswith("..") else relative


def _frame_lines(frame: traceback.FrameSummary, budget: Budget) -> list[str]:
    cell = budget.code_cells(frame.filename) if budget.code_cells else None
    where = f"Cell {cell[0]}" if cell else f'File "{_shown_path(frame.filename)}"'
    lines = [f"  {where}, line {frame.lineno}, in {frame.name}"]
    if frame.line:
        lines.append(f"    {budget.clip(frame.line.strip(), 200)}")
    return lines


def _traceback_lines(frames: traceback.StackSummary, budget: Budget) -> list[str]:
    """The frames, library runs folded into one line (the frame that raised always shown)."""
    lines: list[str] = []
    folded: list[str] = []

    def fold() -> None:
        if folded:
            packages = ", ".join(dict.fromkeys(folded))
            plural = "s" if len(folded) > 1 else ""
            lines.append(f"  … {len(folded)} frame{plural} in {packages}")
            folded.clear()

    for position, frame in enumerate(frames):
        package = _package(frame.filename)
        cell = budget.code_cells(frame.filename) if budget.code_cells else None
        last = position == len(frames) - 1
        if package is not None and cell is None and not last:
            folded.append(package)
            continue
        fold()
        lines += _frame_lines(frame, budget)
    return lines


def _user_frames(exception: BaseException, budget: Budget) -> traceback.StackSummary:
    """The traceback from the first frame of user code on (IPython's own frames dropped).

    Empty when no frame is the user's: a cell that does not compile fails inside IPython, and
    its frames say nothing the message does not.
    """
    frames = traceback.extract_tb(exception.__traceback__)
    for position, frame in enumerate(frames):
        in_cell = budget.code_cells is not None and budget.code_cells(frame.filename) is not None
        if in_cell or _package(frame.filename) is None:
            return traceback.StackSummary.from_list(frames[position:])
    return traceback.StackSummary.from_list([])


def _executed_cell(exception: BaseException, budget: Budget) -> tuple[str, str, int] | None:
    """``(label, source, line)`` of the first notebook cell in the traceback."""
    if budget.code_cells is None:
        return None
    places = [(f.filename, f.lineno or 0) for f in traceback.extract_tb(exception.__traceback__)]
    if isinstance(exception, SyntaxError) and exception.filename:
        places.append((exception.filename, exception.lineno or 0))
    for filename, line in places:
        cell = budget.code_cells(filename)
        if cell is not None:
            return cell[0], cell[1], line
    return None


def _numbered(source: str, failing: int) -> str:
    lines = source.rstrip("\n").split("\n")
    width = len(str(len(lines)))
    return "\n".join(
        f"{'→' if n == failing else ' '}{n:>{width}} | {line}" for n, line in enumerate(lines, 1)
    )


def _chain(exception: BaseException, budget: Budget) -> list[str]:
    lines = []
    current: BaseException | None = exception
    for _ in range(_CHAINED):
        if current is None:
            break
        cause = current.__cause__
        context = None if current.__suppress_context__ else current.__context__
        following = cause or context
        if following is None:
            break
        how = "caused by" if cause is not None else "raised while handling"
        message = " ".join(traceback.format_exception_only(type(following), following)).strip()
        lines.append(f"({how}: {budget.clip(message, 300)})")
        current = following
    return lines


def summarise_exception(exception: BaseException, budget: Budget) -> Summary:
    """The exception's last line, its trimmed traceback, what led to it, and the cell it ran."""
    cell = _executed_cell(exception, budget)
    kind = type(exception).__name__
    description = f"{kind} raised in cell {cell[0]}" if cell else f"{kind} (an exception)"
    message = "".join(traceback.format_exception_only(type(exception), exception)).rstrip()
    filename = getattr(exception, "filename", None)
    if cell is not None and isinstance(filename, str) and filename:
        message = message.replace(f'File "{filename}"', f"Cell {cell[0]}")  # a SyntaxError's cell
    sections = []
    frames = _user_frames(exception, budget)
    if frames:
        heading = "Traceback (most recent call last; library frames folded):"
        text = "\n".join([heading, *_traceback_lines(frames, budget)])
        sections.append(budget.fit(text, budget.share(0.35))[0])
    sections.append(budget.fit(message, budget.share(0.15))[0])
    sections += _chain(exception, budget)
    notes = []
    if cell is not None:
        source, note = budget.fit(_numbered(cell[1], cell[2]), budget.share(0.4))
        sections.append(f"The cell {cell[0]} (→ marks the line that failed):\n{source}")
        notes += [note] if note else []
    return Summary(description, "\n\n".join(sections), notes)
