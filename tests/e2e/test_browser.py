"""The panel in a real browser: JupyterLab on 127.0.0.1, headless Chromium, the loopback server.

(Also: a structured reply's table and a map's progress bar, as JupyterLab draws them.)

A notebook is written into a temporary directory and opened in JupyterLab; Playwright runs its
cells through the UI, moves the temperature slider with the mouse, types a system prompt, switches
a tool off, then runs two ``%%chat`` cells. The fake server (in this process) must receive the new
temperature, the system prompt and the tools list, and the streamed replies must be visible in
the page. Last, the panel's Retry button asks the question again from a widget callback.
Screenshots of the panel and of a streamed reply are saved for the README: to ``docs/`` with
``TF_MAGICS_SCREENSHOT_DIR=docs``, otherwise to the test's temporary directory.

Needs Chromium from the distribution (``apt-get install chromium``; Playwright's own browser
download is not used) and the ``playwright`` Python package. Without them the test is skipped,
unless ``TF_MAGICS_REQUIRE_ALL=1``, which turns the skip into a failure. ``TF_MAGICS_CHROMIUM``
names another Chromium binary.
"""

from __future__ import annotations

import contextlib
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest

from tests.paths import REPO_ROOT
from tf_testing.fake_openai import FakeOpenAI, TextReply, ToolCallReply
from tf_testing.model_server import REQUIRE_ALL_ENV, require_all

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

SCREENSHOT_DIR_ENV = "TF_MAGICS_SCREENSHOT_DIR"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
TIMEOUT_MS = 30_000

MODELS = [
    "meta-llama/Llama-3.3-70B-Instruct",
    "Qwen/Qwen2.5-Coder-32B-Instruct",
    "mistralai/Mistral-Nemo-Instruct-2407",
]
SYSTEM_PROMPT = (
    "You are a patient data-analysis tutor. Answer with a short heading, "
    "a numbered list of steps and one runnable pandas example."
)
SETUP_CELL = """\
%load_ext tf_magics
%config ChatSettings.base_url = '{base_url}'
%config ChatSettings.model = '{model}'
import tf_magics

@tf_magics.tool
def describe_column(name: str) -> str:
    \"\"\"Summary statistics of one column of the sales table.\"\"\"
    return sales[name].describe().to_string()

@tf_magics.tool(confirm=True)
def drop_rows(query: str) -> int:
    \"\"\"Delete the rows of the sales table that match a pandas query.\"\"\"
    return len(sales.query(query))"""
FIRST_QUESTION = (
    "I have a CSV of daily sales with the columns date, region and revenue. "
    "How do I get the total revenue per region?"
)
FIRST_REPLY = """\
## Total revenue per region

1. **Load** the file with `pd.read_csv`, parsing the dates.
2. **Group** the rows by `region` and **sum** the revenue.
3. **Sort** the totals so the biggest region comes first.

```python
import pandas as pd

sales = pd.read_csv("sales.csv", parse_dates=["date"])
totals = sales.groupby("region")["revenue"].sum().sort_values(ascending=False)
print(totals)
```
"""
SECOND_QUESTION = "How do I plot those totals on a bar chart?"
SECOND_REPLY = """\
## A bar chart of the totals

pandas draws with matplotlib, so the `totals` series plots itself:

1. Call `plot.bar` on the series and give it a title.
2. Label the axis so the units are clear.
3. Tighten the layout so long region names fit.

```python
ax = totals.plot.bar(title="Revenue per region", rot=0)
ax.set_ylabel("revenue (EUR)")
ax.figure.tight_layout()
```

- Use `plot.barh` when the region names are long.
- Add `ax.bar_label(ax.containers[0])` to print each total on its bar.
"""
RETRY_REPLY = "In one line: totals.plot.bar() draws it; add a title and a y label."


# -- what the test needs ---------------------------------------------------------------------------


def _missing(what: str) -> None:
    """Skip, or fail when missing dependencies are not allowed."""
    if require_all():
        pytest.fail(f"{what} ({REQUIRE_ALL_ENV}=1 forbids skipping)", pytrace=False)
    pytest.skip(what)


