"""What the browser tests share: a Jupyter front end on 127.0.0.1, Chromium, and page helpers.

Two front ends are driven the same way, because Notebook 7 is built from JupyterLab's parts (the
same notebook, cell, prompt and output classes): :data:`JUPYTERLAB` and :data:`NOTEBOOK7` differ
in the command that serves them and the address of a notebook. A test asks for the ``jupyter``
fixture (``tests/e2e/conftest.py``) and runs once in each.

Needs Chromium from the distribution (``apt-get install chromium``; Playwright's own browser
download is not used) and the ``playwright`` Python package. Without them the tests are skipped,
unless ``TF_MAGICS_REQUIRE_ALL=1``, which turns the skip into a failure. ``TF_MAGICS_CHROMIUM``
names another Chromium binary.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest

from tests.paths import REPO_ROOT
from tf_testing.model_server import REQUIRE_ALL_ENV, require_all

SCREENSHOT_DIR_ENV = "TF_MAGICS_SCREENSHOT_DIR"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class Frontend:
    """One Jupyter front end: how to serve it and where a notebook opens."""

    name: str
    module: str
    notebook_path: str  # the address of a notebook, with {name}
    arguments: tuple[str, ...] = ()
    screenshot_prefix: str = ""


JUPYTERLAB = Frontend(
    "jupyterlab",
    "jupyterlab",
    "/lab/tree/{name}",
    (
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
    ),
)
NOTEBOOK7 = Frontend("notebook7", "notebook", "/notebooks/{name}", screenshot_prefix="notebook7-")
FRONTENDS = (JUPYTERLAB, NOTEBOOK7)


# -- what the tests need ---------------------------------------------------------------------------


def missing(what: str) -> None:
    """Skip, or fail when missing dependencies are not allowed."""
    if require_all():
        pytest.fail(f"{what} ({REQUIRE_ALL_ENV}=1 forbids skipping)", pytrace=False)
    pytest.skip(what)


def chromium_executable(candidates: tuple[str, ...] = CHROMIUM_CANDIDATES) -> str:
    """The Chromium binary to drive (skips the test when there is none)."""
    for candidate in [os.environ.get("TF_MAGICS_CHROMIUM", ""), *candidates]:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    missing("Chromium is not installed (apt-get install chromium)")
    raise AssertionError("unreachable")


def require_playwright() -> None:
    """Skip the test when Playwright for Python is missing."""
    if importlib.util.find_spec("playwright") is None:
        missing("playwright is not installed (pip install playwright)")


def require_frontend(frontend: Frontend) -> None:
    """Skip the test when the front end's package is missing."""
    if importlib.util.find_spec(frontend.module) is None:
        missing(f"{frontend.module} is not installed (pip install {frontend.module})")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# -- the server ------------------------------------------------------------------------------------


@dataclass
class JupyterServer:
    """A running Jupyter server with one front end."""

    frontend: Frontend
    url: str
    token: str
    process: subprocess.Popen[bytes]
    root: Path
    log: Path

    def api(self, method: str, path: str) -> httpx.Response:
        """Call the server's REST API."""
        return httpx.request(
            method, f"{self.url}{path}", headers={"Authorization": f"token {self.token}"}
        )

    def notebook_url(self, name: str) -> str:
        """The address that opens a notebook of the root folder, logged in."""
        return f"{self.url}{self.frontend.notebook_path.format(name=name)}?token={self.token}"


def _write_settings(base: Path) -> dict[str, str]:
    """Private, offline, quiet settings for one server; returns the environment to use."""
    settings = base / "lab-settings"
    notification = settings / "@jupyterlab" / "apputils-extension"
    tracker = settings / "@jupyterlab" / "notebook-extension"
    for folder in (notification, tracker, base / "config", base / "runtime", base / "ipython"):
        folder.mkdir(parents=True, exist_ok=True)
    # No news or update checks (no network, no pop-up); every cell rendered (no windowing).
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    # The language-server extension scans the machine for servers: not needed here.
    (base / "config" / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": {"jupyter_lsp": False}}})
    )
    pythonpath = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    return {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(base / "config"),
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"),
        "IPYTHONDIR": str(base / "ipython"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "PYTHONPATH": pythonpath,  # the kernel imports this checkout of tf_magics
    }


def _wait_until_up(server: JupyterServer, deadline: float) -> None:
    name = server.frontend.name
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"{name} exited:\n{server.log.read_text()[-3000:]}", pytrace=False)
        try:
            if server.api("GET", "/api/status").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{name} did not start:\n{server.log.read_text()[-3000:]}", pytrace=False)


