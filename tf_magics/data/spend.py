"""What a map will cost, asked before it starts, and the request body every row would send.

Before a map of at least ``confirm_map_rows`` rows, :func:`approve` estimates its tokens and its
cost (:class:`~tf_magics.cost.MapEstimate`: the prompts as they will be sent, and ``max_tokens``
per request as the upper bound of the completions) and asks, on the caller's thread, as a tool
marked ``confirm=True`` asks: yes goes on, no stops, and a run where no one can answer (a
notebook run headless, a script) declines with one line that says how to allow it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tf_magics.client.response_format import apply_form
from tf_magics.cost import MapEstimate, Price, estimate_request_tokens
from tf_magics.errors import MapError
from tf_magics.events import Notice

if TYPE_CHECKING:
    from tf_magics.client import RequestOptions
    from tf_magics.engine import Bridge
    from tf_magics.schema import ResponseSchema


__all__ = ["SpendCheck", "approve", "estimate_map", "row_body", "row_messages"]

#: Asked before a large map: ``True`` go, ``False`` stop, ``None`` no one could answer.
SpendCheck = Callable[[MapEstimate], "bool | None"]
#: Prompts measured for an estimate; a longer map is estimated from an even sample of them.
_SAMPLE = 2_000


def row_messages(system: str | None, prompt: str) -> list[dict[str, Any]]:
    """The messages of one row's request: the system prompt (if any) and the row's prompt."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    return messages


def row_body(
    options: RequestOptions,
    system: str | None,
    prompt: str,
    schema: ResponseSchema | None,
    form: int = 0,
) -> dict[str, Any]:
    """The body one row sends (unstreamed), in a structured-output ``form`` with a schema."""
    messages = row_messages(system, prompt)
    fields: dict[str, Any] = {}
    if schema is not None:
        fields, messages = apply_form(schema, form, messages)
    body = options.request_body(messages, **fields)
    body.pop("stream", None)
    return body


def estimate_map(
    prompts: list[str],
    rows: int,
    schema: ResponseSchema | None,
    options: RequestOptions,
    system: str | None,
    price: Price | None,
    *,
    batch: bool = False,
) -> MapEstimate:
    """The map's tokens (prompts estimated, completions bounded by ``max_tokens``) and cost.

    ``prompts`` are the distinct prompts (one request each), ``rows`` the rows they serve.
    """
    requests = len(prompts)
    step = max(1, requests // _SAMPLE)
    sample = prompts[::step]
    measured = sum(
        estimate_request_tokens(row_body(options, system, prompt, schema)) for prompt in sample
    )
    prompt_tokens = round(measured * requests / len(sample)) if sample else 0
    return MapEstimate(
        rows=rows,
        requests=requests,
        prompt_tokens=prompt_tokens,
        max_completion_tokens=requests * options.max_tokens,
        max_tokens=options.max_tokens,
        price=price,
        model=options.model or "the model",
        currency=options.caps.currency,
        batch=batch,
    )


async def approve(
    estimate: Callable[[], MapEstimate],
    rows: int,
    bridge: Bridge,
    *,
    threshold: int,
    check: SpendCheck | None,
) -> MapEstimate | None:
    """Ask before a map of ``threshold`` rows or more (``0``: never); the estimate when asked.

    ``estimate`` makes the estimate (only when it is needed).

    Raises
    ------
    MapError
        When the person declines, or no one can answer (nothing was sent).
    """
    if threshold <= 0 or rows < threshold:
        return None
    return await _ask(estimate(), rows, bridge, threshold, check)


async def _ask(
    estimate: MapEstimate, rows: int, bridge: Bridge, threshold: int, check: SpendCheck | None
) -> MapEstimate:
    answer = None if check is None else await bridge.call_sync(lambda: check(estimate))
    if answer is True:
        bridge.emit(Notice(f"Estimate: {estimate.text()}.", "info"))
        return estimate
    allow = (
        f"Maps of {threshold:,} rows or more are confirmed first: answer yes when asked, or "
        f"raise the threshold (%chat set confirm_map_rows={rows + 1}; 0 never asks)."
    )
    if answer is None:
        raise MapError(
            f"Not started: no one could confirm this map ({estimate.text()}).",
            hint=allow + " From Python: chat.confirm_spend = lambda estimate: True.",
        )
    raise MapError(f"Not started: declined ({estimate.text()}).", hint=allow)
