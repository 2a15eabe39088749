"""Turn the many shapes of server error bodies into one readable error.

Servers report errors as ``{"error": {"message", "type", "param", "code"}}`` (OpenAI; ``code`` may
be a string or an int), a flat ``{"object": "error", "message": ...}`` (older vLLM, SGLang),
``{"error": "text"}`` (TGI), ``{"detail": "..."}`` or a list of validation errors (FastAPI-based
servers), or plain text / HTML from a proxy. :func:`error_for_status` picks the exception class
and writes a one-line message with a hint that says what to do.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tf_magics._text import one_line, redact
from tf_magics.errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ContextLengthError,
    RateLimitError,
    ServerError,
)

__all__ = ["ErrorInfo", "error_for_status", "is_context_length", "parse_error_body"]

_MAX_MESSAGE = 300

_CONTEXT_CODES = {"context_length_exceeded", "exceed_context_size_error", "string_above_max_length"}
_CONTEXT_TEXT = re.compile(
    r"maximum context length|context length|context window|context size|"
    r"exceeds? the (?:model'?s? )?(?:maximum|context)|too many tokens|prompt is too long|"
    r"input is too long|tokens \+ `max_new_tokens` must be|requested \d+ tokens",
    re.IGNORECASE,
)

_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass(frozen=True)
class ErrorInfo:
    """What could be read out of an error body."""

    message: str
    code: str | int | None = None
    type: str | None = None
    body: Any = None


_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)
_INVISIBLE = re.compile(
    r"<(script|style|head)\b[^>]*>.*?</\1\s*>|<!--.*?-->", re.IGNORECASE | re.DOTALL
)
_TAG = re.compile(r"<[^>]+>")


def _page_text(text: str) -> str:
    """The readable part of an HTML error page from a proxy (its title, else its text)."""
    if not _TAG.search(text):
        return text
    title = _TITLE.search(text)
    if title and title.group(1).strip():
        return html.unescape(_TAG.sub(" ", title.group(1)))
    return html.unescape(_TAG.sub(" ", _INVISIBLE.sub(" ", text)))


def _message(text: str) -> str:
    return one_line(text, _MAX_MESSAGE)


def _from_validation_list(items: list[Any]) -> str:
    parts = []
    for item in items[:3]:
        if isinstance(item, dict):
            loc = ".".join(str(p) for p in item.get("loc", []) if p != "body")
            msg = str(item.get("msg") or item.get("message") or item)
            parts.append(f"{loc}: {msg}" if loc else msg)
        else:
            parts.append(str(item))
    more = f" (and {len(items) - 3} more)" if len(items) > 3 else ""
    return "; ".join(parts) + more


def parse_error_body(raw: bytes | str | Any, *, secrets: Iterable[str | None] = ()) -> ErrorInfo:
    """Extract a human message, code and type from an error body of any known shape.

    ``secrets`` (the API key) are masked in the whole body first, before any part of it is cut
    short: a cut could leave part of a secret that no longer matches it.
    """
    if isinstance(raw, (bytes, bytearray)):
        raw = bytes(raw).decode("utf-8", errors="replace")
    raw = redact(raw, secrets)
    data: Any = raw
    if isinstance(raw, str):
        try:
            data = json.loads(raw)
        except ValueError:
            return ErrorInfo(message=_message(_page_text(raw)) or "(empty body)", body=raw)
    if isinstance(data, list):
        return ErrorInfo(message=_message(_from_validation_list(data)), body=data)
    if not isinstance(data, dict):
        return ErrorInfo(message=_message(str(data)), body=data)
    error = data.get("error")
    if isinstance(error, dict):
        message = error.get("message") or error.get("msg") or error.get("detail") or ""
        code = error.get("code")
        kind = error.get("type")
        if isinstance(message, list):
            message = _from_validation_list(message)
        if not message and isinstance(error.get("metadata"), dict):
            message = str(error["metadata"].get("raw") or "")
        return ErrorInfo(
            message=_message(str(message) or json.dumps(error)),
            code=code if isinstance(code, (str, int)) else None,
            type=kind if isinstance(kind, str) else None,
            body=data,
        )
    if isinstance(error, str) and error:
        kind = data.get("error_type") or data.get("type")
        return ErrorInfo(
            message=_message(error), type=kind if isinstance(kind, str) else None, body=data
        )
    detail = data.get("detail")
    if isinstance(detail, list):
        return ErrorInfo(message=_message(_from_validation_list(detail)), body=data)
    if isinstance(detail, str) and detail:
        return ErrorInfo(message=_message(detail), body=data)
    message = data.get("message") or data.get("msg")
    if isinstance(message, str) and message:
        code = data.get("code")
        kind = data.get("type")
        return ErrorInfo(
            message=_message(message),
            code=code if isinstance(code, (str, int)) else None,
            type=kind if isinstance(kind, str) else None,
            body=data,
        )
    return ErrorInfo(message=_message(json.dumps(data)), body=data)


def is_context_length(info: ErrorInfo, status: int | None = None) -> bool:
    """True when the error says the prompt does not fit the model's context."""
    for value in (info.code, info.type):
        if isinstance(value, str) and value.lower() in _CONTEXT_CODES:
            return True
    if status == 413:
        return True
    return bool(_CONTEXT_TEXT.search(info.message))


