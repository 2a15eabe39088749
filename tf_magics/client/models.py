"""The answer of ``GET /models``: which models a server offers, read from any of its shapes.

Some servers publish prices there too: OpenRouter per token, as strings
(``pricing: {"prompt": "0.000003", "completion": "0.000015", "input_cache_read": ...}``), others
per million tokens (``pricing: {"input": 0.88, "output": 0.88}``). Anything else is no price.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from tf_magics.cost import Price

__all__ = ["ModelInfo", "parse_models"]


@dataclass(frozen=True)
class ModelInfo:
    """One entry of ``GET /models``."""

    id: str
    owned_by: str | None = None
    context_length: int | None = None
    price: Price | None = None


def parse_models(content: bytes) -> list[ModelInfo]:
    """The models in a ``/models`` body; empty when there are none (``data: null``, not JSON)."""
    try:
        payload = json.loads(content)
    except ValueError:
        return []
    data = payload.get("data") if isinstance(payload, dict) else payload
    models = []
    for item in data if isinstance(data, list) else []:
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            owned_by = item.get("owned_by")
            models.append(
                ModelInfo(
                    id=item["id"],
                    owned_by=owned_by if isinstance(owned_by, str) else None,
                    context_length=_context_length(item),
                    price=_price(item.get("pricing")),
                )
            )
    return models


def _context_length(item: dict[str, Any]) -> int | None:
    meta = item.get("meta")
    for value in (
        item.get("max_model_len"),  # vLLM
        item.get("context_length"),  # OpenRouter
        item.get("context_window"),  # Groq
        meta.get("n_ctx") if isinstance(meta, dict) else None,  # llama.cpp
    ):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _price(pricing: Any) -> Price | None:
    """The price a model entry publishes, per million tokens (``None`` when it says none)."""
    if not isinstance(pricing, dict):
        return None
    per_token = [_number(pricing.get(k)) for k in ("prompt", "completion", "input_cache_read")]
    if per_token[0] is not None and per_token[1] is not None:
        cached = per_token[2] * 1_000_000 if per_token[2] is not None else None
        return Price(per_token[0] * 1_000_000, per_token[1] * 1_000_000, cached)
    per_million = [_number(pricing.get(k)) for k in ("input", "output")]
    if per_million[0] is not None and per_million[1] is not None:
        return Price(per_million[0], per_million[1])
    return None


def _number(value: Any) -> float | None:
    """A non-negative finite number from a number or a numeric string."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None
