"""Which server a request goes to, and which key (if any) may go with it.

A key is bound to the origin (scheme, host and port) it was issued for:

- ``TOKEN_FACTORY_API_KEY`` goes only to ``TOKEN_FACTORY_BASE_URL``'s origin, and
  ``OPENAI_API_KEY`` only to ``OPENAI_BASE_URL``'s (or OpenAI's own when that is unset). Several
  unrelated providers sell a "Token Factory", so a ``TOKEN_FACTORY_API_KEY`` without a
  ``TOKEN_FACTORY_BASE_URL`` is refused before any connection: the host is never guessed.
- A base URL of another origin (``%%chat --base-url``, ``%chat set base_url=...``) gets no
  environment key, unless the user binds one explicitly: a key given in Python (``api_key=``),
  or ``ChatSettings.api_key_env`` naming the environment variable to send there.
- A key never travels over plain http to a host other than this machine unless
  ``ChatSettings.allow_http_key`` says so.

:func:`resolve_endpoint` returns the decision (an :class:`Endpoint`): the base URL and where it
came from, the key to send, and, when a configured key was kept back, a line that says which and
why (shown under the reply and in an authentication error).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from tf_magics.client.request import ApiKey
from tf_magics.errors import ConfigurationError
from tf_magics.options import LOCAL, check_base_url

__all__ = ["OPENAI_URL", "Endpoint", "is_loopback", "origin", "resolve_endpoint"]

OPENAI_URL = "https://api.openai.com/v1"

#: The environment's (key variable, base URL variable, base URL when unset) pairs, in order.
_PAIRS = (
    ("TOKEN_FACTORY_API_KEY", "TOKEN_FACTORY_BASE_URL", None),
    ("OPENAI_API_KEY", "OPENAI_BASE_URL", OPENAI_URL),
)


@dataclass(frozen=True)
class Endpoint:
    """Where a request goes and with which key.

    Attributes
    ----------
    base_url
        The base URL, ``"local"`` for the embedded model, or ``None`` when nothing is set.
    source
        Where the base URL came from (for messages).
    key
        The key to send, or ``None``.
    withheld
        A configured key that is *not* sent to this base URL, and why (one line), or ``None``.
    problem
        Why this configuration must not be used at all (checked before any request), or ``None``.
    """

    base_url: str | None
    source: str
    key: ApiKey | None = None
    withheld: str | None = None
    problem: str | None = None

    def check(self) -> None:
        """Refuse a configuration that must not send anything.

        Raises
        ------
        ConfigurationError
            With the one line that says how to fix it.
        """
        if self.problem is not None:
            raise ConfigurationError(self.problem)


def origin(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of a URL, the port filled in from the scheme when absent."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").lower(), port


def is_loopback(url: str) -> bool:
    """Whether a URL points at this machine (``localhost``, ``127.0.0.0/8``, ``::1``)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _blank(value: str | None) -> bool:
    return value is None or not value.strip()


def resolve_endpoint(
    *,
    base_url: str | None,
    base_url_source: str,
    api_key: str | None,
    api_key_env: str | None,
    allow_http_key: bool,
    env: Mapping[str, str] | None = None,
) -> Endpoint:
    """Decide the base URL and the key of a request.

    Parameters
    ----------
    base_url
        The base URL from the settings or a cell flag (``None``: take it from the environment).
    base_url_source
        What set ``base_url`` (for messages).
    api_key
        A key given explicitly in Python: sent to ``base_url`` whatever its origin.
    api_key_env
        The name of an environment variable whose key is sent to ``base_url`` (an explicit
        binding, like ``api_key``).
    allow_http_key
        Allow a key over plain http to a host other than this machine.
    env
        The environment (default :data:`os.environ`).
    """
    env = os.environ if env is None else env
    if base_url is None:
        endpoint = _from_environment(env)
        if endpoint.problem is not None or endpoint.base_url is None:
            return _with_explicit_key(endpoint, api_key, api_key_env, env, allow_http_key)
    else:
        endpoint = Endpoint(base_url, base_url_source)
    if base_url == LOCAL:
        return endpoint  # the embedded model never gets a key
    endpoint = _with_explicit_key(endpoint, api_key, api_key_env, env, allow_http_key)
    if endpoint.key is None and endpoint.problem is None:
        endpoint = _with_bound_key(endpoint, env, allow_http_key)
    return endpoint


