"""The embedded local model: a real OpenAI-compatible server and a tiny model, so demos need no key.

========================  ================================================================
module                    job
========================  ================================================================
``server``                :class:`LocalServer` and the process-wide server of the kernel
``process``               running it: launcher thread, process group, log, readiness
``install``               what the ``[local]`` extra provides, and where the model file is
========================  ================================================================

::

    from tf_magics.local import get_local_server

    server = get_local_server()  # starts once (about a second), then reused
    server.base_url  # 'http://127.0.0.1:40123/v1'
"""

from __future__ import annotations

from .install import (
    INSTALL_HINT,
    LOCAL_MODEL_DESCRIPTION,
    LOCAL_MODEL_ENV,
    find_local_model,
    local_extra_installed,
    missing_local_packages,
    no_endpoint_error,
    no_endpoint_message,
)
from .process import free_loopback_port
from .server import LocalServer, get_local_server, local_server_running, stop_local_server

__all__ = [
    "INSTALL_HINT",
    "LOCAL_MODEL_DESCRIPTION",
    "LOCAL_MODEL_ENV",
    "LocalServer",
    "find_local_model",
    "free_loopback_port",
    "get_local_server",
    "local_extra_installed",
    "local_server_running",
    "missing_local_packages",
    "no_endpoint_error",
    "no_endpoint_message",
    "stop_local_server",
]
