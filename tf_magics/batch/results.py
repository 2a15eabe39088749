"""A finished batch's output and error files, read back into one outcome per request.

Lines are read one at a time and only what a row needs is kept (a :class:`Completion`, or the
error in one line), so a file of hundreds of thousands of replies does not have to fit twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tf_magics._text import one_line, redact
from tf_magics.client import ChunkAccumulator
from tf_magics.client.error_bodies import parse_error_body
from tf_magics.types import Completion

__all__ = ["Outcome", "read_results"]


@dataclass(frozen=True)
class Outcome:
    """What became of one request of a batch: its completion, or why there is none."""

    completion: Completion | None = None
    error: str | None = None


def read_results(content: bytes, secrets: list[str]) -> Iterator[tuple[str, Outcome]]:
    """``(custom_id, outcome)`` for every line of an output or error file.

    A line that cannot be read is skipped (it has no custom id to attach an error to); lines
    without a reply or with an error status become errors.
    """
    for raw in content.splitlines():
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(line, dict) or not isinstance(line.get("custom_id"), str):
            continue
        yield line["custom_id"], _outcome(line, secrets)


def _outcome(line: dict[str, Any], secrets: list[str]) -> Outcome:
    response = line.get("response")
    error = line.get("error")
    if isinstance(response, dict) and response.get("status_code") == 200:
        accumulator = ChunkAccumulator()
        accumulator.feed(response.get("body"))
        if accumulator.error is None:
            return Outcome(completion=accumulator.completion(ended="complete"))
        return Outcome(
            error=parse_error_body({"error": accumulator.error}, secrets=secrets).message
        )
    if isinstance(response, dict) and response.get("body") is not None:
        status = response.get("status_code")
        said = parse_error_body(response.get("body"), secrets=secrets).message
        return Outcome(error=f"{status}: {said}" if status else said)
    if isinstance(error, dict):
        code, message = error.get("code"), error.get("message")
        text = one_line(redact(str(message or code or "failed"), secrets), 300)
        return Outcome(error=f"{code}: {text}" if code and message else text)
    return Outcome(error="the batch gave no reply for this request")