def _from_environment(env: Mapping[str, str]) -> Endpoint:
    """The base URL the environment names: the first pair with any variable set."""
    for key_name, url_name, default in _PAIRS:
        key, url = env.get(key_name), env.get(url_name)
        if _blank(key) and _blank(url):
            continue
        if not _blank(url):
            assert url is not None
            return Endpoint(check_base_url(url), url_name)
        if default is None:
            return Endpoint(
                None,
                "nothing configured",
                problem=(
                    f"{key_name} is set but {url_name} is not, and tf_magics does not guess the "
                    f"host: several providers sell a product of that name. Set {url_name} to "
                    "your provider's API address, in the form https://<your host>/v1."
                ),
            )
        return Endpoint(default, f"{key_name} (OpenAI's endpoint)")
    return Endpoint(None, "nothing configured")


def _with_explicit_key(
    endpoint: Endpoint,
    api_key: str | None,
    api_key_env: str | None,
    env: Mapping[str, str],
    allow_http_key: bool,
) -> Endpoint:
    """The endpoint with the key the user bound to it explicitly, if any."""
    key: ApiKey | None = None
    if not _blank(api_key):
        assert api_key is not None
        key = ApiKey(api_key, "set in Python")
    elif not _blank(api_key_env):
        assert api_key_env is not None
        value = env.get(api_key_env)
        if _blank(value):
            problem = (
                f"ChatSettings.api_key_env names {api_key_env}, but that environment variable "
                "is not set: set it before starting Jupyter, or unset api_key_env."
            )
            return replace(endpoint, problem=problem)
        assert value is not None
        key = ApiKey(value, f"{api_key_env} (api_key_env)")
    if key is None or endpoint.base_url is None:
        return endpoint
    return _guarded(replace(endpoint, key=key), allow_http_key)


def _with_bound_key(endpoint: Endpoint, env: Mapping[str, str], allow_http_key: bool) -> Endpoint:
    """The endpoint with the environment key bound to its origin, or a note on a key kept back."""
    assert endpoint.base_url is not None
    target = origin(endpoint.base_url)
    withheld: list[str] = []
    for key_name, url_name, default in _PAIRS:
        value = env.get(key_name)
        if _blank(value):
            continue
        assert value is not None
        bound = env.get(url_name) if not _blank(env.get(url_name)) else default
        if bound is not None and origin(check_base_url(bound)) == target:
            return _guarded(replace(endpoint, key=ApiKey(value, key_name)), allow_http_key)
        where = _origin_text(bound) if bound is not None else f"no host ({url_name} is not set)"
        withheld.append(f"{key_name} (bound to {where})")
    if not withheld:
        return endpoint
    note = (
        f"No API key was sent to {_origin_text(endpoint.base_url)}: "
        f"{' and '.join(withheld)} only go to the address they were issued for. To send one "
        f"here, bind it: %chat set api_key_env={withheld[0].split(' ')[0]}."
    )
    return replace(endpoint, withheld=note)


def _guarded(endpoint: Endpoint, allow_http_key: bool) -> Endpoint:
    """Refuse a key over plain http to another machine, unless allowed."""
    url = endpoint.base_url
    if endpoint.key is None or url is None or allow_http_key:
        return endpoint
    if urlsplit(url).scheme.lower() == "http" and not is_loopback(url):
        problem = (
            f"The API key ({endpoint.key.source}) would travel unencrypted to "
            f"{_origin_text(url)} over plain http: use an https:// base URL, or allow it "
            "with %chat set allow_http_key=true."
        )
        return Endpoint(url, endpoint.source, problem=problem)
    return endpoint


def _origin_text(url: str) -> str:
    scheme, host, port = origin(url)
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" + ("" if port == default else f":{port}")