def chromium_executable() -> str:
    """The Chromium binary to drive (skips the test when there is none)."""
    candidates = [os.environ.get("TF_MAGICS_CHROMIUM", ""), *CHROMIUM_CANDIDATES]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    _missing("Chromium is not installed (apt-get install chromium)")
    raise AssertionError("unreachable")


def require_playwright() -> None:
    """Skip the test when Playwright for Python is missing."""
    if importlib.util.find_spec("playwright") is None:
        _missing("playwright is not installed (pip install playwright)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# -- JupyterLab ------------------------------------------------------------------------------------


@dataclass
class Lab:
    """A running JupyterLab server."""

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


def _wait_until_up(lab: Lab, deadline: float) -> None:
    while time.monotonic() < deadline:
        if lab.process.poll() is not None:
            pytest.fail(f"JupyterLab exited:\n{lab.log.read_text()[-3000:]}", pytrace=False)
        try:
            if lab.api("GET", "/api/status").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"JupyterLab did not start:\n{lab.log.read_text()[-3000:]}", pytrace=False)


def _descendants(pid: int) -> list[Any]:
    import psutil

    try:
        return list(psutil.Process(pid).children(recursive=True))
    except psutil.NoSuchProcess:
        return []


def _stop(lab: Lab) -> None:
    """Shut the kernels down, stop the server, and make sure nothing is left running."""
    children = _descendants(lab.process.pid)
    try:
        for kernel in lab.api("GET", "/api/kernels").json():
            lab.api("DELETE", f"/api/kernels/{kernel['id']}")
    except (httpx.HTTPError, ValueError):
        pass  # the server is already gone: the kill below still cleans up
    lab.process.send_signal(signal.SIGTERM)
    try:
        lab.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        lab.process.kill()
        lab.process.wait(timeout=10)
    for child in children:
        if child.is_running():
            child.kill()


@pytest.fixture
def chromium() -> str:
    """The Chromium binary; skips (or fails under TF_MAGICS_REQUIRE_ALL) before anything starts."""
    require_playwright()
    return chromium_executable()


@pytest.fixture
def lab(tmp_path: Path, chromium: str) -> Iterator[Lab]:
    """JupyterLab on 127.0.0.1 with a random token, serving ``tmp_path / "root"``."""
    root = tmp_path / "root"
    root.mkdir()
    env = _write_settings(tmp_path)
    port, token = _free_port(), secrets.token_hex(16)
    log = tmp_path / "lab.log"
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",  # CI containers run as root
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.terminals_enabled=False",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
    ]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    server = Lab(f"http://127.0.0.1:{port}", token, process, root, log)
    try:
        _wait_until_up(server, time.monotonic() + 60)
        yield server
    finally:
        _stop(server)


def _write_notebook(path: Path, fake: FakeOpenAI) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    notebook.cells = [
        nbformat.v4.new_code_cell(SETUP_CELL.format(base_url=fake.base_url, model=MODELS[0])),
        nbformat.v4.new_code_cell("%chat panel"),
        nbformat.v4.new_code_cell(f"%%chat\n{FIRST_QUESTION}"),
        nbformat.v4.new_code_cell(f"%%chat\n{SECOND_QUESTION}"),
    ]
    nbformat.write(notebook, path)


# -- driving the page ------------------------------------------------------------------------------


def _cell(page: Any, index: int) -> Any:
    return page.locator(".jp-Notebook .jp-Cell").nth(index)


def run_cell(page: Any, index: int, *, wait: bool = True) -> None:
    """Select a cell by its prompt and press Shift+Enter, as a person would."""
    from playwright.sync_api import expect

    cell = _cell(page, index)
    prompt = cell.locator(".jp-InputPrompt")
    for _ in range(3):
        prompt.click()
        expect(cell).to_have_class(re.compile(r"\bjp-mod-active\b"))
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


