"""The answer of ``GET /models``: which models a server offers, read from any of its shapes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["ModelInfo", "parse_models"]


@dataclass(frozen=True)
class ModelInfo:
    """One entry of ``GET /models``."""

    id: str
    owned_by: str | None = None
    context_length: int | None = None


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
