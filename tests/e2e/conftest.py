"""Fixtures of the end-to-end layer: Chromium, and a Jupyter front end (each test runs in both)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .jupyter import (
    FRONTENDS,
    Frontend,
    JupyterServer,
    chromium_executable,
    require_frontend,
    require_playwright,
    serve,
)


@pytest.fixture
def chromium() -> str:
    """The Chromium binary; skips (or fails under TF_MAGICS_REQUIRE_ALL) before anything starts."""
    require_playwright()
    return chromium_executable()


@pytest.fixture(params=FRONTENDS, ids=[frontend.name for frontend in FRONTENDS])
def frontend(request: pytest.FixtureRequest) -> Frontend:
    """JupyterLab, then Notebook 7."""
    chosen: Frontend = request.param
    require_frontend(chosen)
    return chosen


@pytest.fixture
def jupyter(tmp_path: Path, chromium: str, frontend: Frontend) -> Iterator[JupyterServer]:
    """The front end on 127.0.0.1 with a random token, serving ``tmp_path / "root"``."""
    with serve(frontend, tmp_path) as server:
        yield server
