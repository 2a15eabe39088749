"""Batch jobs that outlive the kernel: what was submitted, saved in small JSON files.

A job is one ``map`` sent as one or more provider batches. It is written down as soon as its
first batch exists (and again after each), so a kernel restart or a closed laptop loses nothing:
the job can be followed, collected or cancelled later by its id, from any kernel started in the
same directory. The files hold ids, counts and how to rebuild the result (the rows' labels, which
request each row shares, the schema), never a key or a header.

The directory is ``.tf_magics/batches`` next to the notebook (the kernel's working directory):
``jobs.json`` lists the jobs, ``<job id>.rows.json`` holds each job's row layout.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

__all__ = ["DEFAULT_DIRECTORY", "BatchJob", "JobState", "JobStore", "new_job_id"]

#: Where jobs are kept unless told otherwise (relative to the kernel's working directory).
DEFAULT_DIRECTORY = Path(".tf_magics") / "batches"

JobState = Literal["submitting", "submitted", "collected", "abandoned"]


def new_job_id() -> str:
    """A short, sortable id for a job (``job-20261204-153012-ab12``)."""
    return time.strftime("job-%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:4]


@dataclass
class BatchJob:
    """One map submitted to the Batch API.

    Attributes
    ----------
    id
        The job's own id (what ``%chat batch`` commands take; a provider batch id works too).
    batch_ids
        The provider's batches, in order; they hold the requests ``row-0``, ``row-1``... in
        that order, one per distinct prompt.
    base_url, model
        Where it was sent, for following and collecting it from another kernel.
    rows
        How many rows the map has; ``requests`` how many distinct prompts were sent.
    kind
        What the map was given: ``"frame"``, ``"dicts"`` or ``"strings"`` (the result's shape).
    schema_name
        The schema the replies were asked to fit (``None``: text).
    created
        When it was submitted (Unix time).
    state
        ``"submitting"`` while its batches are being created, ``"submitted"``, ``"collected"``
        once its results were read, ``"abandoned"`` when submitting failed (its batches were
        cancelled).
    prices
        The price per million tokens (input, output) at submission, already discounted for the
        Batch API, when known; the cost of what comes back is reckoned with it.
    """

    id: str
    batch_ids: list[str]
    base_url: str
    model: str | None
    rows: int
    requests: int = 0
    kind: str = "strings"
    schema_name: str | None = None
    created: float = field(default_factory=time.time)
    state: JobState = "submitting"
    prices: list[float] | None = None
    currency: str = "$"


class JobStore:
    """The jobs of one directory (see the module docstring).

    Parameters
    ----------
    directory
        Where the files are; created on the first job.
    """

    def __init__(self, directory: str | Path = DEFAULT_DIRECTORY) -> None:
        self.directory = Path(directory)

    @property
    def path(self) -> Path:
        """The file listing the jobs."""
        return self.directory / "jobs.json"

    def jobs(self) -> list[BatchJob]:
        """Every job, oldest first (an unreadable file reads as none)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        known = {f.name for f in fields(BatchJob)}
        jobs = []
        for item in data.get("jobs", []) if isinstance(data, dict) else []:
            with contextlib.suppress(TypeError, KeyError, AttributeError):
                jobs.append(BatchJob(**{k: v for k, v in item.items() if k in known}))
        return jobs

    def find(self, key: str) -> BatchJob | None:
        """The job with this id, or holding this provider batch id."""
        for job in reversed(self.jobs()):
            if key in (job.id, *job.batch_ids):
                return job
        return None

    def save(self, job: BatchJob) -> None:
        """Add or update a job, atomically (a crash never leaves half a file)."""
        jobs = [j for j in self.jobs() if j.id != job.id] + [job]
        text = json.dumps({"jobs": [asdict(j) for j in jobs]}, indent=1, sort_keys=True)
        self._write(self.path, text)

    def save_layout(self, job_id: str, layout: dict[str, Any]) -> None:
        """Keep how the job's rows map to its requests (see :meth:`layout`)."""
        self._write(self.directory / f"{job_id}.rows.json", json.dumps(layout))

    def discard_layout(self, job_id: str) -> None:
        """Forget the layout of a job that was never submitted."""
        with contextlib.suppress(OSError):
            (self.directory / f"{job_id}.rows.json").unlink()

    def layout(self, job_id: str) -> dict[str, Any] | None:
        """The rows' layout saved for a job (``None`` when it is missing or unreadable)."""
        try:
            data = json.loads((self.directory / f"{job_id}.rows.json").read_text("utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _write(self, path: Path, text: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=self.directory)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(text + "\n")
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