def _descendants(pid: int) -> list[Any]:
    import psutil

    try:
        return list(psutil.Process(pid).children(recursive=True))
    except psutil.NoSuchProcess:
        return []


def _stop(server: JupyterServer) -> None:
    """Shut the kernels down, stop the server, and make sure nothing is left running."""
    children = _descendants(server.process.pid)
    try:
        for kernel in server.api("GET", "/api/kernels").json():
            server.api("DELETE", f"/api/kernels/{kernel['id']}")
    except (httpx.HTTPError, ValueError):
        pass  # the server is already gone: the kill below still cleans up
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=10)
    for child in children:
        if child.is_running():
            child.kill()


@contextmanager
def serve(frontend: Frontend, base: Path) -> Iterator[JupyterServer]:
    """The front end on 127.0.0.1 with a random token, serving ``base / "root"``."""
    root = base / "root"
    root.mkdir()
    env = _write_settings(base)
    port, token = _free_port(), secrets.token_hex(16)
    log = base / f"{frontend.name}.log"
    command = [
        sys.executable,
        "-m",
        frontend.module,
        "--no-browser",
        "--allow-root",  # CI containers run as root
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.terminals_enabled=False",
        *frontend.arguments,
    ]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    server = JupyterServer(frontend, f"http://127.0.0.1:{port}", token, process, root, log)
    try:
        _wait_until_up(server, time.monotonic() + 60)
        yield server
    finally:
        _stop(server)


def write_notebook(path: Path, cells: list[str]) -> None:
    """A notebook of code cells, for the python3 kernel."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nbformat.write(notebook, path)


# -- driving the page ------------------------------------------------------------------------------


def cell(page: Any, index: int) -> Any:
    """The notebook's cell at ``index``."""
    return page.locator(".jp-Notebook .jp-Cell").nth(index)


def run_cell(page: Any, index: int, *, wait: bool = True) -> None:
    """Select a cell by its prompt and press Shift+Enter, as a person would."""
    from playwright.sync_api import expect

    target = cell(page, index)
    prompt = target.locator(".jp-InputPrompt")
    for _ in range(3):
        prompt.click()
        expect(target).to_have_class(re.compile(r"\bjp-mod-active\b"))
        page.keyboard.press("Shift+Enter")
        try:
            # "[*]" (queued or running) or "[n]" (done): the key press reached the notebook.
            expect(prompt).not_to_have_text(re.compile(r"^\[\s*\]:$"), timeout=10_000)
            break
        except AssertionError:
            continue  # the press landed while focus was still moving: press again
    if wait:
        expect(prompt).to_have_text(re.compile(r"^\[\d+\]:$"), timeout=TIMEOUT_MS)


def drag_slider(page: Any, row: Any, fraction: float) -> None:
    """Drag a slider's handle to ``fraction`` of its track with the mouse."""
    handle = row.locator(".noUi-handle").bounding_box()
    track = row.locator(".noUi-base").bounding_box()
    assert handle is not None
    assert track is not None
    y = handle["y"] + handle["height"] / 2
    page.mouse.move(handle["x"] + handle["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(track["x"] + track["width"] * fraction, y, steps=12)
    page.mouse.up()


def open_notebook(page: Any, server: JupyterServer, name: str) -> None:
    """Open a notebook of the server's root and wait until its kernel is idle."""
    page.goto(server.notebook_url(name))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
    # More room for the notebook: fold JupyterLab's file browser away (Notebook 7 has none).
    open_tab = page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
    if open_tab.count():
        open_tab.click()
        open_tab.wait_for(state="detached")


def screenshot_dir(default: Path) -> Path:
    """Where the pictures go: ``TF_MAGICS_SCREENSHOT_DIR`` (relative to the repository), else
    ``default``. The README's pictures are refreshed with ``TF_MAGICS_SCREENSHOT_DIR=docs``; by
    default a test run leaves the checkout untouched (the server's port differs on every run).
    """
    chosen = os.environ.get(SCREENSHOT_DIR_ENV, "").strip()
    folder = REPO_ROOT / chosen if chosen else default
    folder.mkdir(parents=True, exist_ok=True)
    return folder
