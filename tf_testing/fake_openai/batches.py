"""The OpenAI Batch API on the scripted server: files, batches, and how a batch moves along.

Enable it with ``FakeOpenAI(batches=FakeBatches())``; without it the routes answer 404, like a
server that has no Batch API. What is implemented:

- ``POST /v1/files`` (multipart: ``purpose`` and ``file``), ``GET /v1/files/{id}`` and
  ``GET /v1/files/{id}/content``;
- ``POST /v1/batches`` (``input_file_id``, ``endpoint``, ``completion_window``, ``metadata``),
  ``GET /v1/batches/{id}``, ``GET /v1/batches`` and ``POST /v1/batches/{id}/cancel``.

A batch goes ``validating → in_progress → finalizing → completed``, one step per ``GET`` of it
(``steps_per_status`` polls each), answering every line with :attr:`FakeBatches.respond`; lines
whose ``custom_id`` is in :attr:`FakeBatches.fail` go to the error file instead. A batch can be
made to ``expire`` (lines not answered by then go to the error file as ``batch_expired``) or
to fail validation. Cancelling moves it to ``cancelling`` then ``cancelled`` with what was done.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .exchange import RecordedRequest, dumps_compact

__all__ = ["FakeBatches", "echo_completion", "parse_multipart"]

Respond = Callable[[dict[str, Any]], dict[str, Any]]
_FLOW = ("validating", "in_progress", "finalizing", "completed")


def echo_completion(body: dict[str, Any]) -> dict[str, Any]:
    """A chat completion answering with ``echo: <the last user message>`` and its usage."""
    messages = body.get("messages") or []
    question = next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), "")
    text = f"echo: {question}"
    return {
        "id": "chatcmpl-batch",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model") or "fake-model",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """The fields of a ``multipart/form-data`` body: name → (file name, bytes)."""
    boundary = content_type.split("boundary=", 1)[1].strip().strip('"').encode()
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in body.split(b"--" + boundary):
        if not part.strip() or part.strip() == b"--":
            continue
        head, _, data = part.lstrip(b"\r\n").partition(b"\r\n\r\n")
        disposition = next(
            (line for line in head.decode().split("\r\n") if "content-disposition" in line.lower()),
            "",
        )
        params = dict(
            item.strip().split("=", 1) for item in disposition.split(";")[1:] if "=" in item
        )
        name = params.get("name", "").strip('"')
        filename = params["filename"].strip('"') if "filename" in params else None
        fields[name] = (filename, data[:-2] if data.endswith(b"\r\n") else data)
    return fields


@dataclass
class _Batch:
    id: str
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, Any]
    created_at: int
    status: str = "validating"
    polls: int = 0
    output_file_id: str | None = None
    error_file_id: str | None = None
    counts: dict[str, int] = field(
        default_factory=lambda: {"total": 0, "completed": 0, "failed": 0}
    )
    errors: Any = None


@dataclass
class FakeBatches:
    """The Batch API's state and behaviour (see the module docstring).

    Attributes
    ----------
    respond
        Answers one request body with a chat-completion object.
    fail
        ``custom_id`` → ``(status code, error message)`` for lines that fail.
    expire
        Expire every batch when it would finish (unanswered lines become ``batch_expired``).
    answered_before_expiry
        How many lines are answered before an expiry.
    invalid
        Fail validation with this message (the batch ends ``failed``).
    refuse_after
        Answer 400 to creating any batch after this many (a provider limit reached mid-job).
    steps_per_status
        How many polls each status lasts.
    """

    respond: Respond = echo_completion
    fail: Mapping[str, tuple[int, str]] = field(default_factory=dict)
    expire: bool = False
    answered_before_expiry: int = 0
    invalid: str | None = None
    refuse_after: int | None = None
    steps_per_status: int = 1
    files: dict[str, tuple[str, str, bytes]] = field(
        default_factory=dict
    )  # id → (purpose, name, data)
    batches: dict[str, _Batch] = field(default_factory=dict)
    _ids: Any = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- routing --

    def answer(self, request: RecordedRequest, route: str) -> tuple[int, bytes] | None:
        """The status and JSON body for a Batch API request, or ``None`` if not one of ours."""
        parts = route.strip("/").split("/")[1:]  # after "v1"
        with self._lock:
            if parts[:1] == ["files"]:
                return self._files(request, parts[1:])
            if parts[:1] == ["batches"]:
                return self._batches(request, parts[1:])
        return None

    def _files(self, request: RecordedRequest, rest: list[str]) -> tuple[int, bytes]:
        if not rest and request.method == "POST":
            fields = parse_multipart(request.headers.get("content-type", ""), request.body)
            purpose = fields.get("purpose", (None, b""))[1].decode()
            name, data = fields.get("file", ("upload", b""))
            file_id = self._new_id("file")
            self.files[file_id] = (purpose, name or "upload", data)
            return 200, self._file_object(file_id)
        if rest and rest[0] in self.files:
            if rest[1:] == ["content"]:
                return 200, self.files[rest[0]][2]
            if not rest[1:]:
                return 200, self._file_object(rest[0])
        return 404, _error(f"No such file: {'/'.join(rest)}")

    def _batches(self, request: RecordedRequest, rest: list[str]) -> tuple[int, bytes]:
        if not rest and request.method == "POST":
            return self._create(request.json or {})
        if not rest and request.method == "GET":
            data = [self._batch_object(b) for b in self.batches.values()]
            return 200, dumps_compact({"object": "list", "data": data}).encode()
        batch = self.batches.get(rest[0]) if rest else None
        if batch is None:
            return 404, _error(f"No such batch: {'/'.join(rest)}")
        if rest[1:] == ["cancel"] and request.method == "POST":
            if batch.status in ("validating", "in_progress", "finalizing"):
                batch.status = "cancelling"
            return 200, dumps_compact(self._batch_object(batch)).encode()
        self._advance(batch)
        return 200, dumps_compact(self._batch_object(batch)).encode()

    # -- behaviour --

    def _create(self, body: dict[str, Any]) -> tuple[int, bytes]:
        file_id = body.get("input_file_id")
        if file_id not in self.files:
            return 400, _error(f"Unknown input_file_id {file_id!r}")
        if self.refuse_after is not None and len(self.batches) >= self.refuse_after:
            return 400, _error(f"Too many batches: at most {self.refuse_after} at a time")
        if body.get("endpoint") != "/v1/chat/completions":
            return 400, _error(f"Unsupported endpoint {body.get('endpoint')!r}")
        batch = _Batch(
            id=self._new_id("batch"),
            input_file_id=file_id,
            endpoint=body["endpoint"],
            completion_window=str(body.get("completion_window")),
            metadata=dict(body.get("metadata") or {}),
            created_at=int(time.time()),
        )
        batch.counts["total"] = len(self._lines(file_id))
        self.batches[batch.id] = batch
        return 200, dumps_compact(self._batch_object(batch)).encode()

    def _advance(self, batch: _Batch) -> None:
        """One poll: the batch moves on when its status has lasted its steps."""
        if batch.status in ("completed", "failed", "expired", "cancelled"):
            return
        batch.polls += 1
        if batch.polls < self.steps_per_status:
            return
        batch.polls = 0
        if batch.status == "cancelling":
            self._finish(
                batch, "cancelled", limit=batch.counts["completed"] + batch.counts["failed"]
            )
        elif batch.status == "validating" and self.invalid is not None:
            batch.status = "failed"
            batch.errors = {
                "object": "list",
                "data": [{"code": "invalid", "message": self.invalid}],
            }
        elif batch.status == "finalizing":
            if self.expire:
                self._finish(batch, "expired", limit=self.answered_before_expiry)
            else:
                self._finish(batch, "completed", limit=None)
        else:
            batch.status = _FLOW[_FLOW.index(batch.status) + 1]

    def _finish(self, batch: _Batch, status: str, *, limit: int | None) -> None:
        """Write the output and error files: each line answered, failed, or not done."""
        outputs: list[bytes] = []
        errors: list[bytes] = []
        for position, line in enumerate(self._lines(batch.input_file_id)):
            custom_id = str(line.get("custom_id"))
            record: dict[str, Any] = {"id": f"batch_req_{position}", "custom_id": custom_id}
            if limit is not None and position >= limit:
                code = "batch_expired" if status == "expired" else "batch_cancelled"
                record.update(response=None, error={"code": code, "message": f"not run: {status}"})
                errors.append(dumps_compact(record).encode())
            elif custom_id in self.fail:
                status_code, message = self.fail[custom_id]
                body = {"error": {"message": message, "type": "invalid_request_error"}}
                record.update(response={"status_code": status_code, "body": body}, error=None)
                errors.append(dumps_compact(record).encode())
            else:
                answer = self.respond(dict(line.get("body") or {}))
                record.update(response={"status_code": 200, "body": answer}, error=None)
                outputs.append(dumps_compact(record).encode())
        batch.counts.update(completed=len(outputs), failed=len(errors))
        if outputs:
            batch.output_file_id = self._store("batch_output", outputs)
        if errors:
            batch.error_file_id = self._store("batch_error", errors)
        batch.status = status

    # -- helpers --

    def _lines(self, file_id: str) -> list[dict[str, Any]]:
        data = self.files[file_id][2]
        return [json.loads(line) for line in data.splitlines() if line.strip()]

    def _store(self, purpose: str, lines: list[bytes]) -> str:
        file_id = self._new_id("file")
        self.files[file_id] = (purpose, f"{purpose}.jsonl", b"\n".join(lines) + b"\n")
        return file_id

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids)}"

    def _file_object(self, file_id: str) -> bytes:
        purpose, name, data = self.files[file_id]
        return dumps_compact(
            {
                "id": file_id,
                "object": "file",
                "bytes": len(data),
                "created_at": 0,
                "filename": name,
                "purpose": purpose,
            }
        ).encode()

    def _batch_object(self, batch: _Batch) -> dict[str, Any]:
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": batch.endpoint,
            "input_file_id": batch.input_file_id,
            "completion_window": batch.completion_window,
            "status": batch.status,
            "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id,
            "created_at": batch.created_at,
            "request_counts": dict(batch.counts),
            "metadata": batch.metadata,
            "errors": batch.errors,
        }


def _error(message: str) -> bytes:
    return dumps_compact({"error": {"message": message, "type": "invalid_request_error"}}).encode()