def error_for_status(
    status: int | None,
    info: ErrorInfo,
    *,
    base_url: str,
    key_sent: bool,
    key_source: str | None = None,
    withheld: str | None = None,
) -> APIStatusError:
    """Build the exception for an error status (``None`` = an error inside a 200 stream).

    ``info`` must come from :func:`parse_error_body` with the key among its ``secrets``.
    """
    reason = _REASONS.get(status or 0, "")
    where = f"{base_url} answered {status} {reason}".rstrip() if status else f"{base_url} reported"
    text = f"{where}: {info.message}"
    common: dict[str, Any] = {
        "status_code": status,
        "code": info.code,
        "error_type": info.type,
        "body": info.body,
    }
    if is_context_length(info, status):
        return ContextLengthError(
            f"The conversation is too long for the model's context window ({text}).",
            hint="Trim the history (`%chat trim` or `chat.conversation.trim(...)`), "
            "or start afresh with `%%chat --new`.",
            **common,
        )
    if status in (401, 403):
        hint = _auth_hint(status, key_sent, key_source, withheld)
        return AuthenticationError(text, hint=hint, **common)
    if status == 429 or (status is None and info.code in (429, "rate_limit_exceeded")):
        quota = info.code == "insufficient_quota" or info.type == "insufficient_quota"
        hint = (
            "Your quota is used up: check the plan and billing."
            if quota
            else "Wait a moment and run the cell again, or lower the request rate."
        )
        return RateLimitError(text, hint=hint, **common)
    if status is not None and status >= 500:
        return ServerError(text, hint="The server failed; try again in a moment.", **common)
    if status is None:
        return APIStatusError(text, **common)
    return BadRequestError(text, hint=_BAD_REQUEST_HINTS.get(status), **common)


_BAD_REQUEST_HINTS = {
    402: "The account is out of credit: check the plan and billing.",
    404: "Check the base URL (it usually ends in /v1) and the model name "
    "(`%chat models` lists them).",
}


def _auth_hint(status: int, key_sent: bool, key_source: str | None, withheld: str | None) -> str:
    if not key_sent:
        if withheld:
            return withheld
        return (
            "No API key was sent: set TOKEN_FACTORY_API_KEY with TOKEN_FACTORY_BASE_URL "
            "(or OPENAI_API_KEY), or bind one to this server with ChatSettings.api_key_env."
        )
    if status == 401:
        source = f" (from {key_source})" if key_source else ""
        return f"The API key{source} was rejected: check it is current and for this server."
    return "The key is valid but not allowed to do this: check the model name and plan."
