"""A map from start to end: its plan checked before anything is sent, its run, its result.

:func:`plan_map` reads and checks everything first (the template against the data, the schema,
the limits), so a mistake costs no request. :func:`run_plan` runs it on the current event loop:
the endpoint is filled in once (the local model started if need be, the server's default model
looked up), then every distinct prompt goes out as a non-streamed one-off request, and the result
is assembled in input order.
"""

from __future__ import annotations

import asyncio
import math
from array import array
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from tf_magics.client.http import MAX_CONNECTIONS
from tf_magics.engine import Bridge, default_model, local_endpoint, model_price
from tf_magics.errors import ConfigurationError, MapBudgetExceeded, MapError, MapInterrupted
from tf_magics.events import Notice
from tf_magics.schema import ResponseSchema

from .limiter import AdaptiveLimiter
from .results import frame_result, list_result
from .rows import Rows, read_rows, unique_prompts
from .scheduler import MapRun, OnError, RowFailed
from .spend import SpendCheck, approve, estimate_map
from .summary import INTERRUPTED, MapSummary, RowError
from .template import PromptTemplate

if TYPE_CHECKING:
    from tf_magics.client import RequestOptions
    from tf_magics.client.http import Client

__all__ = ["MapPlan", "endpoint_for_rows", "first_failures", "plan_map", "run_plan"]


@dataclass
class MapPlan:
    """A checked map, ready to run."""

    rows: Rows
    prompts: list[str]
    index_of: array[int]
    weights: list[int]
    schema: ResponseSchema | None
    concurrency: int
    requests_per_minute: float | None
    on_error: OnError
    #: ``(result, summary)`` once the run ended, however it ended.
    outcome: tuple[Any, MapSummary] | None = None


def plan_map(
    template: str,
    data: Any,
    *,
    schema: Any = None,
    concurrency: int = 8,
    requests_per_minute: float | None = None,
    on_error: str = "record",
) -> MapPlan:
    """Check a map's arguments and fill the template from every row (nothing is sent).

    Raises
    ------
    ConfigurationError
        For a bad argument, data of another kind, or a placeholder no row can fill.
    """
    if isinstance(concurrency, bool) or not isinstance(concurrency, int):
        raise ConfigurationError(f"concurrency must be a whole number, got {concurrency!r}.")
    if not 1 <= concurrency <= MAX_CONNECTIONS:
        raise ConfigurationError(
            f"concurrency must be between 1 and {MAX_CONNECTIONS}, got {concurrency}."
        )
    if requests_per_minute is not None and (
        isinstance(requests_per_minute, bool)
        or not isinstance(requests_per_minute, (int, float))
        or not math.isfinite(requests_per_minute)
        or requests_per_minute <= 0
    ):
        raise ConfigurationError(
            f"requests_per_minute must be a positive number, got {requests_per_minute!r}."
        )
    if on_error not in ("record", "raise"):
        raise ConfigurationError(
            f"on_error must be 'record' (keep going) or 'raise' (stop at the first failure), "
            f"got {on_error!r}."
        )
    response = ResponseSchema.of(schema) if schema is not None else None
    rows = read_rows(PromptTemplate.parse(template), data)
    prompts, index_of, weights = unique_prompts(rows.prompts)
    rows.prompts = []  # the distinct prompts are all that is needed from here on
    return MapPlan(
        rows=rows,
        prompts=prompts,
        index_of=index_of,
        weights=weights,
        schema=response,
        concurrency=concurrency,
        requests_per_minute=requests_per_minute,
        on_error=on_error,  # type: ignore[arg-type]
    )


async def run_plan(
    plan: MapPlan,
    *,
    client: Client,
    options: RequestOptions,
    system: str | None,
    bridge: Bridge,
    interrupt_error: bool = True,
    check: SpendCheck | None = None,
    threshold: int = 0,
) -> tuple[Any, MapSummary]:
    """Run a planned map on this event loop: ``(result, summary)``, also left in ``plan.outcome``.

    A map of ``threshold`` rows or more is confirmed through ``check`` first (``approve``).

    Raises
    ------
    MapInterrupted
        When cancelled (Ctrl-C): every request was stopped first; ``result`` holds the rows
        done (the others marked ``interrupted``).
    asyncio.CancelledError
        Instead, with ``interrupt_error=False`` (``plan.outcome`` still holds what was done).
    MapError
        With ``on_error="raise"``, at the first failed row (``result`` holds the rows done);
        before anything is sent, when a large map is not confirmed; at the spending cap as
        :class:`MapBudgetExceeded` (the requests in flight end, none starts after).
    """
    limiter = AdaptiveLimiter(plan.concurrency, requests_per_minute=plan.requests_per_minute)
    run = MapRun(
        client=client,
        options=options,
        prompts=plan.prompts,
        weights=plan.weights,
        system=system,
        schema=plan.schema,
        bridge=bridge,
        limiter=limiter,
        on_error=plan.on_error,
    )
    try:
        if plan.prompts:
            await _prepare(plan, run, options, check, threshold)
        await run.run()
    except asyncio.CancelledError:
        plan.outcome = assemble(plan, run, limiter, unfinished=RowError(INTERRUPTED))
        if not interrupt_error:
            raise
        result, summary = plan.outcome
        raise MapInterrupted(
            f"Interrupted: {summary.done + summary.failed:,} of {summary.total:,} rows finished "
            "(the others are marked 'interrupted'); every request was stopped.",
            result=result,
            summary=summary,
        ) from None
    except RowFailed as failure:
        raise _stopped_at_failure(plan, run, limiter, failure) from failure.error
    if run.budget_stop is not None:
        raise _stopped_at_cap(plan, run, limiter, run.budget_stop)
    plan.outcome = assemble(plan, run, limiter, unfinished=RowError("not run"))
    return plan.outcome


