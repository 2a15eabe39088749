"""The request files of a batch: one JSON line per request, split to the provider's limits.

Each line is ``{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body"}``, and
``body`` is exactly what the interactive path would have sent (built by the same
:meth:`~tf_magics.client.RequestOptions.request_body`), without streaming.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["BatchLimits", "request_files"]


@dataclass(frozen=True)
class BatchLimits:
    """What one batch may hold (OpenAI: 50,000 requests and 200 MB per file)."""

    max_requests: int = 50_000
    max_bytes: int = 100 * 1024 * 1024


def request_files(
    items: Iterable[tuple[str, dict[str, Any]]], limits: BatchLimits
) -> Iterator[list[bytes]]:
    """The lines of each request file, split so no file passes either limit.

    Raises
    ------
    ValueError
        When a single request is larger than a whole file may be.
    """
    lines: list[bytes] = []
    size = 0
    for custom_id, body in items:
        line = _line(custom_id, body)
        if len(line) + 1 > limits.max_bytes:
            raise ValueError(
                f"the request {custom_id} alone is {len(line):,} bytes, more than a batch file "
                f"may hold ({limits.max_bytes:,})"
            )
        if lines and (len(lines) >= limits.max_requests or size + len(line) + 1 > limits.max_bytes):
            yield lines
            lines, size = [], 0
        lines.append(line)
        size += len(line) + 1
    if lines:
        yield lines


def _line(custom_id: str, body: dict[str, Any]) -> bytes:
    request: dict[str, Any] = {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {k: v for k, v in body.items() if k not in ("stream", "stream_options")},
    }
    return json.dumps(request, ensure_ascii=False, allow_nan=False).encode("utf-8")
