"""The table of settings: one :class:`Option` per setting, with its type, range, help and flags.

Everything that lists settings is generated from :data:`OPTIONS`, so adding a sampling parameter
means adding one entry here:

- the traits of :class:`~tf_magics.ChatSettings` (``%config``, ``%chat set``, Python);
- the request body: every ``wire`` option that is set is sent under its name;
- the flags of a ``%%chat`` cell and of ``%chat retry`` (``flags``), and the per-cell overrides
  they produce;
- the panel's setting controls (``widget``).

Each option checks its own values (:meth:`Option.check`), the same way wherever a value comes
from: a trait assignment, a cell flag, a keyword argument of :meth:`tf_magics.Chat.ask` or the
panel. Nothing here imports traitlets, IPython or httpx.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from ._text import truncate
from .errors import ConfigurationError

__all__ = [
    "CACHE_MODES",
    "LOCAL",
    "LOCAL_SOURCE",
    "OPTIONS",
    "Option",
    "OptionKind",
    "Widget",
    "check_base_url",
    "option",
]

#: A base URL of ``"local"`` asks for the embedded local model server.
LOCAL = "local"
#: The ``base_url_source`` of requests sent to the embedded local model.
LOCAL_SOURCE = "the built-in local model"

#: The record/replay modes of ``ChatSettings.cache`` (see :mod:`tf_magics.cache`).
CACHE_MODES = ("off", "auto", "record", "replay")

OptionKind = Literal["float", "int", "bool", "str", "strings", "mapping"]
#: The panel control an option gets: a slider that can be left unset, a whole number, a seed
#: (blank = random), tags (a list of strings), a toggle, a choice among ``choices``, a cap
#: (blank = none) or prices by model.
Widget = Literal["slider", "whole", "seed", "tags", "toggle", "choice", "cap", "prices"]

#: Request fields that the client itself writes; ``extra_body`` may not replace them.
RESERVED_BODY_KEYS = frozenset(
    ("messages", "model", "stream", "stream_options", "tools", "tool_choice", "n")
)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: Fields that bound the reply's length; ``max_tokens`` is the one setting for it.
_LENGTH_KEYS = frozenset(("max_tokens", "max_completion_tokens", "max_new_tokens", "num_predict"))


@dataclass(frozen=True)
class Option:
    """One setting.

    Attributes
    ----------
    name
        The setting's name (a trait of :class:`~tf_magics.ChatSettings`, a keyword of
        :meth:`tf_magics.Chat.ask`, and the request field when ``wire``).
    kind
        Its type: ``float``, ``int``, ``bool``, ``str``, ``strings`` (a list of strings) or
        ``mapping`` (a JSON object).
    help
        One line for ``%config``, ``%chat?`` and the panel's tooltips.
    default
        The default; ``None`` means unset (a ``wire`` option is then not sent).
    low, high
        The accepted range (inclusive); for ``strings``, ``high`` is the most items allowed.
    flags
        Its spellings on a ``%%chat`` line (``("-t", "--temperature")``); empty for none.
    flag_value
        For a switch flag that takes no value (``--no-stream``): the value it sets.
    wire
        Sent in the request body under ``name`` whenever it is set.
    widget
        The panel control for it, if the panel shows it.
    label
        The panel's label (default: the name, capitalized).
    resting
        Where a slider rests while the value is unset (the usual server default).
    validator
        Extra checks after the type and range checks (returns the value to keep).
    choices
        For a ``str`` option: the only values it takes (compared without case or spaces).
    """

    name: str
    kind: OptionKind
    help: str
    default: Any = None
    low: float | None = None
    high: float | None = None
    flags: tuple[str, ...] = ()
    flag_value: Any = None
    wire: bool = False
    widget: Widget | None = None
    label: str | None = None
    resting: float | None = None
    validator: Callable[[Any], Any] | None = None
    choices: tuple[str, ...] = ()

    @property
    def nullable(self) -> bool:
        """Whether ``None`` (unset) is a valid value."""
        return self.default is None

    @property
    def css_class(self) -> str:
        """The CSS class of the option's panel control (``tf-magics-top-p``)."""
        return "tf-magics-" + self.name.replace("_", "-")

    @property
    def title(self) -> str:
        """The label shown next to its control."""
        return self.label or self.name.replace("_", " ").capitalize()

    def range_text(self) -> str:
        """The range in words (``"0 to 2"``, ``"at least 1"``), or ``""``."""
        if self.kind == "strings":
            return f"at most {self.high:g}" if self.high is not None else ""
        if self.low is not None and self.high is not None:
            return f"{self.low:g} to {self.high:g}"
        if self.low is not None:
            return f"at least {self.low:g}"
        return ""

    def check(self, value: Any) -> Any:
        """The value, validated and normalized (``3`` for a float option becomes ``3.0``).

        Raises
        ------
        ConfigurationError
            If the value has the wrong type or is out of range.
        """
        if value is None:
            if self.nullable:
                return None
            raise ConfigurationError(f"{self.name} must be set.", hint=self._range_hint())
        checked = _CHECKERS[self.kind](self, value)
        return self.validator(checked) if self.validator is not None else checked

    def _range_hint(self) -> str | None:
        text = self.range_text()
        return f"Use a value from {text}." if " to " in text else None

    def _fail(self, value: Any, expected: str) -> ConfigurationError:
        shown = truncate(repr(value), 80)
        return ConfigurationError(
            f"{self.name} must be {expected}, got {shown}.", hint=self._range_hint()
        )


