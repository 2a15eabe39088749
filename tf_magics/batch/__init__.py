"""Jobs too big for one notebook session: a map sent through the provider's Batch API.

``tf_magics.map(..., batch=True)`` and ``%%chat --map DF --batch`` write one request per distinct
prompt into JSONL files, upload them and create batches (``/files`` and ``/batches``), follow
them with a progress display, and read the output and error files back into exactly the frame an
interactive ``map`` returns. The job is saved in ``.tf_magics/batches`` as soon as the provider
holds it, so ``%chat batch list|status|collect|cancel`` (and :mod:`tf_magics.batch.api` from
Python) pick it up after a kernel restart.

================  ====================================================================
module            job
================  ====================================================================
``files``         request bodies → JSONL files within the provider's limits
``jobs``          the saved jobs (:class:`JobStore`, :class:`BatchJob`)
``submit``        upload, create, cancel what was created if submitting fails
``follow``        check the batches until they finish, with progress events
``results``       an output or error file → one outcome per request
``collect``       a finished job's files → every request's outcome
================  ====================================================================
"""

from __future__ import annotations

from .collect import collect_job, unfinished_error
from .files import BatchLimits, request_files
from .follow import check_job, follow_job, progress_of
from .jobs import DEFAULT_DIRECTORY, BatchJob, JobStore, new_job_id
from .results import Outcome, read_results
from .submit import custom_id, position_of, submit_job

__all__ = [
    "DEFAULT_DIRECTORY",
    "BatchJob",
    "BatchLimits",
    "JobStore",
    "Outcome",
    "check_job",
    "collect_job",
    "custom_id",
    "follow_job",
    "new_job_id",
    "position_of",
    "progress_of",
    "read_results",
    "request_files",
    "submit_job",
    "unfinished_error",
]
