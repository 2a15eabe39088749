"""The recording file: one JSON object per line, read whole, appended to, pruned on request.

:class:`RecordingFile` keeps the file's entries indexed by request key and notices when the file
changed behind its back (another kernel recorded, someone edited it): it reads it again before
the next lookup. A line that cannot be read (cut off, hand-edited, from another version) is
skipped and reported once, in :attr:`RecordingFile.problems`; it never stops a notebook.

Normal use only appends (a line per recorded reply, so a diff shows what was added). When the
same request is recorded again (record mode), the later line wins. :meth:`prune` rewrites the
file with only the entries this kernel used, :meth:`clear` empties it; both write a temporary
file and rename it over the old one, so a crash never leaves half a file.

Lookups count how many times this kernel sent each request (:meth:`take_occurrence`): the third
identical request is answered by the third recording of it, so a loop that asks the same question
three times at temperature 1 replays its three different answers.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .entry import Entry, read_entry

__all__ = ["RecordingFile", "RecordingSummary", "problems_line", "recording_file"]

_MAX_PROBLEMS_SHOWN = 3


@dataclass(frozen=True)
class RecordingSummary:
    """What a recording file holds (for ``%chat cache``)."""

    path: Path
    exists: bool
    entries: int
    by_model: dict[str, int]
    size: int
    used: int
    problems: tuple[str, ...]


class RecordingFile:
    """A recording file and its index (one object per path: see :func:`recording_file`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._entries: list[Entry] = []
        self._index: dict[str, list[Entry]] = {}
        self._stamp: tuple[int, int] | None = None
        self._occurrences: Counter[str] = Counter()
        self._used: set[tuple[str, str | None, int]] = set()
        #: Why lines were skipped, one line each (``"line 14: it is not JSON"``).
        self.problems: list[str] = []

    def __repr__(self) -> str:
        return f"<RecordingFile {self.path}: {len(self._entries)} entries>"

    # -- reading --

    def refresh(self) -> list[str]:
        """Read the file again if it changed; returns the problems found by this reading."""
        with self._lock:
            stamp = _stamp(self.path)
            if stamp == self._stamp:
                return []
            entries, problems = _read(self.path)
            self._entries = entries
            self._index = {}
            for entry in entries:
                self._index.setdefault(entry.key, []).append(entry)
            self._stamp = stamp
            self.problems = problems
            return problems

    @property
    def entries(self) -> list[Entry]:
        """Every readable entry, in file order."""
        with self._lock:
            self.refresh()
            return list(self._entries)

    def take_occurrence(self, key: str) -> int:
        """How many times this kernel has now sent the request ``key`` (counting this one)."""
        with self._lock:
            return self._occurrences[key] + 1

    def commit_occurrence(self, key: str) -> None:
        """Count a request that was answered (a failed one does not count)."""
        with self._lock:
            self._occurrences[key] += 1

    def find(self, key: str, model: str | None, occurrence: int, *, wrap: bool) -> Entry | None:
        """The recording of the ``occurrence``-th request ``key`` sent by this kernel.

        ``model``: the model the request names (``None`` matches any). ``wrap``: when that
        occurrence was not recorded, answer with the recorded ones in turn (replay mode: a cell
        run once more replays again rather than failing).
        """
        with self._lock:
            self.refresh()
            by_occurrence: dict[int, Entry] = {}
            for entry in self._index.get(key, []):
                if model is None or entry.model == model:
                    by_occurrence[entry.occurrence] = entry  # a later line wins
            if occurrence in by_occurrence:
                return by_occurrence[occurrence]
            if not wrap or not by_occurrence:
                return None
            ordered = sorted(by_occurrence)
            return by_occurrence[ordered[(occurrence - 1) % len(ordered)]]

    def rewind(self) -> None:
        """Count requests from the start again, as a fresh kernel does (what was used is kept)."""
        with self._lock:
            self._occurrences.clear()

    def mark_used(self, entry: Entry) -> None:
        """Remember that this kernel used ``entry`` (:meth:`prune` keeps it)."""
        with self._lock:
            self._used.add((entry.key, entry.model, entry.occurrence))

    # -- writing --

    def append(self, entry: Entry) -> None:
        """Add one entry at the end of the file (created if missing).

        Raises
        ------
        OSError
            When the file cannot be written.
        """
        line = entry.to_line() + "\n"
        with self._lock:
            self.refresh()
            ends_cleanly = _ends_with_newline(self.path)
            with self.path.open("a", encoding="utf-8", newline="\n") as sink:
                # A hand-edited file may lack its last newline: never glue two lines together.
                sink.write(line if ends_cleanly else "\n" + line)
            self._entries.append(entry)
            self._index.setdefault(entry.key, []).append(entry)
            self._stamp = _stamp(self.path)
            self._used.add((entry.key, entry.model, entry.occurrence))

    def prune(self) -> tuple[int, int]:
        """Keep only the entries this kernel used; returns ``(kept, removed)``.

        Raises
        ------
        ValueError
            When this kernel used none (pruning would empty the file: run the notebook first).
        OSError
            When the file cannot be rewritten.
        """
        with self._lock:
            entries = self.entries
            if not self._used:
                raise ValueError("no request of this kernel used the recording yet")
            latest: dict[tuple[str, str | None, int], Entry] = {}
            for entry in entries:
                identity = (entry.key, entry.model, entry.occurrence)
                if identity in self._used:
                    latest.pop(identity, None)
                    latest[identity] = entry  # the later line wins, in the place of the last
            kept = list(latest.values())
            removed = len(entries) - len(kept) + len(self.problems)  # unreadable lines go too
            self._rewrite(kept)
            return len(kept), removed

    def clear(self) -> int:
        """Remove every entry (the file is deleted); returns how many there were."""
        with self._lock:
            count = len(self.entries)
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self._entries, self._index, self.problems = [], {}, []
            self._stamp = None
            self._occurrences.clear()
            self._used.clear()
            return count

    def _rewrite(self, entries: list[Entry]) -> None:
        text = "".join(entry.to_line() + "\n" for entry in entries)
        descriptor, temporary = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
        )
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8", newline="\n") as sink:
                sink.write(text)
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        self._stamp = None
        self.refresh()

    # -- reporting --

    def summary(self) -> RecordingSummary:
        """What the file holds now."""
        with self._lock:
            entries = self.entries
            by_model: Counter[str] = Counter(entry.model or "(not named)" for entry in entries)
            stamp = self._stamp
            used = sum((e.key, e.model, e.occurrence) in self._used for e in entries)
            return RecordingSummary(
                path=self.path,
                exists=stamp is not None,
                entries=len(entries),
                by_model=dict(by_model.most_common()),
                size=stamp[0] if stamp is not None else 0,
                used=used,
                problems=tuple(self.problems),
            )


