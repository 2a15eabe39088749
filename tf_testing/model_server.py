"""A real llama-cpp-python server with SmolLM2, shared by every test that needs a real model.

The server is started once per test session (about a second) through
:class:`tf_magics.local.LocalServer` and reused. Tests that need it use the ``llama_server``
fixture (``tests/integration/conftest.py``), which wraps :func:`shared_llama_server`::

    def test_something(llama_server: LocalServer) -> None:
        httpx.post(f"{llama_server.base_url}/chat/completions", json=...)

When the ``[local]`` extra is not installed the test is skipped, unless ``TF_MAGICS_REQUIRE_ALL=1``
(CI sets it): then it fails, so a broken CI environment cannot pass by skipping everything. A
server that is installed but fails to start always fails the test.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest

from tf_magics.local import LocalServer, missing_local_packages

__all__ = [
    "REQUIRE_ALL_ENV",
    "require_all",
    "require_local_extra",
    "shared_llama_server",
    "start_shared_llama_server",
    "stop_shared_llama_server",
]

#: Set to 1 to turn "optional dependency missing" skips into failures.
REQUIRE_ALL_ENV = "TF_MAGICS_REQUIRE_ALL"

_lock = threading.Lock()
_shared: LocalServer | None = None


def require_all() -> bool:
    """Whether missing optional dependencies must fail tests instead of skipping them."""
    return os.environ.get(REQUIRE_ALL_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def require_local_extra() -> None:
    """Skip the current test when the ``[local]`` extra is missing (fail under REQUIRE_ALL)."""
    missing = missing_local_packages()
    if not missing:
        return
    message = (
        f"the [local] extra is not installed (missing: {', '.join(missing)}); "
        'install it with `pip install -e ".[local]"`'
    )
    if require_all():
        pytest.fail(f"{message} ({REQUIRE_ALL_ENV}=1 forbids skipping)", pytrace=False)
    pytest.skip(message)


def start_shared_llama_server() -> LocalServer:
    """The session's shared server, started on first use (and again if its process died).

    Returns
    -------
    LocalServer
        A running server; do not stop it from a test (use your own ``LocalServer`` for that).
    """
    global _shared
    require_local_extra()
    with _lock:
        if _shared is None:
            _shared = LocalServer()
        return _shared.start()


def stop_shared_llama_server() -> None:
    """Stop the shared server (at the end of the session)."""
    global _shared
    with _lock:
        if _shared is not None:
            _shared.stop()
            _shared = None


def shared_llama_server() -> Iterator[LocalServer]:
    """Generator for a session-scoped fixture: yields the shared server, stops it afterwards."""
    server = start_shared_llama_server()
    try:
        yield server
    finally:
        stop_shared_llama_server()
