"""What to send: endpoint, key, model, sampling parameters and limits.

One :class:`ChatSettings` object is shared by the ``%%chat`` magic, the control panel, ``%config``
and the Python API, so a change made in one place shows in all of them. Values resolve in this
order: a cell flag or call argument (see :meth:`ChatSettings.resolve`) > this object (panel,
``%config``, Python) > the environment > defaults.

Environment variables, read when a request is made (so ``os.environ`` changes apply):

``TOKEN_FACTORY_API_KEY`` / ``TOKEN_FACTORY_BASE_URL``
    Key and base URL (including ``/v1``). A key without a base URL means Token Factory's public
    endpoint.
``OPENAI_API_KEY`` / ``OPENAI_BASE_URL``
    Used only when no ``TOKEN_FACTORY_*`` variable is set; a key alone means OpenAI's endpoint.
``TOKEN_FACTORY_MODEL``
    The default model.

The two pairs are never mixed: an ``OPENAI_API_KEY`` is not sent to a ``TOKEN_FACTORY_BASE_URL``.
The API key is not a trait, so it never appears in ``%config`` output, a repr, the panel's widget
state or a saved file.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from traitlets import Bool, Dict, Float, Int, List, TraitError, Unicode, validate
from traitlets.config import Configurable

from .errors import ConfigurationError

__all__ = ["LOCAL", "ChatSettings", "RequestOptions"]

TOKEN_FACTORY_URL = "https://api.tokenfactory.nebius.com/v1"
OPENAI_URL = "https://api.openai.com/v1"
#: A base URL of ``"local"`` asks for the embedded local model server.
LOCAL = "local"

# name -> (low, high) for the sampling parameters that have a documented range.
_RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "presence_penalty": (-2.0, 2.0),
    "frequency_penalty": (-2.0, 2.0),
}

#: Sampling parameters sent only when set (``None`` = leave it to the server).
SAMPLING_PARAMETERS = (
    "temperature",
    "top_p",
    "seed",
    "stop",
    "presence_penalty",
    "frequency_penalty",
)


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


def _is_blank(value: str | None) -> bool:
    return value is None or not value.strip()


class ChatSettings(Configurable):
    """Settings shared by the magic, the panel and the Python API.

    Every trait is configurable, e.g. ``%config ChatSettings.temperature = 0.2``. ``None`` means
    "not set": the parameter is not sent and the server's default applies.

    Parameters
    ----------
    api_key
        The API key; when omitted it is read from the environment at request time.
    **kwargs
        Initial values of the traits below.
    """

    base_url = Unicode(
        None,
        allow_none=True,
        help="Base URL of the OpenAI-compatible API, including /v1 ('local' = the built-in model).",
    ).tag(config=True)
    model = Unicode(None, allow_none=True, help="Model name (default: TOKEN_FACTORY_MODEL).").tag(
        config=True
    )
    temperature = Float(None, allow_none=True, help="Sampling temperature, 0-2.").tag(config=True)
    top_p = Float(None, allow_none=True, help="Nucleus sampling, 0-1.").tag(config=True)
    max_tokens = Int(1024, help="Upper bound on the reply length in tokens (always sent).").tag(
        config=True
    )
    seed = Int(None, allow_none=True, help="Sampling seed, for repeatable replies.").tag(
        config=True
    )
    stop = List(Unicode(), default_value=None, allow_none=True, help="Stop sequences.").tag(
        config=True
    )
    presence_penalty = Float(None, allow_none=True, help="-2 to 2.").tag(config=True)
    frequency_penalty = Float(None, allow_none=True, help="-2 to 2.").tag(config=True)
    stream = Bool(True, help="Stream replies as they are generated.").tag(config=True)
    include_usage = Bool(
        True, help="Ask for token usage when streaming (stream_options.include_usage)."
    ).tag(config=True)
    connect_timeout = Float(10.0, help="Seconds to wait for a connection.").tag(config=True)
    read_timeout = Float(
        120.0, help="Seconds to wait for the next bytes of a reply (the first token included)."
    ).tag(config=True)
    max_retries = Int(2, help="Retries of a failed request before any reply arrived.").tag(
        config=True
    )
    max_tool_rounds = Int(8, help="Maximum model requests per turn when tools are called.").tag(
        config=True
    )
    extra_body = Dict(help="Extra provider-specific fields merged into every request.").tag(
        config=True
    )
    history_max_turns = Int(
        None, allow_none=True, help="Trim the oldest turns so at most this many are sent."
    ).tag(config=True)
    history_max_tokens = Int(
        None, allow_none=True, help="Trim the oldest turns so the history stays under this size."
    ).tag(config=True)
    tool_result_max_chars = Int(
        20_000, help="Tool results longer than this are cut (with a note) before being sent."
    ).tag(config=True)

    def __init__(self, *, api_key: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._api_key: str | None = None
        self.api_key = api_key

    # -- the key: not a trait, so it never reaches %config output or widget state --

    @property
    def api_key(self) -> str | None:
        """The explicitly set key (``None`` = read the environment at request time)."""
        return self._api_key

    @api_key.setter
    def api_key(self, value: str | None) -> None:
        if value is not None and not isinstance(value, str):
            raise ConfigurationError("The API key must be a string.")
        self._api_key = None if _is_blank(value) else value

    def __repr__(self) -> str:
        shown = {name: getattr(self, name) for name in ("base_url", "model", *SAMPLING_PARAMETERS)}
        values = ", ".join(f"{k}={v!r}" for k, v in shown.items() if v is not None)
        return f"ChatSettings({values}, max_tokens={self.max_tokens}, key={self.key_status()})"

    # -- validation --

    @validate("temperature", "top_p", "presence_penalty", "frequency_penalty")
    def _check_range(self, proposal: Any) -> float | None:
        name = proposal["trait"].name
        try:
            return check_sampling_value(name, proposal["value"])
        except ConfigurationError as error:
            raise TraitError(str(error)) from None

    @validate(
        "max_tokens",
        "max_retries",
        "max_tool_rounds",
        "history_max_turns",
        "history_max_tokens",
        "tool_result_max_chars",
    )
    def _check_positive(self, proposal: Any) -> int | None:
        name, value = proposal["trait"].name, proposal["value"]
        if value is None and name.startswith("history_"):
            return None
        low = 0 if name == "max_retries" else 1
        if value < low:
            raise TraitError(f"{name} must be at least {low}, got {value}.")
        return int(value)

    @validate("base_url")
    def _check_base_url(self, proposal: Any) -> str | None:
        value = proposal["value"]
        if value is None or _is_blank(value):
            return None
        return check_base_url(value)

    # -- resolution --

    def endpoint(self, env: Mapping[str, str] | None = None) -> tuple[str | None, str | None, str]:
        """Resolve ``(base_url, api_key, where_from)`` from this object and the environment.

        ``where_from`` names the source of the base URL (for messages); the key itself is never
        part of a message.
        """
        env = os.environ if env is None else env
        tf_key, tf_url = env.get("TOKEN_FACTORY_API_KEY"), env.get("TOKEN_FACTORY_BASE_URL")
        oa_key, oa_url = env.get("OPENAI_API_KEY"), env.get("OPENAI_BASE_URL")
        env_key = tf_key if not _is_blank(tf_key) else oa_key
        if self.base_url is not None:
            key = self.api_key or (None if self.base_url == LOCAL else env_key)
            return self.base_url, key, "the settings"
        if not (_is_blank(tf_key) and _is_blank(tf_url)):
            url = check_base_url(tf_url) if tf_url and not _is_blank(tf_url) else TOKEN_FACTORY_URL
            source = "TOKEN_FACTORY_BASE_URL" if not _is_blank(tf_url) else "Token Factory"
            return url, self.api_key or (tf_key if not _is_blank(tf_key) else None), source
        if not (_is_blank(oa_key) and _is_blank(oa_url)):
            url = check_base_url(oa_url) if oa_url and not _is_blank(oa_url) else OPENAI_URL
            source = "OPENAI_BASE_URL" if not _is_blank(oa_url) else "OpenAI"
            return url, self.api_key or (oa_key if not _is_blank(oa_key) else None), source
        return None, self.api_key, "nothing configured"

    def key_source(self, env: Mapping[str, str] | None = None) -> str | None:
        """Where the key that would be sent comes from, or ``None`` when there is none."""
        env = os.environ if env is None else env
        _, key, _ = self.endpoint(env)
        if key is None:
            return None
        if key == self._api_key:
            return "set in Python"
        for name in ("TOKEN_FACTORY_API_KEY", "OPENAI_API_KEY"):
            if env.get(name) == key:
                return name
        return "environment"

    def key_status(self, env: Mapping[str, str] | None = None) -> str:
        """A description of the key that never reveals any of it."""
        source = self.key_source(env)
        return "not set" if source is None else f"set ({source})"

    def resolve(self, env: Mapping[str, str] | None = None, **overrides: Any) -> RequestOptions:
        """Merge ``overrides`` (a cell's flags; ``None`` = not given) over these settings.

        Raises
        ------
        ConfigurationError
            If a value is out of range or of the wrong type.
        """
        env = os.environ if env is None else env
        unknown = set(overrides) - set(self.trait_names()) - {"api_key"}
        if unknown:
            raise ConfigurationError(f"Unknown setting(s): {', '.join(sorted(unknown))}.")
        given = {k: v for k, v in overrides.items() if v is not None}
        probe = self
        if "base_url" in given or "api_key" in given:
            probe = ChatSettings(
                base_url=given.get("base_url", self.base_url),
                api_key=given.get("api_key", self.api_key),
            )
        base_url, key, source = probe.endpoint(env)
        sampling: dict[str, Any] = {}
        for name in SAMPLING_PARAMETERS:
            value = given.get(name, getattr(self, name))
            if name == "stop":
                value = check_stop(value)
            elif name == "seed":
                value = check_int("seed", value, low=None)
            else:
                value = check_sampling_value(name, value)
            if value is not None:
                sampling[name] = value
        model = given.get("model", self.model)
        if _is_blank(model):
            model = env.get("TOKEN_FACTORY_MODEL") or None
        return RequestOptions(
            base_url=base_url,
            model=model,
            max_tokens=check_int("max_tokens", given.get("max_tokens", self.max_tokens), low=1),
            stream=bool(given.get("stream", self.stream)),
            sampling=sampling,
            connect_timeout=float(given.get("connect_timeout", self.connect_timeout)),
            read_timeout=float(given.get("read_timeout", self.read_timeout)),
            max_retries=check_int("max_retries", given.get("max_retries", self.max_retries), low=0),
            include_usage=bool(given.get("include_usage", self.include_usage)),
            max_tool_rounds=check_int(
                "max_tool_rounds", given.get("max_tool_rounds", self.max_tool_rounds), low=1
            ),
            extra_body=dict(given.get("extra_body", self.extra_body)),
            api_key=key,
            key_source=probe.key_source(env),
            base_url_source=source,
        )

    def summary(self, env: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The current values for display (the key as a status, never its value)."""
        base_url, _, source = self.endpoint(env)
        if base_url in (None, LOCAL):
            from .local import local_extra_installed

            shown = (
                "local: the built-in demo model (started on first use)"
                if base_url == LOCAL or local_extra_installed()
                else "not set: see the README for the three ways to configure it"
            )
        else:
            shown = f"{base_url} (from {source})"
        data: dict[str, Any] = {
            "base_url": shown,
            "api_key": self.key_status(env),
            "model": self.model or (env or os.environ).get("TOKEN_FACTORY_MODEL"),
        }
        for name in (*SAMPLING_PARAMETERS, "max_tokens", "stream", "max_tool_rounds"):
            data[name] = getattr(self, name)
        return data


def check_sampling_value(name: str, value: Any) -> float | None:
    """Validate one ranged sampling parameter (``None`` passes: not set)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{name} must be a number, got {value!r}.", hint=_range_hint(name))
    low, high = _RANGES[name]
    if math.isnan(value) or not low <= value <= high:
        raise ConfigurationError(f"{name} must be between {low:g} and {high:g}, got {value!r}.")
    return float(value)


def _range_hint(name: str) -> str:
    low, high = _RANGES[name]
    return f"Use a value from {low:g} to {high:g}."


def check_int(name: str, value: Any, *, low: int | None) -> Any:
    """Validate an integer setting (``None`` passes for optional ones)."""
    if value is None:
        if low is None:
            return None
        raise ConfigurationError(f"{name} must be set.")
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ConfigurationError(f"{name} must be a whole number, got {value!r}.")
    if low is not None and value < low:
        raise ConfigurationError(f"{name} must be at least {low}, got {value}.")
    return value


def check_stop(value: Any) -> list[str] | None:
    """Validate stop sequences: a string or a list of up to 4 non-empty strings."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(s, str) for s in value):
        raise ConfigurationError(f"stop must be a string or a list of strings, got {value!r}.")
    stops = [s for s in value if s]
    if len(stops) > 4:
        raise ConfigurationError(
            f"At most 4 stop sequences are allowed, got {len(stops)}.",
            hint="Drop the least useful ones.",
        )
    return stops or None


def check_base_url(value: str) -> str:
    """Validate a base URL (``http(s)://host[:port]/path`` or ``local``)."""
    url = value.strip()
    if url == LOCAL:
        return url
    if not url.startswith(("http://", "https://")) or len(url.split("://", 1)[1]) == 0:
        raise ConfigurationError(
            f"The base URL must start with http:// or https://, got {url!r}.",
            hint="For example https://api.tokenfactory.nebius.com/v1 (include the /v1).",
        )
    return url.rstrip("/")