def _open_notebook(page: Any, lab: Lab, name: str) -> None:
    page.goto(f"{lab.url}/lab/tree/{name}?token={lab.token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
    # More room for the notebook: fold the file browser away (when it is open).
    open_tab = page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
    if open_tab.count():
        open_tab.click()
        open_tab.wait_for(state="detached")


# -- the test --------------------------------------------------------------------------------------


def _move_temperature(page: Any, panel: Any) -> float:
    """Drag the temperature slider from "server default" to about 0.7; returns the value shown."""
    from playwright.sync_api import expect

    row = panel.locator(".tf-magics-temperature")
    expect(row.locator("input[type=checkbox]")).to_be_checked()
    drag_slider(page, row, 0.35)
    readout = row.locator(".widget-readout")
    # The readout appears when the kernel has taken the new value (the round trip).
    expect(readout).to_be_visible()
    expect(row.locator("input[type=checkbox]")).not_to_be_checked()
    temperature = float(readout.inner_text())
    assert 0.5 <= temperature <= 0.9
    return temperature


def _type_system_prompt(page: Any, panel: Any) -> None:
    from playwright.sync_api import expect

    panel.locator(".tf-magics-system textarea").click()
    page.keyboard.type(SYSTEM_PROMPT)
    # The history view lists the system prompt once the kernel has all of it.
    expect(panel.locator(".tf-history")).to_contain_text(SYSTEM_PROMPT)


def _switch_tool_off(panel: Any, name: str) -> None:
    from playwright.sync_api import expect

    panel.locator(".tf-magics-tool", has_text=name).locator("input").click()
    expect(panel.locator(".tf-status")).to_contain_text(f"{name} is off")


def _run_chat_cells(page: Any) -> None:
    """Run both ``%%chat`` cells; the second reply must be visible while it still streams."""
    from playwright.sync_api import expect

    run_cell(page, 2)
    expect(_cell(page, 2).locator(".jp-OutputArea")).to_contain_text("Total revenue per region")
    run_cell(page, 3, wait=False)
    output = _cell(page, 3).locator(".jp-OutputArea")
    expect(output).to_contain_text("A bar chart of the totals")
    assert _cell(page, 3).locator(".jp-InputPrompt").inner_text().startswith("[*]")
    expect(_cell(page, 3).locator(".jp-InputPrompt")).to_have_text(re.compile(r"^\[\d+\]:$"))
    expect(output).to_contain_text("ax.bar_label")
    expect(output).to_contain_text("tok/s")  # the footer: the reply is complete


def _check_requests(server: FakeOpenAI, temperature: float) -> None:
    requests = server.chat_requests
    assert len(requests) == 2
    for request in requests:
        assert request["temperature"] == temperature
        assert request["messages"][0] == {"role": "system", "content": SYSTEM_PROMPT}
        assert request["model"] == MODELS[0]
        assert [t["function"]["name"] for t in request["tools"]] == ["describe_column"]
    roles = [m["role"] for m in requests[1]["messages"]]
    assert roles == ["system", "user", "assistant", "user"]


def screenshot_dir(default: Path) -> Path:
    """Where the pictures go: ``TF_MAGICS_SCREENSHOT_DIR`` (relative to the repository), else
    ``default``. The README's pictures are refreshed with ``TF_MAGICS_SCREENSHOT_DIR=docs``; by
    default a test run leaves the checkout untouched (the server's port differs on every run).
    """
    chosen = os.environ.get(SCREENSHOT_DIR_ENV, "").strip()
    folder = REPO_ROOT / chosen if chosen else default
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _save_screenshots(page: Any, panel: Any, folder: Path) -> None:
    from playwright.sync_api import expect

    # The panel caught up with the cells: two turns, one bar each.
    expect(panel.locator(".tf-usage")).to_contain_text("2 turns")
    expect(panel.locator("svg.tf-magics-chart g")).to_have_count(2)
    page.mouse.move(1270, 500)  # no hover effects in the pictures
    panel.screenshot(path=str(folder / "panel.png"))
    _cell(page, 3).screenshot(path=str(folder / "streaming.png"))


def _retry_from_the_panel(panel: Any, server: FakeOpenAI) -> None:
    """Retry is a button callback: its reply streams into the panel's own output area."""
    from playwright.sync_api import expect

    panel.locator(".tf-magics-retry").click()
    expect(panel.locator(".tf-magics-replies")).to_contain_text(RETRY_REPLY)
    expect(panel.locator(".tf-status")).to_contain_text("New reply below")
    requests = server.chat_requests
    assert len(requests) == 3
    assert requests[2]["messages"] == requests[1]["messages"]  # the same question again


def test_panel_drives_a_conversation_in_jupyterlab(
    chromium: str, fake_server: FakeOpenAI, lab: Lab
) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)  # a loaded CI machine is slow; 5 s is not enough
    fake_server.models = MODELS
    fake_server.enqueue(
        TextReply(FIRST_REPLY, tokens_per_second=200, model=MODELS[0]),
        TextReply(SECOND_REPLY, tokens_per_second=20, model=MODELS[0]),
        TextReply(RETRY_REPLY, tokens_per_second=50, model=MODELS[0]),
    )
    _write_notebook(lab.root / "panel.ipynb", fake_server)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000}, device_scale_factor=2)
        page.set_default_timeout(TIMEOUT_MS)
        try:
            _open_notebook(page, lab, "panel.ipynb")
            run_cell(page, 0)
            run_cell(page, 1)
            panel = _cell(page, 1).locator(".tf-magics-panel")
            expect(panel.locator(".tf-magics-tool")).to_have_count(2)
            temperature = _move_temperature(page, panel)
            _type_system_prompt(page, panel)
            _switch_tool_off(panel, "drop_rows")
            _run_chat_cells(page)
            _check_requests(fake_server, temperature)
            _save_screenshots(page, panel, screenshot_dir(lab.root.parent))
            _retry_from_the_panel(panel, fake_server)
        except BaseException:
            failure = lab.root.parent / "failure.png"
            with contextlib.suppress(Exception):
                page.screenshot(path=str(failure))
            print(f"The page at the failure: {failure}\nJupyterLab's log: {lab.log}")
            raise
        finally:
            browser.close()


