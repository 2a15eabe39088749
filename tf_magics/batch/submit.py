"""Submitting a job: its requests written as JSONL files, uploaded, and made into batches.

The job is saved as soon as its first batch exists and after each one, so a job is never lost
once the provider holds it. When submitting fails part-way (a refused file, a dropped
connection, Ctrl-C), the batches already created are cancelled, so no half of a job runs and is
billed unseen; the job is kept as ``"abandoned"`` with its batches, for the record.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from tf_magics.client.batches import cancel_batch, create_batch, upload_batch_file
from tf_magics.errors import APIError, BatchError

from .files import BatchLimits, request_files
from .jobs import BatchJob, JobStore

if TYPE_CHECKING:
    from tf_magics.client import RequestOptions
    from tf_magics.client.http import Client

__all__ = ["custom_id", "position_of", "submit_job"]

_PREFIX = "row-"


def custom_id(position: int) -> str:
    """The ``custom_id`` of the request for distinct prompt ``position``."""
    return f"{_PREFIX}{position}"


def position_of(custom: str) -> int | None:
    """The prompt position a ``custom_id`` stands for (``None``: not one of ours)."""
    if not custom.startswith(_PREFIX):
        return None
    digits = custom[len(_PREFIX) :]
    return int(digits) if digits.isdigit() else None


async def submit_job(
    client: Client,
    options: RequestOptions,
    job: BatchJob,
    bodies: Iterable[dict[str, Any]],
    *,
    limits: BatchLimits,
    store: JobStore,
    note: Callable[[str], None],
) -> BatchJob:
    """Upload the request bodies (one per distinct prompt, in order) as batches of ``job``.

    Raises
    ------
    BatchError
        When a request is too large for any batch file.
    APIError
        When the server refuses (the batches created so far are cancelled first).
    """
    items = ((custom_id(position), body) for position, body in enumerate(bodies))
    try:
        for number, lines in enumerate(request_files(items, limits), 1):
            content = b"\n".join(lines) + b"\n"
            del lines
            name = f"{job.id}-{number}.jsonl"
            file_id = await upload_batch_file(client, options, name, content)
            del content
            info = await create_batch(
                client, options, file_id, metadata={"tf_magics_job": job.id, "part": str(number)}
            )
            job.batch_ids.append(info.id)
            store.save(job)
            note(f"Batch {info.id} submitted ({info.total or '?'} requests).")
    except ValueError as error:
        await _abandon(client, options, job, store)
        raise BatchError(
            str(error), hint="Shorten that row's text, or raise batch_max_mb."
        ) from None
    except BaseException:
        await _abandon(client, options, job, store)
        raise
    job.state = "submitted"
    store.save(job)
    return job


async def _abandon(client: Client, options: RequestOptions, job: BatchJob, store: JobStore) -> None:
    """Cancel the batches of a job that could not be submitted whole."""
    job.state = "abandoned"
    if job.batch_ids:
        store.save(job)
    else:
        store.discard_layout(job.id)  # nothing reached the provider: nothing to remember
    for batch_id in job.batch_ids:
        # Cancelling must finish even when the submission itself was cancelled (Ctrl-C).
        with contextlib.suppress(APIError, asyncio.CancelledError):
            await asyncio.shield(cancel_batch(client, options, batch_id))
