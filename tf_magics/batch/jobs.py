"""Batch jobs that outlive the kernel: what was submitted, saved in a small JSON file.

A job is one ``map`` sent as one or more provider batches. It is written down as soon as its
batches exist, so a kernel restart or a closed laptop loses nothing: the job can be followed,
collected or cancelled later by its id. The file holds ids, counts and how to rebuild the
result (row labels, the result's shape), never a key or a header.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["BatchJob", "JobStore", "new_job_id"]


def new_job_id() -> str:
    """A short, sortable id for a job (``job-20261204-153012-ab12``)."""
    return time.strftime("job-%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:4]


@dataclass
class BatchJob:
    """One submitted map.

    Attributes
    ----------
    id
        The job's own id (what ``%chat batch`` commands take; a provider batch id works too).
    batch_ids
        The provider's batches, in order; row ``i`` is in the batch that holds custom id
        ``row-i``.
    base_url, model
        Where it was sent, for following and collecting it from another kernel.
    rows
        How many rows (requests) it holds.
    shape
        How to rebuild the result: ``{"kind": "dataframe"|"dicts"|"strings", "index": [...],
        "schema": name or None}``.
    created
        When it was submitted (Unix time).
    """

    id: str
    batch_ids: list[str]
    base_url: str
    model: str | None
    rows: int
    shape: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    collected: bool = False


class JobStore:
    """The jobs file (``<notebook>.tf_magics.batches.json``, or one given).

    Parameters
    ----------
    path
        The file; created on the first job.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def jobs(self) -> list[BatchJob]:
        """Every job in the file, oldest first (an unreadable file reads as none)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        jobs = []
        for item in data.get("jobs", []) if isinstance(data, dict) else []:
            with contextlib.suppress(TypeError, KeyError):
                jobs.append(BatchJob(**item))
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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"jobs": [asdict(j) for j in jobs]}, indent=1, sort_keys=True)
        handle, temporary = tempfile.mkstemp(prefix=self.path.name, dir=self.path.parent)
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text + "\n")
        os.replace(temporary, self.path)