def test_a_missing_chromium_skips_or_fails_under_require_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TF_MAGICS_CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setattr(f"{__name__}.CHROMIUM_CANDIDATES", ())
    monkeypatch.setenv(REQUIRE_ALL_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="Chromium is not installed"):
        chromium_executable()
    monkeypatch.setenv(REQUIRE_ALL_ENV, "0")
    with pytest.raises(pytest.skip.Exception, match="Chromium is not installed"):
        chromium_executable()


ATTACK_REPLY = (
    "## A reply that tries to run script\n\n"
    "<script>document.title = 'pwned-script'</script>\n\n"
    "<img src=x onerror=\"document.title = 'pwned-img'\">\n\n"
    "[click me](javascript:document.title='pwned-link')\n\n"
    "<iframe srcdoc=\"<script>parent.document.title='pwned-frame'</script>\"></iframe>\n\n"
    "<svg onload=\"document.title = 'pwned-svg'\"></svg>\n\n"
    "Still **bold** and `code`.\n"
)


def test_model_output_cannot_run_script_in_jupyterlab(
    chromium: str, fake_server: FakeOpenAI, lab: Lab
) -> None:
    """The live session runs script inside text/html outputs: ours must carry none."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    fake_server.enqueue(
        ToolCallReply([("describe_column", '{"name": "price"}')], model=MODELS[0]),
        TextReply(ATTACK_REPLY, tokens_per_second=100, model=MODELS[0]),
    )
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    notebook.cells = [
        nbformat.v4.new_code_cell(
            SETUP_CELL.format(base_url=fake_server.base_url, model=MODELS[0])
        ),
        nbformat.v4.new_code_cell("%%chat\nDescribe the price column."),
    ]
    nbformat.write(notebook, lab.root / "attack.ipynb")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 900}, device_scale_factor=2)
        page.set_default_timeout(TIMEOUT_MS)
        dialogs: list[str] = []

        def on_dialog(dialog: Any) -> None:  # an alert() would mean script ran
            dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        try:
            _open_notebook(page, lab, "attack.ipynb")
            title = page.title()
            run_cell(page, 0)
            run_cell(page, 1)
            output = _cell(page, 1).locator(".jp-OutputArea")
            expect(output).to_contain_text("Still bold and code.")
            expect(output.locator("details.tf-magics-tool")).to_have_count(1)
            output.locator("details.tf-magics-tool summary").click()  # unfold the tool block
            expect(output).to_contain_text("Result")
            page.wait_for_timeout(500)  # give any injected handler its chance to fire
            assert page.title() == title and "pwned" not in page.title()
            assert dialogs == []
            reply = output.locator(".tf-magics-reply")  # JupyterLab's own chrome has SVG icons
            expect(reply).to_have_count(1)
            for selector in ("script", "iframe", "svg", "img[onerror]", "a[href^='javascript']"):
                assert reply.locator(selector).count() == 0, selector
            _cell(page, 1).screenshot(path=str(screenshot_dir(lab.root.parent) / "tools.png"))
        finally:
            browser.close()


MAP_SETUP = """\
%load_ext tf_magics
%config ChatSettings.base_url = '{base_url}'
%config ChatSettings.model = '{model}'
import pandas as pd
from dataclasses import dataclass
from typing import Literal

