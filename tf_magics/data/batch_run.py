"""A map through the provider's Batch API: submitted, followed, collected into the map's result.

:func:`run_batch_plan` is the batch twin of :func:`~tf_magics.data.plan.run_plan`: the same
checked plan, the same request body per distinct prompt (the system prompt, the settings, the
schema as ``response_format``), sent as JSONL files through ``/files`` and ``/batches`` instead of
one request at a time, and read back into exactly the result an interactive map returns (results
in input order, per-row errors in ``error``). :func:`collect_result` does the reading for a job
submitted earlier, perhaps by another kernel.

The job's worst case (every prompt, and ``max_tokens`` for every reply, at the batch price) is
held against the spending cap from submission; what the replies used replaces it when the job is
collected.

Interrupting the wait (Ctrl-C) does not cancel the job: it is the provider's to finish, and
``%chat batch collect`` picks it up later (``%chat batch cancel`` stops it).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tf_magics._text import one_line
from tf_magics.batch import (
    BatchJob,
    BatchLimits,
    JobStore,
    Outcome,
    check_job,
    collect_job,
    follow_job,
    new_job_id,
    submit_job,
)
from tf_magics.budget import Reservation, kernel_ledger
from tf_magics.cost import Price, cost_of
from tf_magics.engine import Bridge, model_price
from tf_magics.errors import BatchError, MapInterrupted, ValidationError
from tf_magics.events import Notice
from tf_magics.types import Usage

from .batch_layout import Layout, layout_of, saved_schema
from .plan import MapPlan, endpoint_for_rows, first_failures
from .results import frame_result, list_result
from .spend import SpendCheck, approve, estimate_map, row_body
from .summary import MapSummary, RowError

if TYPE_CHECKING:
    from tf_magics.client import RequestOptions
    from tf_magics.client.http import Client
    from tf_magics.schema import ResponseSchema

__all__ = ["BatchOptions", "collect_result", "run_batch_plan"]

# Reservations of jobs submitted by this kernel, released when they are collected.
_HELD: dict[str, Reservation] = {}


@dataclass(frozen=True)
class BatchOptions:
    """How batches are made and followed (from the settings ``batch_*``)."""

    limits: BatchLimits = field(default_factory=BatchLimits)
    poll: float = 10.0
    discount: float = 0.5
    store: JobStore = field(default_factory=JobStore)


async def run_batch_plan(
    plan: MapPlan,
    *,
    client: Client,
    options: RequestOptions,
    system: str | None,
    bridge: Bridge,
    batch: BatchOptions,
    check: SpendCheck | None = None,
    threshold: int = 0,
    interrupt_error: bool = True,
) -> tuple[Any, MapSummary]:
    """Submit a planned map as batches, wait for them, and return ``(result, summary)``.

    Raises
    ------
    MapInterrupted
        When the wait is interrupted (the job goes on; the message says how to collect it).
        With ``interrupt_error=False`` the cancellation is raised as it is.
    BatchUnsupportedError
        When the server has no Batch API.
    BudgetExceededError
        When the job's worst case does not fit under the spending cap (nothing is sent).
    """
    options = await endpoint_for_rows(client, options, bridge)
    price = await model_price(client, options)
    price = price.scaled(batch.discount) if price is not None else None
    estimate = estimate_map(
        plan.prompts, len(plan.index_of), plan.schema, options, system, price, batch=True
    )
    await approve(lambda: estimate, estimate.rows, bridge, threshold=threshold, check=check)
    model = options.model or "?"
    worst = (estimate.prompt_tokens, estimate.max_completion_tokens)
    held = kernel_ledger().hold(options.caps, *worst, price, model)
    try:
        job, layout = await _submit(client, options, system, plan, price, bridge, batch)
    except BaseException:
        kernel_ledger().settle(held, Usage(prompt_tokens=0, completion_tokens=0), price, 0)
        raise
    _HELD[job.id] = held
    saved = f"Job {job.id} submitted; it is saved, so a restart loses nothing: "
    bridge.emit(Notice(f"{saved}%chat batch collect {job.id} -o OUT", "info"))
    try:
        infos = await follow_job(client, options, job, poll=batch.poll, emit=bridge.emit)
    except asyncio.CancelledError:
        if not interrupt_error:
            raise
        raise MapInterrupted(
            f"Stopped waiting; job {job.id} goes on at the provider.",
            hint=f"Collect it when it is done: %chat batch collect {job.id} -o OUT "
            f"(or stop it: %chat batch cancel {job.id}).",
        ) from None
    return await _collect(client, options, job, layout, plan.rows.frame, plan.schema, infos, batch)


async def _submit(
    client: Client,
    options: RequestOptions,
    system: str | None,
    plan: MapPlan,
    price: Price | None,
    bridge: Bridge,
    batch: BatchOptions,
) -> tuple[BatchJob, Layout]:
    """Save the layout, then submit every distinct prompt's request as the job's batches."""
    job = BatchJob(
        id=new_job_id(),
        batch_ids=[],
        base_url=options.base_url or "",
        model=options.model,
        rows=len(plan.index_of),
        requests=len(plan.prompts),
        kind=plan.rows.kind,
        schema_name=plan.schema.name if plan.schema is not None else None,
        prices=None if price is None else [price.input, price.output],
        currency=options.caps.currency,
    )
    layout = layout_of(plan.rows.kind, plan.rows.frame, plan.index_of, plan.schema)
    batch.store.save_layout(job.id, layout.to_json())
    # The structured-output form this server is known to take (the first one otherwise).
    form = client.response_formats.get((job.base_url.rstrip("/"), options.model or ""), 0)
    bodies = (row_body(options, system, prompt, plan.schema, form) for prompt in plan.prompts)
    await submit_job(
        client,
        options,
        job,
        bodies,
        limits=batch.limits,
        store=batch.store,
        note=lambda text: bridge.emit(Notice(text, "info")),
    )
    return job, layout


async def collect_result(
    client: Client,
    options: RequestOptions,
    job: BatchJob,
    batch: BatchOptions,
    *,
    data: Any = None,
    schema: ResponseSchema | None = None,
) -> tuple[Any, MapSummary]:
    """The result of a finished job submitted earlier (see :mod:`.batch_layout` for its shape).

    Raises
    ------
    BatchError
        When the job has not finished (it says how far it is), its layout is missing, or
        ``data`` is not what it was submitted for.
    """
    saved = batch.store.layout(job.id)
    if saved is None:
        raise BatchError(
            f"The layout of job {job.id} is missing from {batch.store.directory}: its rows "
            "cannot be put back in order.",
        )
    layout = Layout.from_json(saved)
    if data is not None:
        layout.check_data(data)
    if schema is None and layout.schema is not None:
        schema = saved_schema(layout.schema)
    infos = await check_job(client, options, job)
    return await _collect(client, options, job, layout, data, schema, infos, batch)


async def _collect(
    client: Client,
    options: RequestOptions,
    job: BatchJob,
    layout: Layout,
    data: Any,
    schema: ResponseSchema | None,
    infos: list[Any],
    batch: BatchOptions,
) -> tuple[Any, MapSummary]:
    tally = _Tally(job.requests, schema)
    await collect_job(client, options, job, infos, tally.take)
    price = Price(*job.prices) if job.prices else None
    usage = Usage(prompt_tokens=tally.prompt_tokens, completion_tokens=tally.completion_tokens)
    held = _HELD.pop(job.id, Reservation(0.0, 0, 0))
    kernel_ledger().settle(held, usage, price, 0)
    job.state = "collected"
    batch.store.save(job)
    weights = layout.weights
    failed = sum(weights[p] for p, error in enumerate(tally.errors) if error is not None)
    summary = MapSummary(
        total=layout.rows,
        done=layout.rows - failed,
        failed=failed,
        prompts=job.requests,
        requests=job.requests,
        prompt_tokens=tally.prompt_tokens,
        completion_tokens=tally.completion_tokens,
        elapsed=max(0.0, time.time() - job.created),
        cost=cost_of(usage, price) if price is not None else None,
        currency=job.currency,
        priced=price is not None,
        batch=True,
        errors=first_failures(layout.index_of, tally.errors, _labels(layout, data)),
    )
    statuses = sorted({info.status for info in infos})
    if statuses != ["completed"]:
        summary.notes.append(f"The job ended {' / '.join(statuses)}.")
    if layout.kind == "frame" and data is not None:
        result, notes = frame_result(data, layout.index_of, tally.values, tally.errors, schema)
        summary.notes.extend(notes)
    elif layout.kind == "frame":
        result = _bare_frame(layout, tally, schema)
    else:
        result = list_result(layout.index_of, tally.values, tally.errors)
    return result, summary


class _Tally:
    """Each request's value or error, and the tokens, as the outcomes are read."""

    def __init__(self, requests: int, schema: ResponseSchema | None) -> None:
        self.schema = schema
        self.values: list[Any] = [None] * requests
        self.errors: list[RowError | None] = [None] * requests
        self.prompt_tokens = self.completion_tokens = 0

    def take(self, position: int, outcome: Outcome) -> None:
        completion = outcome.completion
        if completion is None:
            self.errors[position] = RowError("BatchError", outcome.error or "failed")
            return
        if completion.usage is not None:
            self.prompt_tokens += completion.usage.prompt_tokens or 0
            self.completion_tokens += completion.usage.completion_tokens or 0
        if self.schema is None:
            self.values[position] = completion.content
            return
        try:
            self.values[position] = self.schema.parse(completion.content)
        except ValidationError as error:
            self.errors[position] = RowError("StructuredOutputError", one_line(str(error), 500))


def _labels(layout: Layout, data: Any) -> Any:
    if data is not None and layout.kind == "frame":
        return data.index
    return layout.labels


def _bare_frame(layout: Layout, tally: _Tally, schema: ResponseSchema | None) -> Any:
    """The result columns under the saved row labels (the input frame was not given)."""
    import pandas

    index = pandas.Index(layout.labels, name=layout.index_name) if layout.labels else None
    frame = pandas.DataFrame(index=index if index is not None else range(layout.rows))
    result, _notes = frame_result(frame, layout.index_of, tally.values, tally.errors, schema)
    return result
