"""Following a job at the provider until every batch has finished, with progress events.

The provider is asked how each batch is doing, first after a second, then less and less often up
to ``batch_poll`` seconds apart, so a short job is seen finishing promptly and a day-long one
costs a request every few seconds at most. Each check emits one
:class:`~tf_magics.events.BatchProgress`: the display is updated at the rate of the checks.

Interrupting the wait (Ctrl-C) stops the waiting only: the job goes on at the provider, as it
would after a kernel restart, and is collected later by its id (or cancelled).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from tf_magics.client.batches import BatchInfo, get_batch
from tf_magics.events import BatchProgress

from .jobs import BatchJob

if TYPE_CHECKING:
    from tf_magics.client import RequestOptions
    from tf_magics.client.http import Client

__all__ = ["check_job", "follow_job", "progress_of"]

_FIRST_WAIT = 1.0
_GROWTH = 1.5


async def check_job(client: Client, options: RequestOptions, job: BatchJob) -> list[BatchInfo]:
    """Each batch of the job as the provider sees it now."""
    return [await get_batch(client, options, batch_id) for batch_id in job.batch_ids]


def progress_of(job: BatchJob, infos: list[BatchInfo], now: float | None = None) -> BatchProgress:
    """The progress event for what the provider said."""
    return BatchProgress(
        job=job.id,
        statuses=tuple(info.status for info in infos),
        total=sum(info.total for info in infos) or job.requests,
        completed=sum(info.completed for info in infos),
        failed=sum(info.failed for info in infos),
        elapsed=max(0.0, (time.time() if now is None else now) - job.created),
        final=all(info.finished for info in infos),
    )


async def follow_job(
    client: Client,
    options: RequestOptions,
    job: BatchJob,
    *,
    poll: float,
    emit: Callable[[BatchProgress], None],
) -> list[BatchInfo]:
    """Check the job until every batch has finished; its batches as they ended."""
    wait = min(_FIRST_WAIT, poll)
    while True:
        infos = await check_job(client, options, job)
        progress = progress_of(job, infos)
        emit(progress)
        if progress.final:
            return infos
        await asyncio.sleep(wait)
        wait = min(poll, wait * _GROWTH)
