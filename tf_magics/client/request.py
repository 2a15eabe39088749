"""One request, fully resolved: :class:`RequestOptions`, the JSON body it becomes, and its key.

Every path that talks to a server (a turn, a tool round, a structured reply, a row of ``map``)
builds its body here, so what is sent never depends on which feature sent it. For the same
reason, a request may carry a :class:`ChatHook`: a layer that sees every chat request at the
client's boundary, body built, and decides whether it goes to the network at all (the
record/replay cache of :mod:`tf_magics.cache` is one). Steps that only a request going to the
network needs (starting the local model, asking the server for its default model) can be
``deferred`` until the hook lets it through. The API key travels
as an :class:`ApiKey`, whose repr and str never show it: a traceback that prints the locals of a
frame (``%xmode Verbose``) cannot put the key into a notebook.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from tf_magics._text import exception_text
from tf_magics.budget import Caps
from tf_magics.cost import Price
from tf_magics.errors import ConfigurationError

if TYPE_CHECKING:
    from tf_magics.events import Event
    from tf_magics.types import Completion

    from .chunks import ChunkAccumulator

__all__ = ["ApiKey", "ChatHook", "DeferredStep", "RequestOptions", "SendLive", "encode_body"]

#: A step run on a request's options just before it goes to the network (see
#: :attr:`RequestOptions.deferred`).
DeferredStep = Callable[["RequestOptions"], Awaitable["RequestOptions"]]
#: What a :class:`ChatHook` calls to send the request for real: the options made ready, and
#: where the events go; returns the reply.
SendLive = Callable[["RequestOptions", "Callable[[Event], None] | None"], Awaitable["Completion"]]


class ApiKey:
    """An API key and where it came from; printing it shows only where it came from.

    Parameters
    ----------
    value
        The key itself (read with :meth:`reveal`, only where a header is written).
    source
        Where it came from, for messages (``"TOKEN_FACTORY_API_KEY"``, ``"set in Python"``).
    """

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str) -> None:
        self._value = value
        self.source = source

    def reveal(self) -> str:
        """The key itself."""
        return self._value

    def __repr__(self) -> str:
        return f"<API key from {self.source}>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ApiKey) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class ChatHook(Protocol):
    """A layer every chat request passes through at the client's boundary.

    :meth:`tf_magics.client.http.Client.chat` builds the request body, then hands it to the
    hook instead of sending it; the hook either answers by itself (events into ``on_event``,
    deltas folded into ``accumulator``, like a server would) or calls ``send``.
    """

    @property
    def offline(self) -> bool:
        """True when the hook never lets a request reach the network."""

    async def exchange(
        self,
        options: RequestOptions,
        body: dict[str, Any],
        accumulator: ChunkAccumulator,
        on_event: Callable[[Event], None] | None,
        send: SendLive,
    ) -> Completion:
        """Answer one request (``body`` is the JSON body that would be sent)."""


@dataclass(frozen=True)
class RequestOptions:
    """Fully resolved settings for one request (a typed snapshot, safe to pass around).

    Attributes
    ----------
    api_key
        The key to send, or ``None``; bound to this base URL's origin (see
        :mod:`tf_magics.credentials`).
    withheld_key
        When a configured key was *not* sent to this base URL: one line that says which and why.
    hook
        A layer the request passes through before the network (record/replay), or ``None``.
    deferred
        Steps to run on these options only if the request really goes to the network
        (:meth:`ready`): filling in the endpoint can wait until a hook lets the request through.
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
    api_key: ApiKey | None = field(default=None, repr=False)
    withheld_key: str | None = None
    base_url_source: str | None = None
    first_token_timeout: float | None = None
    reply_timeout: float | None = None
    max_retry_wait: float = 60.0
    prices: dict[str, Price] = field(default_factory=dict)
    caps: Caps = field(default_factory=Caps)
    schema_retries: int = 1
    hook: ChatHook | None = field(default=None, repr=False, compare=False)
    deferred: tuple[DeferredStep, ...] = field(default=(), repr=False, compare=False)

    def price(self, published: dict[str, Price] | None = None) -> Price | None:
        """The price of this request's model: the settings' price, else the server's."""
        model = self.model or ""
        if model in self.prices:
            return self.prices[model]
        return (published or {}).get(model)

    async def ready(self) -> RequestOptions:
        """These options with the :attr:`deferred` steps run (in order), ready to be sent."""
        options = replace(self, deferred=())
        for step in self.deferred:
            options = replace(await step(options), deferred=())
        return options

    @property
    def key_source(self) -> str | None:
        """Where the key that is sent comes from (``None``: no key is sent)."""
        return self.api_key.source if self.api_key is not None else None

    def secrets(self) -> list[str]:
        """What must be masked in anything shown about this request (the key)."""
        return [self.api_key.reveal()] if self.api_key is not None else []

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


def encode_body(body: dict[str, Any]) -> bytes:
    """The body as UTF-8 JSON, or a clean error when it cannot be sent as JSON.

    Raises
    ------
    ConfigurationError
        For NaN or infinite numbers, values JSON cannot hold, or text that cannot be encoded.
    """
    try:
        return json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as error:  # UnicodeEncodeError is a ValueError
        raise ConfigurationError(
            f"The request cannot be sent as JSON ({exception_text(error)}).",
            hint="Check extra_body and the values passed to the request (no NaN, no objects).",
        ) from None
