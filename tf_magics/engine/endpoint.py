"""Where a request goes when the settings leave it open: the local model, the server's model.

Two gaps are filled just before a turn's first request goes to the network: no base URL (or
``local``) means the embedded local model server, started on first use; no model means the
server's first model from ``GET /models``, said once per server. A request in replay mode
(:mod:`tf_magics.cache`) never goes to the network, so neither happens for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from tf_magics.client import RequestOptions
from tf_magics.errors import ConfigurationError
from tf_magics.events import Notice
from tf_magics.options import LOCAL, LOCAL_SOURCE

if TYPE_CHECKING:
    from tf_magics.client.http import Client
    from tf_magics.cost import Price

from .private_loop import Bridge

__all__ = ["LOCAL_SOURCE", "default_model", "local_endpoint", "model_price"]


def _offline(options: RequestOptions) -> bool:
    """Replay mode: no server is started or asked anything."""
    return options.hook is not None and options.hook.offline


async def local_endpoint(bridge: Bridge, options: RequestOptions) -> RequestOptions:
    """``options`` aimed at the local server when no endpoint is set (or ``local`` is asked for).

    Raises
    ------
    ConfigurationError
        When nothing is configured and the ``[local]`` extra is not installed.
    """
    if options.base_url not in (None, LOCAL) or _offline(options):
        return options
    from tf_magics import local

    if options.base_url is None and not local.local_extra_installed():
        raise ConfigurationError(local.no_endpoint_message())
    if not local.local_server_running():
        bridge.emit(Notice("Starting the built-in demo model (SmolLM2-135M, local)…", "progress"))
    # Started on the calling thread (it takes about a second and must not stall the loop).
    server = await bridge.call_sync(local.get_local_server)
    return replace(
        options,
        base_url=server.base_url,
        model=options.model or server.model,
        api_key=None,
        withheld_key=None,
        base_url_source=LOCAL_SOURCE,
    )


async def default_model(
    client: Client, options: RequestOptions, note: Callable[[str], None]
) -> RequestOptions:
    """``options`` with the server's first model when none is set (``note`` says so, once)."""
    if options.model or _offline(options):
        return options
    base_url = options.base_url or ""
    models = client.models_cache.get(base_url)
    if models is None:
        try:
            models = await client.list_models(options)
        except Exception:  # /models is optional: the server may still accept no model
            models = []
        client.models_cache[base_url] = models
        if models:
            # Said once per server, not on every turn.
            note(
                f"No model was set, so the server's first model ({models[0].id}) is used; "
                "choose one with -m/--model, ChatSettings.model or TOKEN_FACTORY_MODEL."
            )
    return replace(options, model=models[0].id) if models else options


async def model_price(client: Client, options: RequestOptions) -> Price | None:
    """The model's price; with a budget in money, the server's published prices are read first.

    ``GET /models`` is optional: when it fails the price stays unknown (and a money budget then
    refuses the request, saying there is no price).
    """
    price = client.price_for(options)
    base_url = options.base_url or ""
    if price is None and options.caps.money is not None and base_url not in client.models_cache:
        try:
            client.models_cache[base_url] = await client.list_models(options)
        except Exception:
            client.models_cache[base_url] = []
        price = client.price_for(options)
    return price
