"""Attachments, comparisons and ``--code`` in JupyterLab and Notebook 7, in headless Chromium.

A figure attached with ``--with`` shows as a thumbnail in the collapsed block above the reply; a
comparison shows its replies side by side and its "Keep 2" button, clicked once the cell has
finished, puts reply 2 into the history (the next request carries it); ``--code`` makes
the front end add a new cell below holding the reply's code, which nothing runs.
"""

from __future__ import annotations

from typing import Any

import nbformat
import pytest

from tf_testing.fake_openai import Dynamic, FakeOpenAI, RecordedRequest, TextReply

from .jupyter import CHROMIUM_ARGS, TIMEOUT_MS, JupyterServer, cell, open_notebook, run_cell

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

SETUP = """\
%load_ext tf_magics
%config ChatSettings.base_url = '{base_url}'
%config ChatSettings.model = 'fake-model'
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(4, 3))
ax.plot([1, 3, 2])
plt.close(fig)"""
CODE_REPLY = "Like this:\n\n```python\nmarker = 'written by the model'\nprint(marker)\n```\n"


def _answer(request: RecordedRequest) -> TextReply:
    body: Any = request.json
    question = body["messages"][-1]["content"]
    if isinstance(question, str) and "Show me the code" in question:
        return TextReply(CODE_REPLY)
    if "temperature" in body:
        return TextReply(f"Reply at t={body['temperature']}.")
    return TextReply("A line that rises, then falls.")


def test_attachments_comparisons_and_code_in_the_browser(
    chromium: str, fake_server: FakeOpenAI, jupyter: JupyterServer
) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    fake_server.default = Dynamic(_answer)
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    notebook.cells = [
        nbformat.v4.new_code_cell(SETUP.format(base_url=fake_server.base_url)),
        nbformat.v4.new_code_cell("%%chat --with fig\nDescribe the chart."),
        nbformat.v4.new_code_cell("%%chat -t 0,1\nSay hi."),
        nbformat.v4.new_code_cell("%%chat --code\nShow me the code."),
    ]
    nbformat.write(notebook, jupyter.root / "context.ipynb")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        try:
            open_notebook(page, jupyter, "context.ipynb")
            run_cell(page, 0)
            run_cell(page, 1)
            attached = cell(page, 1).locator("details.tf-magics-attachments")
            expect(attached).to_contain_text("1 attachment sent with the question (fig)")
            attached.locator("summary").first.click()
            attached.locator("details.tf-magics-attachment summary").click()
            expect(attached.locator("img[src^='data:image/png;base64,']")).to_be_visible()
            expect(cell(page, 1).locator(".jp-OutputArea")).to_contain_text("rises, then falls")

            run_cell(page, 2)
            output = cell(page, 2).locator(".jp-OutputArea")
            expect(output.locator(".tf-magics-compare > div")).to_have_count(2)
            expect(output).to_contain_text("Reply at t=0.0.")
            expect(output).to_contain_text("Reply at t=1.0.")
            output.get_by_role("button", name="Keep 2").click()  # the kernel is idle now
            expect(output).to_contain_text("Reply 2 (t=1) is now in the history.")

            run_cell(page, 3)
            roles = [(m["role"], m["content"]) for m in fake_server.chat_requests[-1]["messages"]]
            assert roles[-3:] == [
                ("user", "Say hi."),
                ("assistant", "Reply at t=1.0."),
                ("user", "Show me the code."),
            ]
            expect(cell(page, 3).locator(".jp-OutputArea")).to_contain_text(
                "went into a new cell below (not run)"
            )
            added = cell(page, 4)
            expect(added.locator(".jp-InputArea")).to_contain_text(
                "marker = 'written by the model'"
            )
            assert added.locator(".jp-InputPrompt").inner_text().strip() in ("[ ]:", "[ ]")
        finally:
            browser.close()
