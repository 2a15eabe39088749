"""Collecting a finished job: its output and error files read back, one outcome per request.

Every request of the job gets exactly one outcome: its completion, its error line, or -- when
the batch ended before answering it (expired, cancelled, failed validation) -- an error that
says so. Outcomes are handed to ``take`` as they are read, so the caller keeps only what a row
needs and a large job's replies never sit in memory all at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tf_magics.client.batches import BatchInfo, download_file
from tf_magics.errors import BatchError

from .jobs import BatchJob
from .results import Outcome, read_results
from .submit import position_of

if TYPE_CHECKING:
    from tf_magics.client import RequestOptions
    from tf_magics.client.http import Client

__all__ = ["collect_job", "unfinished_error"]


def unfinished_error(job: BatchJob, infos: list[BatchInfo]) -> BatchError | None:
    """The error for collecting a job still running (``None`` when every batch has finished)."""
    running = [info for info in infos if not info.finished]
    if not running:
        return None
    done = sum(info.completed + info.failed for info in infos)
    total = sum(info.total for info in infos) or job.requests
    statuses = ", ".join(sorted({info.status for info in running}))
    return BatchError(
        f"Job {job.id} is not finished: {done:,} of {total:,} requests done ({statuses}).",
        hint=f"Collect it again later, or watch it: %chat batch status {job.id}.",
    )


async def collect_job(
    client: Client,
    options: RequestOptions,
    job: BatchJob,
    infos: list[BatchInfo],
    take: Callable[[int, Outcome], None],
) -> int:
    """Read every finished batch's files and give each request's outcome to ``take``.

    Returns the number of requests that got no line at all (they are given an error outcome).

    Raises
    ------
    BatchError
        When a batch has not finished yet (nothing is read).
    """
    problem = unfinished_error(job, infos)
    if problem is not None:
        raise problem
    seen = bytearray(job.requests)
    secrets = options.secrets()
    for info in infos:
        for file_id in (info.output_file_id, info.error_file_id):
            if file_id is None:
                continue
            content = await download_file(client, options, file_id)
            for custom, outcome in read_results(content, secrets):
                position = position_of(custom)
                if position is not None and position < job.requests and not seen[position]:
                    seen[position] = 1
                    take(position, outcome)
            del content
    missing = 0
    why = _why_unanswered(infos)
    for position in range(job.requests):
        if not seen[position]:
            missing += 1
            take(position, Outcome(error=why))
    return missing


def _why_unanswered(infos: list[BatchInfo]) -> str:
    ended = sorted({info.status for info in infos if info.status != "completed"})
    reasons = [message for info in infos for message in info.errors][:1]
    if not ended:
        return "not run: the batch returned no line for this request"
    text = f"not run: the batch {' / '.join(ended)}"
    return f"{text} ({reasons[0]})" if reasons else text
