"""The magic and its panel in a real browser: JupyterLab and Notebook 7, headless Chromium.

Each test runs once in JupyterLab and once in Notebook 7 (the ``jupyter`` fixture). A notebook is
written into a temporary directory and opened in the front end; Playwright runs its cells through
the UI, moves the temperature slider with the mouse, types a system prompt, switches a tool off,
then runs two ``%%chat`` cells. The fake server (in this process) must receive the new temperature,
the system prompt and the tools list, and the streamed replies must be visible in the page while
they stream. Last, the panel's Retry button asks the question again from a widget callback.
Another test streams a tool call and a hostile reply: the tool block shows, and nothing in the
reply can run script. Screenshots of the panel and of a streamed reply are saved for the README:
to ``docs/`` with ``TF_MAGICS_SCREENSHOT_DIR=docs`` (Notebook 7's with a ``notebook7-`` prefix),
otherwise to the test's temporary directory. The shared support is ``tests/e2e/jupyter.py``.
A third test shows a structured reply's table and a map's progress bar as the front end draws them.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tf_testing.fake_openai import FakeOpenAI, TextReply, ToolCallReply
from tf_testing.model_server import REQUIRE_ALL_ENV

from .jupyter import (
    CHROMIUM_ARGS,
    TIMEOUT_MS,
    JupyterServer,
    cell,
    chromium_executable,
    drag_slider,
    open_notebook,
    run_cell,
    screenshot_dir,
    write_notebook,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

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


# -- the panel test --------------------------------------------------------------------------------


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
    expect(cell(page, 2).locator(".jp-OutputArea")).to_contain_text("Total revenue per region")
    run_cell(page, 3, wait=False)
    output = cell(page, 3).locator(".jp-OutputArea")
    expect(output).to_contain_text("A bar chart of the totals")
    assert cell(page, 3).locator(".jp-InputPrompt").inner_text().startswith("[*]")
    expect(cell(page, 3).locator(".jp-InputPrompt")).to_have_text(re.compile(r"^\[\d+\]:$"))
    expect(output).to_contain_text("ax.bar_label")
    expect(output).to_contain_text("tok/s")  # the footer: the reply is complete
    # One final output per reply, the streamed pieces gone.
    expect(output.locator(".tf-magics-reply")).to_have_count(1)


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


def _save_screenshots(page: Any, panel: Any, folder: Path, prefix: str) -> None:
    from playwright.sync_api import expect

    # The panel caught up with the cells: two turns, one bar each.
    expect(panel.locator(".tf-usage")).to_contain_text("2 turns")
    expect(panel.locator("svg.tf-magics-chart g")).to_have_count(2)
    page.mouse.move(1270, 500)  # no hover effects in the pictures
    panel.screenshot(path=str(folder / f"{prefix}panel.png"))
    cell(page, 3).screenshot(path=str(folder / f"{prefix}streaming.png"))


def _retry_from_the_panel(panel: Any, server: FakeOpenAI) -> None:
    """Retry is a button callback: its reply streams into the panel's own output area."""
    from playwright.sync_api import expect

    panel.locator(".tf-magics-retry").click()
    expect(panel.locator(".tf-magics-replies")).to_contain_text(RETRY_REPLY)
    expect(panel.locator(".tf-status")).to_contain_text("New reply below")
    requests = server.chat_requests
    assert len(requests) == 3
    assert requests[2]["messages"] == requests[1]["messages"]  # the same question again


