"""Fixtures of the integration layer: a real IPython shell and the real model server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tf_magics.local import LocalServer
from tf_magics.notebook.session import discard_session
from tf_testing.fake_openai import FakeOpenAI
from tf_testing.model_server import shared_llama_server


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