async def _prepare(
    plan: MapPlan,
    run: MapRun,
    options: RequestOptions,
    check: SpendCheck | None,
    threshold: int,
) -> None:
    """Fill in the endpoint and the price, and have a large map confirmed."""
    run.options = await endpoint_for_rows(run.client, options, run.bridge)
    run.price = await model_price(run.client, run.options)
    rows = len(plan.index_of)
    await approve(
        lambda: estimate_map(plan.prompts, rows, plan.schema, run.options, run.system, run.price),
        rows,
        run.bridge,
        threshold=threshold,
        check=check,
    )


def _stopped_at_failure(
    plan: MapPlan, run: MapRun, limiter: AdaptiveLimiter, failure: RowFailed
) -> MapError:
    """The error of a map stopped at its first failed row (``on_error="raise"``)."""
    stopped = RowError("not run", "the map stopped at the first failure")
    plan.outcome = result, summary = assemble(plan, run, limiter, unfinished=stopped)
    return MapError(
        f"A row failed, so the map stopped (on_error='raise'): {failure.error}",
        hint="The rows done so far are in error.result; on_error='record' keeps going.",
        result=result,
        summary=summary,
    )


def _stopped_at_cap(
    plan: MapPlan, run: MapRun, limiter: AdaptiveLimiter, refusal: Exception
) -> MapBudgetExceeded:
    """The error of a map stopped by the spending cap, its rows so far in ``result``."""
    unrun = RowError("not run", "the spending cap was reached")
    plan.outcome = result, summary = assemble(plan, run, limiter, unfinished=unrun)
    summary.stopped = "budget"
    return MapBudgetExceeded(
        f"Stopped at the spending cap: {summary.done + summary.failed:,} of {summary.total:,} "
        f"rows finished, the others are marked 'not run'. {refusal}",
        hint=getattr(refusal, "hint", None),
        result=result,
        summary=summary,
    )


async def endpoint_for_rows(
    client: Client, options: RequestOptions, bridge: Bridge
) -> RequestOptions:
    """The endpoint and model, filled in once for every row; rows are not streamed."""
    options = await local_endpoint(bridge, options)

    def note(text: str) -> None:
        bridge.emit(Notice(text, "info"))

    options = await default_model(client, options, note)
    if options.withheld_key and options.api_key is None:
        bridge.emit(Notice(options.withheld_key, "warning"))
    # Nothing is shown per row, and one JSON body costs less to read than a stream.
    return replace(options, stream=False)


def assemble(
    plan: MapPlan, run: MapRun, limiter: AdaptiveLimiter, *, unfinished: RowError
) -> tuple[Any, MapSummary]:
    """The result in input order and the summary; prompts that never finished get ``unfinished``."""
    errors = list(run.errors)
    left = 0
    for position, finished in enumerate(run.finished):
        if not finished:
            errors[position] = unfinished
            left += plan.weights[position]
    summary = MapSummary(
        total=len(plan.index_of),
        done=run.rows_done,
        failed=run.rows_failed,
        unfinished=left,
        prompts=len(plan.prompts),
        requests=limiter.started,
        rate_limited=limiter.rate_limited,
        prompt_tokens=run.prompt_tokens,
        completion_tokens=run.completion_tokens,
        elapsed=run.elapsed,
        concurrency=plan.concurrency,
        peak=limiter.peak,
        cost=run.cost,
        currency=run.options.caps.currency,
        priced=bool(run.options.prices) or run.options.caps.money is not None,
        errors=first_failures(
            plan.index_of, run.errors, plan.rows.frame.index if plan.rows.kind == "frame" else None
        ),
        notes=list(run.notes),
    )
    if plan.rows.kind == "frame":
        result, notes = frame_result(
            plan.rows.frame, plan.index_of, run.values, errors, plan.schema
        )
        summary.notes.extend(notes)
    else:
        result = list_result(plan.index_of, run.values, errors)
    return result, summary


def first_failures(
    index_of: array[int], errors: list[RowError | None], labels: Any, limit: int = 5
) -> list[str]:
    """``"row <label>: <error>"`` for the first failed rows, in input order.

    ``labels`` are the rows' labels (a DataFrame's index), or ``None`` for their positions.
    """
    failed = {position for position, error in enumerate(errors) if error is not None}
    found: list[str] = []
    if not failed:
        return found
    for row, position in enumerate(index_of):
        if position in failed:
            label = labels[row] if labels is not None else row
            found.append(f"row {label}: {errors[position]}")
            if len(found) == limit:
                break
    return found
