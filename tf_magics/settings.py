"""What to send: endpoint, key, model, sampling parameters and limits.

One :class:`ChatSettings` object is shared by the ``%%chat`` magic, the control panel, ``%config``
and the Python API, so a change made in one place shows in all of them. Values resolve in this
order: a cell flag or call argument (see :meth:`ChatSettings.resolve`) > this object (panel,
``%config``, Python) > the environment > defaults. Its traits are generated from the table of
options in :mod:`tf_magics.options`.

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

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from traitlets import Bool, Dict, Float, Int, List, TraitError, TraitType, Unicode, validate
from traitlets.config import Configurable

from ._public import public
from .client.request import RequestOptions
from .errors import ConfigurationError
from .options import LOCAL, OPTIONS, Option, check_base_url

__all__ = ["LOCAL", "ChatSettings", "RequestOptions"]

TOKEN_FACTORY_URL = "https://api.tokenfactory.nebius.com/v1"
OPENAI_URL = "https://api.openai.com/v1"

_NAMES = tuple(spec.name for spec in OPTIONS)


def _is_blank(value: str | None) -> bool:
    return value is None or not value.strip()


def _trait(spec: Option) -> TraitType[Any, Any]:
    """The traitlets trait for one option (validated by :meth:`Option.check`)."""
    # traitlets' overloads want a literal allow_none: pass it through a dict.
    nullable: dict[str, Any] = {"allow_none": spec.nullable}
    trait: TraitType[Any, Any]
    if spec.kind == "float":
        trait = Float(spec.default, **nullable)
    elif spec.kind == "int":
        trait = Int(spec.default, **nullable)
    elif spec.kind == "bool":
        trait = Bool(spec.default)
    elif spec.kind == "str":
        trait = Unicode(spec.default, **nullable)
    elif spec.kind == "strings":
        trait = List(Unicode(), default_value=None, allow_none=True)
    else:
        trait = Dict(default_value=dict(spec.default or {}))
    trait.help = spec.help
    return trait.tag(config=True)


@public
class ChatSettings(Configurable):
    """Settings shared by the magic, the panel and the Python API.

    Every trait is configurable, e.g. ``%config ChatSettings.temperature = 0.2``. ``None`` means
    "not set": the parameter is not sent and the server's default applies. The traits, their
    ranges and help come from :data:`tf_magics.options.OPTIONS`.

    Parameters
    ----------
    api_key
        The API key; when omitted it is read from the environment at request time.
    **kwargs
        Initial values of the traits.
    """

    # One trait per entry of the options table: a new setting is added there, not here.
    locals().update({spec.name: _trait(spec) for spec in OPTIONS})

    if TYPE_CHECKING:
        # The generated traits are not visible to type checkers.
        def __getattr__(self, name: str) -> Any: ...
        def __setattr__(self, name: str, value: Any) -> None: ...

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
        shown = {name: getattr(self, name) for name in ("base_url", "model")}
        shown.update({s.name: getattr(self, s.name) for s in OPTIONS if s.wire})
        values = [f"{k}={v!r}" for k, v in shown.items() if v is not None]
        values += [f"max_tokens={self.max_tokens}", f"key={self.key_status()}"]
        return f"ChatSettings({', '.join(values)})"

    # -- validation: every trait through its option's check --

    @validate(*_NAMES)
    def _check(self, proposal: Any) -> Any:
        spec = next(s for s in OPTIONS if s.name == proposal["trait"].name)
        try:
            return spec.check(proposal["value"])
        except ConfigurationError as error:
            raise TraitError(str(error)) from None

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
            If a name is unknown or a value is out of range or of the wrong type.
        """
        env = os.environ if env is None else env
        unknown = set(overrides) - set(_NAMES) - {"api_key"}
        if unknown:
            raise ConfigurationError(f"Unknown setting(s): {', '.join(sorted(unknown))}.")
        given = {k: v for k, v in overrides.items() if v is not None}
        values = {
            spec.name: spec.check(given[spec.name]) if spec.name in given else self._value(spec)
            for spec in OPTIONS
        }
        probe = self
        if "base_url" in given or "api_key" in given:
            probe = ChatSettings(base_url=values["base_url"], api_key=given.get("api_key"))
            probe.api_key = given.get("api_key", self.api_key)
        base_url, key, source = probe.endpoint(env)
        model = values["model"] or (env.get("TOKEN_FACTORY_MODEL") or "").strip() or None
        return RequestOptions(
            base_url=base_url,
            model=model,
            max_tokens=values["max_tokens"],
            stream=values["stream"],
            sampling={
                s.name: values[s.name] for s in OPTIONS if s.wire and values[s.name] is not None
            },
            connect_timeout=values["connect_timeout"],
            read_timeout=values["read_timeout"],
            max_retries=values["max_retries"],
            include_usage=values["include_usage"],
            max_tool_rounds=values["max_tool_rounds"],
            extra_body=dict(values["extra_body"]),
            api_key=key,
            key_source=probe.key_source(env),
            base_url_source=source,
        )

    def _value(self, spec: Option) -> Any:
        value = getattr(self, spec.name)
        # Containers are copied: a request must not change when the settings object does.
        return list(value) if isinstance(value, list) else value

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
        for spec in OPTIONS:
            if spec.name not in data and (spec.wire or spec.flags):
                data[spec.name] = getattr(self, spec.name)
        return data
