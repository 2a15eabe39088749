"""A request's worst case held against the kernel's spending cap while it is sent.

:func:`within_cap` reserves the worst case (the estimated prompt plus ``max_tokens``) in the
kernel's :class:`~tf_magics.budget.Ledger` before anything is sent -- refusing the request when it
does not fit -- and replaces the reservation with what the reply used afterwards, however the
request ended (a partial reply is counted by its length when the server sent no usage).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tf_magics.budget import kernel_ledger
from tf_magics.cost import Price
from tf_magics.types import Completion

from .chunks import ChunkAccumulator
from .request import RequestOptions

__all__ = ["within_cap"]


async def within_cap(
    options: RequestOptions,
    worst: dict[str, Any],
    price: Price | None,
    accumulator: ChunkAccumulator,
    send: Callable[[], Awaitable[Completion]],
) -> Completion:
    """Run ``send()`` with ``worst`` (the largest body it may send) held against the cap.

    Raises
    ------
    BudgetExceededError
        When the worst case does not fit (``send`` is not called).
    """
    ledger = kernel_ledger()
    held = ledger.reserve(options.caps, worst, options.max_tokens, price, options.model or "?")
    completion: Completion | None = None
    try:
        completion = await send()
        return completion
    finally:
        produced = completion or accumulator.completion(ended="incomplete")
        spoken = len(produced.content) + len(produced.reasoning)
        spoken += sum(len(call.arguments) for call in produced.tool_calls)
        ledger.settle(held, produced.usage, price, produced=(spoken + 3) // 4)
