"""The provider's Batch API: upload a JSONL file of requests, create a batch, follow it, read it.

The OpenAI-compatible form that many providers offer: ``POST /files`` (``purpose=batch``),
``POST /batches`` (``endpoint=/v1/chat/completions``, ``completion_window=24h``),
``GET /batches/{id}``, ``POST /batches/{id}/cancel``, ``GET /files/{id}/content``. A server that
answers 404 or 405 has no Batch API: :class:`~tf_magics.errors.BatchUnsupportedError` says so
and points at the interactive ``map``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tf_magics.errors import APIStatusError, BatchUnsupportedError

from .request import RequestOptions

if TYPE_CHECKING:
    from .http import Client

__all__ = [
    "FINISHED",
    "BatchInfo",
    "batch_info",
    "cancel_batch",
    "create_batch",
    "download_file",
    "get_batch",
    "upload_batch_file",
]

#: Statuses after which a batch changes no more.
FINISHED = frozenset(("completed", "failed", "expired", "cancelled"))


@dataclass(frozen=True)
class BatchInfo:
    """What the server says about one batch."""

    id: str
    status: str
    total: int = 0
    completed: int = 0
    failed: int = 0
    output_file_id: str | None = None
    error_file_id: str | None = None
    created_at: float | None = None
    errors: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        """True once the batch will not change any more."""
        return self.status in FINISHED


def batch_info(data: Any) -> BatchInfo:
    """A :class:`BatchInfo` from the server's batch object (missing fields tolerated)."""
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise ValueError("the server's answer is not a batch object")
    counts: dict[str, Any] = (
        data["request_counts"] if isinstance(data.get("request_counts"), dict) else {}
    )
    errors = data.get("errors")
    listed = errors.get("data") if isinstance(errors, dict) else errors
    messages = [
        str(item.get("message") or item) if isinstance(item, dict) else str(item)
        for item in (listed if isinstance(listed, list) else [])
    ]

    def number(value: Any) -> int:
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    def text(value: Any) -> str | None:
        return value if isinstance(value, str) and value else None

    created = data.get("created_at")
    return BatchInfo(
        id=data["id"],
        status=str(data.get("status") or "unknown"),
        total=number(counts.get("total")),
        completed=number(counts.get("completed")),
        failed=number(counts.get("failed")),
        output_file_id=text(data.get("output_file_id")),
        error_file_id=text(data.get("error_file_id")),
        created_at=float(created) if isinstance(created, (int, float)) else None,
        errors=messages,
        metadata=dict(data.get("metadata") or {}) if isinstance(data.get("metadata"), dict) else {},
    )


async def upload_batch_file(
    client: Client, options: RequestOptions, name: str, content: bytes
) -> str:
    """Upload a JSONL file of requests (``purpose=batch``) and return its file id."""
    response = await _call(
        client,
        options,
        "POST",
        "/files",
        files={"file": (name, content, "application/jsonl")},
        data={"purpose": "batch"},
    )
    file_id = _json(response).get("id")
    if not isinstance(file_id, str):
        raise ValueError("the server's answer to the upload has no file id")
    return file_id


async def create_batch(
    client: Client,
    options: RequestOptions,
    file_id: str,
    *,
    window: str = "24h",
    metadata: dict[str, str] | None = None,
) -> BatchInfo:
    """Create a batch of chat-completion requests from an uploaded file."""
    body: dict[str, Any] = {
        "input_file_id": file_id,
        "endpoint": "/v1/chat/completions",
        "completion_window": window,
    }
    if metadata:
        body["metadata"] = metadata
    return batch_info(_json(await _call(client, options, "POST", "/batches", body=body)))


async def get_batch(client: Client, options: RequestOptions, batch_id: str) -> BatchInfo:
    """The batch as it is now."""
    return batch_info(_json(await _call(client, options, "GET", f"/batches/{batch_id}")))


async def cancel_batch(client: Client, options: RequestOptions, batch_id: str) -> BatchInfo:
    """Ask the server to cancel a batch (what is done stays done)."""
    return batch_info(_json(await _call(client, options, "POST", f"/batches/{batch_id}/cancel")))


async def download_file(client: Client, options: RequestOptions, file_id: str) -> bytes:
    """The content of a file (an output or error file of a batch)."""
    response = await _call(client, options, "GET", f"/files/{file_id}/content")
    content: bytes = response.content
    return content


async def _call(
    client: Client, options: RequestOptions, method: str, path: str, **kwargs: Any
) -> Any:
    try:
        return await client.send(options, method, path, **kwargs)
    except APIStatusError as error:
        if error.status_code in (404, 405):
            raise BatchUnsupportedError(
                f"{options.base_url} has no Batch API ({method} {path} answered "
                f"{error.status_code}).",
                hint="Run the same map without --batch (batch=False): it sends the rows now, "
                "with bounded concurrency.",
                status_code=error.status_code,
                body=error.body,
            ) from None
        raise


def _json(response: Any) -> dict[str, Any]:
    try:
        data = json.loads(response.content)
    except ValueError:
        raise ValueError("the server's answer is not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("the server's answer is not a JSON object")
    return data