def problems_line(problems: list[str], path: Path) -> str:
    """One line about skipped lines: how many, and the first few reasons."""
    if problems and not problems[0].startswith("line "):
        return f"The recording {path.name}: {problems[0]}; nothing can be replayed from it."
    shown = "; ".join(problems[:_MAX_PROBLEMS_SHOWN])
    more = f"; and {len(problems) - _MAX_PROBLEMS_SHOWN} more" if len(problems) > 3 else ""
    count = len(problems)
    return (
        f"{count} line{'s' if count > 1 else ''} of the recording {path.name} could not be "
        f"read and {'were' if count > 1 else 'was'} skipped ({shown}{more})."
    )


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_size, status.st_mtime_ns


def _ends_with_newline(path: Path) -> bool:
    try:
        with path.open("rb") as source:
            source.seek(0, os.SEEK_END)
            if source.tell() == 0:
                return True
            source.seek(-1, os.SEEK_END)
            return source.read(1) == b"\n"
    except FileNotFoundError:
        return True


def _read(path: Path) -> tuple[list[Entry], list[str]]:
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return [], []
    except OSError as error:  # unreadable (permissions, a folder): as if empty, and said so
        return [], [f"the file cannot be read ({error.strerror or type(error).__name__})"]
    entries: list[Entry] = []
    problems: list[str] = []
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            entries.append(read_entry(line))
        except ValueError as error:
            problems.append(f"line {number}: {error}")
    return entries, problems


_FILES: dict[Path, RecordingFile] = {}
_FILES_LOCK = threading.Lock()


def recording_file(path: Path) -> RecordingFile:
    """The one :class:`RecordingFile` of this process for ``path``."""
    resolved = path.expanduser().resolve()
    with _FILES_LOCK:
        found = _FILES.get(resolved)
        if found is None:
            found = _FILES[resolved] = RecordingFile(resolved)
        return found
