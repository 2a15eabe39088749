"""Fixtures shared by the test suite: real servers on 127.0.0.1 and a real IPython shell."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fake_openai import FakeOpenAI
from tests.model_server import shared_llama_server
from tf_magics.local import LocalServer
from tf_magics.notebook.session import discard_session

_ENV_VARS = (
    "TOKEN_FACTORY_API_KEY",
    "TOKEN_FACTORY_BASE_URL",
    "TOKEN_FACTORY_MODEL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's real keys or endpoints."""
    for name in _ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _fresh_tool_registry() -> Iterator[None]:
    """The notebook-wide tool registry starts empty in every test."""
    from tf_magics.tools import default_registry

    default_registry().clear()
    yield
    default_registry().clear()


@pytest.fixture
def fake_server() -> Iterator[FakeOpenAI]:
    """A scripted OpenAI-compatible server on 127.0.0.1 that records every request."""
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(scope="session")
def llama_server() -> Iterator[LocalServer]:
    """The real llama-cpp-python server with SmolLM2 (skipped without the [local] extra)."""
    yield from shared_llama_server()


@pytest.fixture
def ip(fake_server: FakeOpenAI) -> Iterator[Any]:
    """A real IPython shell with the extension loaded and pointed at the fake server."""
    from IPython.testing.globalipapp import get_ipython

    shell = get_ipython()
    shell.run_line_magic("load_ext", "tf_magics")
    shell.run_line_magic("config", f"ChatSettings.base_url = {fake_server.base_url!r}")
    yield shell
    shell.run_line_magic("unload_ext", "tf_magics")
    # The session outlives the extension (so %reload_ext loses nothing): start the next test afresh.
    discard_session(shell)
    # %config writes into the shell's config, which the next ChatSettings would inherit.
    shell.config.pop("ChatSettings", None)