def _check_number(spec: Option, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise spec._fail(value, "a number")
    if not math.isfinite(value):
        raise spec._fail(value, "a finite number")
    low, high = spec.low, spec.high
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigurationError(f"{spec.name} must be {_between(spec)}, got {value!r}.")
    return float(value)


def _check_int(spec: Option, value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise spec._fail(value, "a whole number")
    low, high = spec.low, spec.high
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigurationError(f"{spec.name} must be {_between(spec)}, got {value}.")
    return value


def _between(spec: Option) -> str:
    if spec.low is not None and spec.high is not None:
        return f"between {spec.low:g} and {spec.high:g}"
    if spec.low is not None:
        return f"at least {spec.low:g}"
    return f"at most {spec.high:g}"


def _check_bool(spec: Option, value: Any) -> bool:
    if not isinstance(value, bool):
        raise spec._fail(value, "true or false")
    return value


def _check_str(spec: Option, value: Any) -> str | None:
    if not isinstance(value, str):
        raise spec._fail(value, "a string")
    text = value.strip()
    if spec.choices:
        choice = text.lower()
        if choice not in spec.choices:
            raise ConfigurationError(
                f"{spec.name} must be one of {', '.join(spec.choices)}, got {truncate(text, 40)!r}."
            )
        return choice
    return text or None if spec.nullable else text


def _check_strings(spec: Option, value: Any) -> list[str] | None:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(s, str) for s in value):
        raise spec._fail(value, "a string or a list of strings")
    items = [s for s in value if s]
    if spec.high is not None and len(items) > spec.high:
        raise ConfigurationError(
            f"At most {spec.high:g} {spec.name} values are allowed, got {len(items)}.",
            hint="Drop the least useful ones.",
        )
    return items or None


def _check_mapping(spec: Option, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise spec._fail(value, "a JSON object (a dict with string keys)")
    return dict(value)


_CHECKERS: dict[OptionKind, Callable[[Option, Any], Any]] = {
    "float": _check_number,
    "int": _check_int,
    "bool": _check_bool,
    "str": _check_str,
    "strings": _check_strings,
    "mapping": _check_mapping,
}


def check_base_url(value: str) -> str:
    """Validate a base URL (``http(s)://host[:port]/path``, or ``local``).

    Raises
    ------
    ConfigurationError
        If it is not an http(s) URL with a host and a valid port.
    """
    url = value.strip()
    if url == LOCAL:
        return url
    hint = "For example https://<your host>/v1 (include the /v1)."
    if not url.startswith(("http://", "https://")) or len(url.split("://", 1)[1]) == 0:
        raise ConfigurationError(
            f"The base URL must start with http:// or https://, got {truncate(url, 80)!r}.",
            hint=hint,
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- reading it validates it (a ValueError when out of range)
    except ValueError as error:
        raise ConfigurationError(
            f"The base URL {truncate(url, 80)!r} is not a valid URL ({error}).", hint=hint
        ) from None
    if not parts.hostname:
        raise ConfigurationError(f"The base URL {truncate(url, 80)!r} names no host.", hint=hint)
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise ConfigurationError("The base URL contains spaces or control characters.", hint=hint)
    return url.rstrip("/")


def _base_url(value: str | None) -> str | None:
    return None if value is None else check_base_url(value)


def _env_name(value: str | None) -> str | None:
    if value is not None and not _ENV_NAME.fullmatch(value):
        raise ConfigurationError(
            f"api_key_env must name an environment variable, got {truncate(value, 60)!r}.",
            hint="For example api_key_env=TOKEN_FACTORY_API_KEY.",
        )
    return value


def _prices(value: dict[str, Any]) -> dict[str, Any]:
    from tf_magics.cost import parse_price

    for model, price in value.items():
        try:
            parse_price(price, f"the price of {model!r}")
        except ValueError as error:
            raise ConfigurationError(
                f"prices: {error}.", hint='For example {"my-model": [0.5, 1.5]} (per million).'
            ) from None
    return value


def _budget_money(value: float | None) -> float | None:
    from tf_magics.budget import BUDGET_ENV, environment_budget

    cap = environment_budget().money
    if cap is not None and (value is None or value > cap):
        if value is None:
            return None  # unset: the environment's cap still applies
        raise ConfigurationError(
            f"{BUDGET_ENV} caps this kernel at {cap:g}: a notebook can lower the budget but not "
            f"raise it to {value:g}."
        )
    return value


def _budget_tokens(value: int | None) -> int | None:
    from tf_magics.budget import BUDGET_ENV, environment_budget

    cap = environment_budget().tokens
    if cap is not None and value is not None and value > cap:
        raise ConfigurationError(
            f"{BUDGET_ENV} caps this kernel at {cap:,} tokens: a notebook can lower "
            f"budget_tokens but not raise it to {value:,}."
        )
    return value


def _extra_body(value: dict[str, Any]) -> dict[str, Any]:
    reserved = sorted(set(value) & RESERVED_BODY_KEYS)
    if reserved:
        raise ConfigurationError(
            f"extra_body may not set {', '.join(reserved)}: tf_magics writes these fields itself.",
            hint="Use the matching setting or flag instead (model, stream, tools...).",
        )
    lengths = sorted(set(value) & _LENGTH_KEYS)
    if lengths:
        raise ConfigurationError(
            f"extra_body may not set {', '.join(lengths)}: the reply length is bounded by "
            "max_tokens.",
            hint="Set ChatSettings.max_tokens (or --max-tokens) instead.",
        )
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ConfigurationError(
            f"extra_body must be plain JSON (no NaN or infinity, no Python objects): {error}."
        ) from None
    return value


#: Every setting, in the order the panel and ``%chat settings`` show them.
OPTIONS: tuple[Option, ...] = (
    Option(
        "base_url",
        "str",
        "Base URL of the OpenAI-compatible API, including /v1 ('local' = the built-in model).",
        flags=("--base-url",),
        validator=_base_url,
    ),
    Option(
        "model",
        "str",
        "Model name (default: TOKEN_FACTORY_MODEL, else the server's first).",
        flags=("-m", "--model"),
    ),
    Option(
        "temperature",
        "float",
        "Sampling temperature: 0 repeatable, 1 varied, above 1 wild.",
        low=0.0,
        high=2.0,
        flags=("-t", "--temperature"),
        wire=True,
        widget="slider",
        resting=1.0,
    ),
    Option(
        "top_p",
        "float",
        "Nucleus sampling: only the most likely tokens up to this total probability.",
        low=0.0,
        high=1.0,
        flags=("--top-p",),
        wire=True,
        widget="slider",
        label="Top p",
        resting=1.0,
    ),
    Option(
        "max_tokens",
        "int",
        "Upper bound on the reply length in tokens (always sent).",
        default=1024,
        low=1,
        flags=("--max-tokens",),
        widget="whole",
    ),
    Option(
        "seed",
        "int",
        "Sampling seed, for repeatable replies.",
        flags=("--seed",),
        wire=True,
        widget="seed",
    ),
    Option(
        "stop",
        "strings",
        "Stop sequences (the reply ends before any of them).",
        high=4,
        flags=("--stop",),
        wire=True,
        widget="tags",
    ),
    Option(
        "presence_penalty",
        "float",
        "Penalty for tokens already present, -2 to 2.",
        low=-2.0,
        high=2.0,
        flags=("--presence-penalty",),
        wire=True,
    ),
    Option(
        "frequency_penalty",
        "float",
        "Penalty that grows with each repetition of a token, -2 to 2.",
        low=-2.0,
        high=2.0,
        flags=("--frequency-penalty",),
        wire=True,
    ),
    Option(
        "stream",
        "bool",
        "Stream replies as they are generated.",
        default=True,
        flags=("--no-stream",),
        flag_value=False,
        widget="toggle",
    ),
    Option(
        "include_usage",
        "bool",
        "Ask for token usage when streaming (stream_options.include_usage).",
        default=True,
    ),
    Option(
        "connect_timeout",
        "float",
        "Seconds to wait for a connection.",
        default=10.0,
        low=0.001,
        high=3600,
    ),
    Option(
        "read_timeout",
        "float",
        "Seconds to wait for the next bytes of a reply (the first token included).",
        default=120.0,
        low=0.001,
        high=86_400,
    ),
    Option(
        "first_token_timeout",
        "float",
        "Seconds to wait for the first token of a reply, keep-alive messages or not (unset: "
        "read_timeout).",
        low=0.001,
        high=86_400,
    ),
    Option(
        "reply_timeout",
        "float",
        "Seconds a whole reply may take, from the request to its last token (unset: no bound).",
        low=0.001,
        high=86_400,
    ),
    Option(
        "max_retries",
        "int",
        "Retries of a failed request before any reply arrived.",
        default=2,
        low=0,
        high=20,
    ),
    Option(
        "max_retry_wait",
        "float",
        "The longest wait a server may ask for (Retry-After) before a retry; a longer one is "
        "reported instead of waited for.",
        default=60.0,
        low=0.0,
        high=3600,
    ),
    Option(
        "max_tool_rounds",
        "int",
        "Maximum model requests per turn when tools are called.",
        default=8,
        low=1,
        flags=("--max-rounds",),
    ),
    Option(
        "schema_retries",
        "int",
        "Times to ask again when a structured reply (schema=...) is not valid JSON or does not "
        "fit the schema, quoting what was wrong.",
        default=1,
        low=0,
        high=5,
    ),
    Option(
        "extra_body",
        "mapping",
        "Extra provider-specific fields merged into every request.",
        default={},
        validator=_extra_body,
    ),
    Option(
        "history_max_turns",
        "int",
        "Trim the oldest turns so at most this many are sent.",
        low=1,
    ),
    Option(
        "history_max_tokens",
        "int",
        "Trim the oldest turns so the history stays under this size.",
        low=1,
    ),
    Option(
        "tool_result_max_chars",
        "int",
        "Tool results longer than this are cut (with a note) before being sent.",
        default=20_000,
        low=1,
    ),
    Option(
        "context_max_tokens",
        "int",
        "Size budget of each value attached with --with or context=, in tokens (about 4 "
        "characters each): a DataFrame, a file or a list is summarised to fit.",
        default=2000,
        low=50,
        high=100_000,
        flags=("--context-tokens",),
    ),
    Option(
        "tool_timeout",
        "float",
        "Seconds an async tool may run before it is stopped and the model told so (unset: no "
        "bound; a sync tool runs in the notebook and stops only with the interrupt button).",
        low=0.001,
        high=86_400,
    ),
    Option(
        "api_key_env",
        "str",
        "The environment variable whose key is sent to base_url, whatever its address (by "
        "default a key goes only to the address it was issued for).",
        validator=_env_name,
    ),
    Option(
        "allow_http_key",
        "bool",
        "Allow sending the API key over plain http to another machine (it travels unencrypted).",
        default=False,
    ),
    Option(
        "prices",
        "mapping",
        "Prices per million tokens, by model: {model: [input, output]} or [input, output, "
        "cached input]. Unset models use the prices the server publishes, if any.",
        default={},
        validator=_prices,
        widget="prices",
    ),
    Option(
        "currency",
        "str",
        "The prices' currency, as shown ('$', 'EUR'...).",
        default="$",
    ),
    Option(
        "budget",
        "float",
        "A spending cap for this kernel, in the prices' currency: a request whose worst case "
        "would pass it is not sent (TF_MAGICS_BUDGET can impose a lower one).",
        low=0.0,
        validator=_budget_money,
        widget="cap",
    ),
    Option(
        "budget_tokens",
        "int",
        "A cap on the tokens this kernel sends and receives (for models without a price).",
        low=0,
        validator=_budget_tokens,
        widget="cap",
        label="Token cap",
    ),
    Option(
        "confirm_map_rows",
        "int",
        "Ask before a map of at least this many rows, showing its estimated tokens and cost "
        "(0: never ask).",
        default=1000,
        low=0,
    ),
    Option(
        "batch_discount",
        "float",
        "What a Batch API request costs, as a fraction of the regular price (0.5 at most "
        "providers).",
        default=0.5,
        low=0.0,
        high=1.0,
    ),
    Option(
        "batch_poll",
        "float",
        "Seconds between checks of a running batch (the first checks come sooner).",
        default=10.0,
        low=0.01,
        high=3600.0,
    ),
    Option(
        "batch_dir",
        "str",
        "Where batch jobs are saved, so they can be collected after a restart (relative to the "
        "notebook's directory).",
        default=".tf_magics/batches",
    ),
    Option(
        "batch_max_requests",
        "int",
        "The most requests in one batch; a bigger map is split into several batches.",
        default=50_000,
        low=1,
    ),
    Option(
        "batch_max_mb",
        "float",
        "The largest batch request file, in megabytes; a bigger map is split.",
        default=100.0,
        low=0.001,
    ),
    Option(
        "remote_images",
        "bool",
        "Show images from the web in replies. Off: they are shown as links, so a reply cannot "
        "make the notebook load an address of its choosing when it renders.",
        default=False,
    ),
    # -- record and replay (tf_magics.cache) --
    Option(
        "cache",
        "str",
        "Record and replay replies: off; auto (answer a request recorded before from the file, "
        "send and record the others); record (always send, record); replay (never touch the "
        "network). The TF_MAGICS_CACHE environment variable wins.",
        default="off",
        widget="choice",
        label="Recording",
        choices=CACHE_MODES,
    ),
    Option(
        "replay_pace",
        "str",
        "How a recorded reply is replayed: instant, or at the pace it was recorded.",
        default="instant",
        widget="choice",
        label="Replay",
        choices=("instant", "recorded"),
    ),
    Option(
        "cache_file",
        "str",
        "The recording file (default: beside the notebook, <notebook>.tf_magics.jsonl; where the "
        "notebook's path is unknown, tf_magics.jsonl in the working directory). The "
        "TF_MAGICS_CACHE_FILE environment variable wins.",
    ),
    Option(
        "autosave",
        "bool",
        "Save the named conversations beside the notebook after each turn, so %chat restore "
        "brings them back after a kernel restart (never a key or a setting).",
        default=True,
    ),
)

_BY_NAME = {spec.name: spec for spec in OPTIONS}


def option(name: str) -> Option:
    """The option called ``name``.

    Raises
    ------
    KeyError
        If there is none.
    """
    return _BY_NAME[name]
