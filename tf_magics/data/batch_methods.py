"""Batch jobs from a chat: list them, see how one is doing, collect it, cancel it.

:class:`~tf_magics.Chat` takes these methods from :class:`BatchMethods` (``chat.map(...,
batch=True)`` submits a job; these find it again, in this kernel or after a restart). Jobs are
looked up by their id (``job-...``) or by one of their provider batch ids, in the chat's
``batch_dir``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tf_magics.engine import observer_for, run_blocking
from tf_magics.errors import BatchError

# The batch machinery loads when a batch method first runs: every Chat has these methods, and
# the first %%chat of a notebook should not pay for them.
if TYPE_CHECKING:
    from tf_magics.batch import BatchJob
    from tf_magics.client import RequestOptions
    from tf_magics.client.http import Client
    from tf_magics.events import BatchProgress
    from tf_magics.settings import ChatSettings

    from .batch_run import BatchOptions
    from .summary import MapSummary

__all__ = ["BatchMethods", "batch_options"]


def batch_options(settings: ChatSettings) -> BatchOptions:
    """How batches are made, followed and kept, from the settings."""
    from tf_magics.batch import BatchLimits, JobStore

    from .batch_run import BatchOptions

    return BatchOptions(
        limits=BatchLimits(
            max_requests=settings.batch_max_requests,
            max_bytes=max(1, int(settings.batch_max_mb * 1_000_000)),
        ),
        poll=settings.batch_poll,
        discount=settings.batch_discount,
        store=JobStore(settings.batch_dir),
    )


class BatchMethods:
    """The batch-job methods of :class:`~tf_magics.Chat` (a mixin: it uses the chat's parts)."""

    settings: ChatSettings
    client: Client
    last_map: MapSummary | None

    def batches(self) -> list[BatchJob]:
        """The batch jobs saved in ``batch_dir``, oldest first (nothing is sent)."""
        return batch_options(self.settings).store.jobs()

    def batch_status(self, job: str) -> BatchProgress:
        """How a job is doing at the provider now (status, requests done and failed).

        Raises
        ------
        BatchError
            When no job or batch has that id.
        """
        from tf_magics.batch import check_job, progress_of

        found = self._job(job)
        options = self._job_options(found)
        infos = run_blocking(
            lambda _bridge: check_job(self.client, options, found), observer_for(None, None)
        )
        return progress_of(found, infos)

    def cancel_batch(self, job: str) -> BatchProgress:
        """Ask the provider to cancel a job's batches (requests already answered stay answered).

        Collect it afterwards to get what was done (the rest is marked in ``error``).
        """
        from tf_magics.batch import progress_of
        from tf_magics.client.batches import cancel_batch

        found = self._job(job)
        options = self._job_options(found)

        async def cancel(_bridge: Any) -> Any:
            return [await cancel_batch(self.client, options, b) for b in found.batch_ids]

        return progress_of(found, run_blocking(cancel, observer_for(None, None)))

    def collect(self, job: str, data: Any = None, *, schema: Any = None) -> Any:
        """The result of a finished job, in the shape an interactive ``map`` returns.

        Parameters
        ----------
        job
            The job's id, or one of its batch ids.
        data
            The DataFrame (or list) the job was submitted for: the result is then exactly what
            ``map`` returns (its columns and the result columns). Without it, a DataFrame job
            gives the result columns and ``error`` under the saved row labels.
        schema
            The schema class, for instances (without it, structured replies are checked
            against the saved JSON Schema and come back as ``dict``).

        Raises
        ------
        BatchError
            When the job has not finished (with how far it is), or ``data`` is not the data it
            was submitted for.
        """
        from tf_magics.schema import ResponseSchema

        from .batch_run import collect_result

        found = self._job(job)
        options = self._job_options(found)
        response = ResponseSchema.of(schema) if schema is not None else None
        batch = batch_options(self.settings)
        result, summary = run_blocking(
            lambda _bridge: collect_result(
                self.client, options, found, batch, data=data, schema=response
            ),
            observer_for(None, None),
        )
        self.last_map = summary
        return result

    def _job(self, key: str) -> BatchJob:
        found = batch_options(self.settings).store.find(key)
        if found is None:
            raise BatchError(
                f"No batch job {key!r} in {self.settings.batch_dir}.",
                hint="List the jobs with %chat batch list (or chat.batches()).",
            )
        return found

    def _job_options(self, job: BatchJob) -> RequestOptions:
        return self.settings.resolve(base_url=job.base_url, model=job.model)