@dataclass
class Review:
    sentiment: Literal["positive", "negative"]
    stars: int

reviews = pd.DataFrame({{"text": [f"review number {{n}}" for n in range(48)]}})"""


def _review_of(request: Any) -> Any:
    n = int(request.json["messages"][-1]["content"].rsplit(" ", 1)[-1])
    value = {"sentiment": "negative" if n % 3 == 0 else "positive", "stars": n % 5 + 1}
    return TextReply(json.dumps(value), first_token_delay=0.5, model=MODELS[0])


def test_a_structured_reply_and_a_map_in_jupyterlab(
    chromium: str, fake_server: FakeOpenAI, lab: Lab
) -> None:
    """The value shows as a table; the map's bar moves, then turns into the summary line."""
    from playwright.sync_api import expect, sync_playwright

    from tf_testing.fake_openai import Dynamic

    expect.set_options(timeout=TIMEOUT_MS)
    fake_server.default = Dynamic(_review_of)
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    notebook.cells = [
        nbformat.v4.new_code_cell(MAP_SETUP.format(base_url=fake_server.base_url, model=MODELS[0])),
        nbformat.v4.new_code_cell("%%chat --schema Review -o one\nRate review number 7"),
        nbformat.v4.new_code_cell(
            "%%chat --map reviews --schema Review --concurrency 4 -o rated\nRate {text}"
        ),
        nbformat.v4.new_code_cell("rated.head(3)"),
    ]
    nbformat.write(notebook, lab.root / "map.ipynb")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 900}, device_scale_factor=2)
        page.set_default_timeout(TIMEOUT_MS)
        try:
            _open_notebook(page, lab, "map.ipynb")
            run_cell(page, 0)
            run_cell(page, 1)
            value = _cell(page, 1).locator("table.tf-magics-value")
            expect(value).to_contain_text("sentiment")
            expect(value).to_contain_text("positive")
            run_cell(page, 2, wait=False)
            output = _cell(page, 2).locator(".jp-OutputArea")
            bar = output.locator(".widget-hprogress .progress-bar")
            expect(bar).to_be_visible()  # a real ipywidgets bar while it runs (48 x 0.5 s / 4)
            expect(output).to_contain_text(re.compile(r"\d+ / 48 rows"))
            folder = screenshot_dir(lab.root.parent)
            _cell(page, 2).screenshot(path=str(folder / "map-progress.png"))
            expect(output).to_contain_text("✓ 48 rows in", timeout=60_000)
            expect(bar).to_have_count(0)  # the bar became the summary
            expect(output).to_contain_text("48 done")
            run_cell(page, 3)
            expect(_cell(page, 3).locator(".jp-OutputArea")).to_contain_text("review number 1")
        except BaseException:
            failure = lab.root.parent / "failure.png"
            with contextlib.suppress(Exception):
                page.screenshot(path=str(failure))
            print(f"The page at the failure: {failure}\nJupyterLab's log: {lab.log}")
            raise
        finally:
            browser.close()
    assert len(fake_server.chat_requests) == 49 and fake_server.peak_in_flight <= 4