@contextlib.contextmanager
def _browser(chromium: str, jupyter: JupyterServer, *, width: int, height: int) -> Iterator[Any]:
    """A page in headless Chromium; on failure, a picture of it and where the server's log is."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)  # a loaded CI machine is slow; 5 s is not enough
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=2)
        page.set_default_timeout(TIMEOUT_MS)
        try:
            yield page
        except BaseException:
            failure = jupyter.root.parent / "failure.png"
            with contextlib.suppress(Exception):
                page.screenshot(path=str(failure))
            print(f"The page at the failure: {failure}\nThe server's log: {jupyter.log}")
            raise
        finally:
            browser.close()


def test_panel_drives_a_conversation_in_the_browser(
    chromium: str, fake_server: FakeOpenAI, jupyter: JupyterServer
) -> None:
    from playwright.sync_api import expect

    fake_server.models = MODELS
    fake_server.enqueue(
        TextReply(FIRST_REPLY, tokens_per_second=200, model=MODELS[0]),
        TextReply(SECOND_REPLY, tokens_per_second=20, model=MODELS[0]),
        TextReply(RETRY_REPLY, tokens_per_second=50, model=MODELS[0]),
    )
    setup = SETUP_CELL.format(base_url=fake_server.base_url, model=MODELS[0])
    cells = [setup, "%chat panel", f"%%chat\n{FIRST_QUESTION}", f"%%chat\n{SECOND_QUESTION}"]
    write_notebook(jupyter.root / "panel.ipynb", cells)
    with _browser(chromium, jupyter, width=1280, height=1000) as page:
        open_notebook(page, jupyter, "panel.ipynb")
        run_cell(page, 0)
        run_cell(page, 1)
        panel = cell(page, 1).locator(".tf-magics-panel")
        expect(panel.locator(".tf-magics-tool")).to_have_count(2)
        temperature = _move_temperature(page, panel)
        _type_system_prompt(page, panel)
        _switch_tool_off(panel, "drop_rows")
        _run_chat_cells(page)
        _check_requests(fake_server, temperature)
        folder = screenshot_dir(jupyter.root.parent)
        _save_screenshots(page, panel, folder, jupyter.frontend.screenshot_prefix)
        _retry_from_the_panel(panel, fake_server)


def test_a_missing_chromium_skips_or_fails_under_require_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TF_MAGICS_CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setenv(REQUIRE_ALL_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="Chromium is not installed"):
        chromium_executable(candidates=())
    monkeypatch.setenv(REQUIRE_ALL_ENV, "0")
    with pytest.raises(pytest.skip.Exception, match="Chromium is not installed"):
        chromium_executable(candidates=())


# -- hostile output --------------------------------------------------------------------------------

ATTACK_REPLY = (
    "## A reply that tries to run script\n\n"
    "<script>document.title = 'pwned-script'</script>\n\n"
    "<img src=x onerror=\"document.title = 'pwned-img'\">\n\n"
    "[click me](javascript:document.title='pwned-link')\n\n"
    "<iframe srcdoc=\"<script>parent.document.title='pwned-frame'</script>\"></iframe>\n\n"
    "<svg onload=\"document.title = 'pwned-svg'\"></svg>\n\n"
    "Still **bold** and `code`.\n"
)


def test_model_output_cannot_run_script_in_the_browser(
    chromium: str, fake_server: FakeOpenAI, jupyter: JupyterServer
) -> None:
    """The live session runs script inside text/html outputs: ours must carry none."""
    from playwright.sync_api import expect

    fake_server.enqueue(
        ToolCallReply([("describe_column", '{"name": "price"}')], model=MODELS[0]),
        TextReply(ATTACK_REPLY, tokens_per_second=100, model=MODELS[0]),
    )
    setup = SETUP_CELL.format(base_url=fake_server.base_url, model=MODELS[0])
    write_notebook(jupyter.root / "attack.ipynb", [setup, "%%chat\nDescribe the price column."])
    with _browser(chromium, jupyter, width=1100, height=900) as page:
        dialogs: list[str] = []

        def on_dialog(dialog: Any) -> None:  # an alert() would mean script ran
            dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        open_notebook(page, jupyter, "attack.ipynb")
        title = page.title()
        run_cell(page, 0)
        run_cell(page, 1)
        output = cell(page, 1).locator(".jp-OutputArea")
        expect(output).to_contain_text("Still bold and code.")
        expect(output.locator("details.tf-magics-tool")).to_have_count(1)
        output.locator("details.tf-magics-tool summary").click()  # unfold the tool block
        expect(output).to_contain_text("Result")
        expect(output).to_contain_text("describe_column")
        page.wait_for_timeout(500)  # give any injected handler its chance to fire
        assert page.title() == title and "pwned" not in page.title()
        assert dialogs == []
        reply = output.locator(".tf-magics-reply")  # the front end's own chrome has SVG icons
        expect(reply).to_have_count(1)
        for selector in ("script", "iframe", "svg", "img[onerror]", "a[href^='javascript']"):
            assert reply.locator(selector).count() == 0, selector
        prefix = jupyter.frontend.screenshot_prefix
        folder = screenshot_dir(jupyter.root.parent)
        cell(page, 1).screenshot(path=str(folder / f"{prefix}tools.png"))


# -- structured replies and map --------------------------------------------------------------------

MAP_SETUP = """\
%load_ext tf_magics
%config ChatSettings.base_url = '{base_url}'
%config ChatSettings.model = '{model}'
%chat set 'prices={{"{model}": [2.5, 10]}}' currency=$
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


def test_a_structured_reply_and_a_map_in_the_browser(
    chromium: str, fake_server: FakeOpenAI, jupyter: JupyterServer
) -> None:
    """The value shows as a table; the map's bar moves, then turns into the summary line."""
    from playwright.sync_api import expect

    from tf_testing.fake_openai import Dynamic

    fake_server.default = Dynamic(_review_of)
    write_notebook(
        jupyter.root / "map.ipynb",
        [
            MAP_SETUP.format(base_url=fake_server.base_url, model=MODELS[0]),
            "%%chat --schema Review -o one\nRate review number 7",
            "%%chat --map reviews --schema Review --concurrency 4 -o rated\nRate {text}",
            "rated.head(3)",
        ],
    )
    with _browser(chromium, jupyter, width=1100, height=900) as page:
        open_notebook(page, jupyter, "map.ipynb")
        run_cell(page, 0)
        run_cell(page, 1)
        value = cell(page, 1).locator("table.tf-magics-value")
        expect(value).to_contain_text("sentiment")
        expect(value).to_contain_text("positive")
        # The footer's two amounts ("$0.0001 · … conversation …, $0.0001") are not a formula.
        footer = cell(page, 1).locator(".tf-magics-footer")
        expect(footer).to_contain_text(re.compile(r"\$[\d.]+ · .*, \$[\d.]+"))
        assert cell(page, 1).locator("mjx-container, .MathJax").count() == 0
        run_cell(page, 2, wait=False)
        output = cell(page, 2).locator(".jp-OutputArea")
        bar = output.locator(".widget-hprogress .progress-bar")
        expect(bar).to_be_visible()  # a real ipywidgets bar while it runs (48 x 0.5 s / 4)
        expect(output).to_contain_text(re.compile(r"\d+ / 48 rows"))
        folder = screenshot_dir(jupyter.root.parent)
        cell(page, 2).screenshot(
            path=str(folder / f"{jupyter.frontend.screenshot_prefix}map-progress.png")
        )
        expect(output).to_contain_text("✓ 48 rows in", timeout=60_000)
        expect(bar).to_have_count(0)  # the bar became the summary
        expect(output).to_contain_text("48 done")
        run_cell(page, 3)
        expect(cell(page, 3).locator(".jp-OutputArea")).to_contain_text("review number 1")
    assert len(fake_server.chat_requests) == 49 and fake_server.peak_in_flight <= 4
