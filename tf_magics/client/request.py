"""One request, fully resolved: :class:`RequestOptions` and the JSON body it becomes.

Every path that talks to a server (a turn, a tool round, a structured reply, a row of ``map``)
builds its body here, so what is sent never depends on which feature sent it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["RequestOptions"]


@dataclass(frozen=True)
class RequestOptions:
    """Fully resolved settings for one request (a typed snapshot, safe to pass around).

    ``api_key`` is excluded from the repr; :attr:`key_source` says where it came from.
    """

    base_url: str | None
    model: str | None
    max_tokens: int
    stream: bool
    sampling: dict[str, Any]
    connect_timeout: float
    read_timeout: float
    max_retries: int
    include_usage: bool
    max_tool_rounds: int
    extra_body: dict[str, Any]
    api_key: str | None = field(default=None, repr=False)
    key_source: str | None = None
    base_url_source: str | None = None

    def request_body(self, messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        """The JSON body for ``/chat/completions`` (unset parameters left out)."""
        body: dict[str, Any] = {"messages": messages}
        if self.model:
            body["model"] = self.model
        body["max_tokens"] = self.max_tokens
        body.update(self.sampling)
        body.update(self.extra_body)
        body.update(extra)
        body["stream"] = self.stream
        return body
