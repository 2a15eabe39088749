"""What to send: endpoint, key, model, sampling parameters and limits.

One :class:`ChatSettings` object is shared by the ``%%chat`` magic, the control panel, ``%config``
and the Python API, so a change made in one place shows in all of them. Values resolve in this
order: a cell flag or call argument (see :meth:`ChatSettings.resolve`) > this object (panel,
``%config``, Python) > the environment > defaults. Its traits are generated from the table of
options in :mod:`tf_magics.options`.

Environment variables, read when a request is made (so ``os.environ`` changes apply):

``TOKEN_FACTORY_API_KEY`` / ``TOKEN_FACTORY_BASE_URL``
    Key and base URL (``https://<your host>/v1``). A key without a base URL is refused: several
    providers sell a "Token Factory", so the host is never guessed.
``OPENAI_API_KEY`` / ``OPENAI_BASE_URL``
    Used only when no ``TOKEN_FACTORY_*`` variable is set; a key alone means OpenAI's endpoint.
``TOKEN_FACTORY_MODEL``
    The default model.

A key goes only to the origin it was issued for (:mod:`tf_magics.credentials`): the two pairs are
never mixed, and another base URL gets no environment key unless ``api_key_env`` binds one. The
API key is not a trait, so it never appears in ``%config`` output, a repr, the panel's widget
state or a saved file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from traitlets import Bool, Dict, Float, Int, List, TraitError, TraitType, Unicode, validate
from traitlets.config import Configurable

from ._public import public
from .budget import caps_for, environment_budget
from .cache.mode import cache_mode
from .client.request import ChatHook, DeferredStep, RequestOptions
from .cost import parse_price
from .credentials import Endpoint, resolve_endpoint
from .errors import ConfigurationError
from .options import LOCAL, OPTIONS, Option

__all__ = ["LOCAL", "ChatSettings", "RequestOptions"]


_NAMES = tuple(spec.name for spec in OPTIONS)
_WIRE = tuple(spec for spec in OPTIONS if spec.wire)


def _is_blank(value: str | None) -> bool:
    return value is None or not value.strip()


def _recording(
    endpoint: Endpoint, values: dict[str, Any], env: Mapping[str, str]
) -> tuple[Endpoint, ChatHook | None, tuple[DeferredStep, ...]]:
    """The record/replay layer of a request, and what its mode makes of the endpoint.

    Raises
    ------
    ConfigurationError
        For an endpoint that must be refused now, or a bad ``TF_MAGICS_CACHE``.
    """
    mode, _ = cache_mode(values["cache"], env)
    hook: ChatHook | None = None
    if mode != "off":
        from .cache.layer import layer_for  # the layer and its file are loaded when first used

        hook = layer_for(mode, cache_file=values["cache_file"], pace=values["replay_pace"], env=env)
    if mode == "replay":
        # Nothing is ever sent: no key is needed (none is checked, none travels along).
        return Endpoint(endpoint.base_url, endpoint.source), hook, ()
    if mode == "auto" and endpoint.problem is not None:
        # Only a request that is not in the recording needs the endpoint: refuse that one.
        return endpoint, hook, (_refuse(endpoint),)
    endpoint.check()
    return endpoint, hook, ()


def _refuse(endpoint: Endpoint) -> DeferredStep:
    """A deferred step that refuses to send, for why ``endpoint`` must not be used."""

    async def refuse(options: RequestOptions) -> RequestOptions:
        endpoint.check()
        return options

    return refuse


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

    def endpoint(self, env: Mapping[str, str] | None = None) -> Endpoint:
        """Where a request would go and with which key (see :mod:`tf_magics.credentials`).

        Never raises: a configuration that must be refused carries its reason in ``problem``,
        which :meth:`resolve` raises.
        """
        return resolve_endpoint(
            base_url=self.base_url,
            base_url_source="the settings",
            api_key=self.api_key,
            api_key_env=self.api_key_env,
            allow_http_key=self.allow_http_key,
            env=env,
        )

    def key_status(self, env: Mapping[str, str] | None = None) -> str:
        """Which key a request would carry, never any of the key itself."""
        endpoint = self.endpoint(env)
        if endpoint.key is not None:
            return f"set ({endpoint.key.source})"
        return "not sent to this server" if endpoint.withheld else "not set"

    def resolve(self, env: Mapping[str, str] | None = None, **overrides: Any) -> RequestOptions:
        """Merge ``overrides`` (a cell's flags; ``None`` = not given) over these settings.

        Raises
        ------
        ConfigurationError
            If a name is unknown, a value is out of range or of the wrong type, or the key and
            the base URL do not belong together (see :mod:`tf_magics.credentials`).
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
        if "api_key" in given and not isinstance(given["api_key"], str):
            raise ConfigurationError("The API key must be a string.")
        endpoint = resolve_endpoint(
            base_url=values["base_url"],
            base_url_source="--base-url" if "base_url" in given else "the settings",
            api_key=given.get("api_key") or self.api_key,
            api_key_env=values["api_key_env"],
            allow_http_key=values["allow_http_key"],
            env=env,
        )
        endpoint, hook, deferred = _recording(endpoint, values, env)
        if environment_budget().problem is not None:
            raise ConfigurationError(str(environment_budget().problem))
        model = values["model"] or (env.get("TOKEN_FACTORY_MODEL") or "").strip() or None
        return RequestOptions(
            base_url=endpoint.base_url,
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
            api_key=endpoint.key,
            withheld_key=endpoint.withheld,
            base_url_source=endpoint.source,
            first_token_timeout=values["first_token_timeout"],
            reply_timeout=values["reply_timeout"],
            max_retry_wait=values["max_retry_wait"],
            prices={name: parse_price(p) for name, p in values["prices"].items()},
            caps=caps_for(values["budget"], values["budget_tokens"], values["currency"] or "$"),
            schema_retries=values["schema_retries"],
            hook=hook,
            deferred=deferred,
        )

    def _value(self, spec: Option) -> Any:
        value = getattr(self, spec.name)
        # Containers are copied: a request must not change when the settings object does.
        return list(value) if isinstance(value, list) else value

    def summary(self, env: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The current values for display (the key as a status, never its value)."""
        endpoint = self.endpoint(env)
        base_url, source = endpoint.base_url, endpoint.source
        if endpoint.problem is not None:
            shown = f"refused: {endpoint.problem}"
        elif base_url in (None, LOCAL):
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
        try:
            mode, source = cache_mode(self.cache, env or os.environ)
            data["cache"] = mode if source == "ChatSettings.cache" else f"{mode} (from {source})"
        except ConfigurationError as error:
            data["cache"] = f"refused: {error}"
        return data
