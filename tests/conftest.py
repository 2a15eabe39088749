"""Fixtures for every layer of the suite: a clean environment, and the scripted loopback server.

Fixtures used by one layer only live in that layer's ``conftest.py`` (``integration/`` has the
IPython shell and the real model server).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator

import pytest

from tf_testing.fake_openai import FakeOpenAI

_ENV_VARS = (
    "TOKEN_FACTORY_API_KEY",
    "TOKEN_FACTORY_BASE_URL",
    "TOKEN_FACTORY_MODEL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    # Record/replay: a developer's mode or file must not change what a test sends.
    "TF_MAGICS_CACHE",
    "TF_MAGICS_CACHE_FILE",
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's real keys or endpoints, or their record/replay setting."""
    for name in _ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _fresh_spending(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts with nothing spent and no TF_MAGICS_BUDGET (read once per kernel)."""
    from tf_magics import budget

    monkeypatch.setattr(budget, "_LEDGER", budget.Ledger())
    monkeypatch.setattr(budget, "_ENVIRONMENT", budget.EnvironmentBudget())


@pytest.fixture(autouse=True)
def _fresh_tool_registry() -> Iterator[None]:
    """The notebook-wide tool registry starts empty in every test."""
    from tf_magics.tools import default_registry

    default_registry().clear()
    yield
    default_registry().clear()


@pytest.fixture(autouse=True)
def _ctrl_c_raises() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt, as in a kernel or a terminal.

    A shell starts a background job (``./scripts/test.sh &``) with SIGINT ignored, and Python
    keeps that: the tests that press Ctrl-C would then see nothing happen.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture(autouse=True)
def _forget_servers() -> Iterator[None]:
    """The kernel-wide client forgets what it learnt of each server after every test.

    It remembers servers by base URL (their models, the request forms they refuse), and a later
    test's loopback server may be given the port of an earlier one.
    """
    yield
    chat = sys.modules.get("tf_magics.chat")
    client = getattr(chat, "_SHARED_CLIENT", None)
    if client is not None:
        client.models_cache.clear()
        client.response_formats.clear()
        client.rejects_stream_options.clear()
        client.cannot_stream_tools.clear()


@pytest.fixture
def fake_server() -> Iterator[FakeOpenAI]:
    """A scripted OpenAI-compatible server on 127.0.0.1 that records every request.

    At teardown it checks that it answered every request as scripted: a failing ``Dynamic``
    callback or a server-side exception fails the test (a test that expects one starts its own
    ``FakeOpenAI``).
    """
    with FakeOpenAI() as server:
        yield server
        assert server.errors == []
