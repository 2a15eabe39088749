"""The notebook as context in a real kernel, against a scripted server that records every request:
DataFrames and figures attached, dry runs, explain, --code, comparisons, and no secret sent."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from jupyter_core.utils import ensure_event_loop

from tf_testing.fake_openai import Dynamic, FakeOpenAI, RecordedRequest, TextReply, ToolCallReply
from tf_testing.kernels import KernelSession, kernel_session

pytestmark = pytest.mark.kernel

#: Secrets in the kernel's environment, under names that say so.
SECRETS = {
    "WAREHOUSE_PASSWORD": "wh-pass-5f4dcc3b5aa765d61d8327deb882cf99",
    "GITHUB_TOKEN": "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
    "PAYMENTS_API_KEY": "pk_live_0123456789abcdefghijklmn",
}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(scope="module")
def kernel(server: FakeOpenAI) -> Iterator[KernelSession]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in SECRETS.items():
            patch.setenv(name, value)
        with kernel_session() as session:
            setup = session.run(
                "%load_ext tf_magics\n"
                f"%config ChatSettings.base_url = {server.base_url!r}\n"
                "%config ChatSettings.model = 'fake-model'\n"
                "import matplotlib\nmatplotlib.use('Agg')\n"
                "import numpy as np, pandas as pd, matplotlib.pyplot as plt"
            )
            assert setup.status == "ok", setup.error
            yield session


@pytest.fixture(autouse=True)
def _fresh(server: FakeOpenAI, kernel: KernelSession) -> Iterator[None]:
    server.reset()
    kernel.run("%chat reset")
    yield
    # Whatever a test did, nothing secret ever reached the server.
    sent = b"".join(request.body for request in server.requests)
    assert not [name for name, value in SECRETS.items() if value.encode() in sent]


def the_output(run: Any) -> dict[str, str]:
    rich = [o for o in run.outputs() if o["type"] == "display_data"]
    return rich[0]["data"]  # type: ignore[no-any-return]


def test_a_large_dataframe_goes_as_a_bounded_summary_with_its_shape_and_columns(
    kernel: KernelSession, server: FakeOpenAI
) -> None:
    built = kernel.run(
        "rows = 10_000_000\n"
        "big = pd.DataFrame({'id': np.arange(rows),\n"
        "    'amount': np.random.default_rng(0).normal(size=rows),\n"
        "    'region': pd.Categorical(np.resize(['north', 'south', 'east', 'west'], rows)),\n"
        "    'when': pd.date_range('2020-01-01', periods=rows, freq='min')})",
        timeout=180,
    )
    assert built.status == "ok", built.error
    run = kernel.run("%%chat --with big\nWhat is in this table?", timeout=180)
    assert run.status == "ok", run.error
    content = server.chat_requests[-1]["messages"][-1]["content"]
    assert content.startswith("Attachment `big` (pandas DataFrame, 10,000,000 rows × 4 columns):")
    for column in ("id", "amount", "region", "when"):
        assert f"- {column} (" in content
    attachment = content.rsplit("\n\nWhat is in this table?", 1)[0]
    assert len(attachment) <= 2_000 * 4 + 100  # context_max_tokens, at ~4 characters a token
    shown = the_output(run)
    assert "📎 1 attachment sent with the question (big)" in shown["text/html"]
    assert shown["text/plain"].startswith("📎 Attached: big (pandas DataFrame, 10,000,000 rows")
    assert kernel.run("del big").status == "ok"


def test_a_figure_arrives_as_an_image_part(kernel: KernelSession, server: FakeOpenAI) -> None:
    made = kernel.run("fig, ax = plt.subplots()\nax.bar(['a', 'b'], [3, 5])\nplt.close(fig)")
    assert made.status == "ok", made.error
    run = kernel.run("%%chat --with fig\nDescribe the chart.")
    assert run.status == "ok", run.error
    content = server.chat_requests[-1]["messages"][-1]["content"]
    label, image, question = content
    assert label["text"].startswith("Attachment `fig` (matplotlib Figure, PNG image ")
    assert image["type"] == "image_url"
    assert image["image_url"]["url"].startswith("data:image/png;base64,iVBORw0KGgo")
    assert question == {"type": "text", "text": "Describe the chart."}
    assert '<img src="data:image/png;base64,' in the_output(run)["text/html"]  # a thumbnail


def test_a_dry_run_sends_nothing_and_leaves_the_history_unchanged(
    kernel: KernelSession, server: FakeOpenAI
) -> None:
    assert kernel.run("%%chat\nRemember: blue.").status == "ok"
    before = kernel.run("import tf_magics, json\nprint(json.dumps(tf_magics.get_chat().history))")
    sent = len(server.requests)
    run = kernel.run("%%chat --dry-run --with fig -t 0\nWhat colour?")
    assert run.status == "ok", run.error
    assert len(server.requests) == sent
    after = kernel.run("print(json.dumps(tf_magics.get_chat().history))")
    assert (
        before.of_type("stream")[0]["content"]["text"]
        == after.of_type("stream")[0]["content"]["text"]
    )
    shown = the_output(run)
    assert "Dry run: nothing was sent." in shown["text/plain"]
    assert '"temperature": 0' in shown["text/plain"] and "What colour?" in shown["text/plain"]
    assert "[image: data:image/png;base64," in shown["text/plain"]


def test_explain_sends_the_exception_and_its_cell(
    kernel: KernelSession, server: FakeOpenAI
) -> None:
    failed = kernel.run("prices = {'tea': 2.0}\ntotal = prices['coffee'] * 3")
    assert failed.status == "error"
    server.enqueue(TextReply("There is no 'coffee' key. Use `prices.get('coffee', 0)`."))
    run = kernel.run("%chat explain")
    assert run.status == "ok", run.error
    content = server.chat_requests[-1]["messages"][-1]["content"]
    assert "Attachment `error` (KeyError raised in cell In [" in content
    assert "KeyError: 'coffee'" in content
    assert "→2 | total = prices['coffee'] * 3" in content
    assert "prices.get" in the_output(run)["text/plain"]


def test_code_sets_the_next_input_and_runs_nothing(
    kernel: KernelSession, server: FakeOpenAI
) -> None:
    server.enqueue(TextReply("Try:\n\n```python\nmarker = 'from the model'\nprint(marker)\n```\n"))
    run = kernel.run("%%chat --code\nHow do I print a marker?")
    assert run.status == "ok", run.error
    (payload,) = run.reply["content"]["payload"]
    assert payload == {
        "source": "set_next_input",
        "text": "marker = 'from the model'\nprint(marker)",
        "replace": False,
    }
    assert "went into a new cell below (not run)" in the_output(run)["text/plain"]
    assert (
        kernel.run("print('marker' in globals())").of_type("stream")[0]["content"]["text"].strip()
        == "False"
    )


def test_a_comparison_sends_one_request_per_variant_and_shows_them_all(
    kernel: KernelSession, server: FakeOpenAI
) -> None:
    def answer(request: RecordedRequest) -> TextReply:
        body = request.json
        return TextReply(f"**{body['model']}** says hi at {body.get('temperature')}")

    server.default = Dynamic(answer)
    run = kernel.run("%%chat -t 0,0.7,1.4\nSay hi.")
    assert run.status == "ok", run.error
    assert sorted(r["temperature"] for r in server.chat_requests) == [0, 0.7, 1.4]
    outputs = [o for o in run.outputs() if o["type"] == "display_data"]
    columns, buttons = outputs
    html = columns["data"]["text/html"]
    assert html.count("<strong>fake-model</strong> says hi at") == 3
    for label in ("t=0", "t=0.7", "t=1.4"):
        assert f"<code>{label}</code>" in html
    assert "application/vnd.jupyter.widget-view+json" in buttons["data"]
    run = kernel.run("%%chat --compare model-a,model-b\nWho are you?")
    assert run.status == "ok", run.error
    assert sorted(r["model"] for r in server.chat_requests[-2:]) == ["model-a", "model-b"]
    kept = kernel.run(
        "%chat keep 2\nimport json, tf_magics\nprint(json.dumps(tf_magics.get_chat().history))"
    )
    assert kept.status == "ok", kept.error
    printed = "".join(m["content"]["text"] for m in kept.of_type("stream")).splitlines()
    assert printed[0] == "Kept reply 2 (model-b, 5 words) in conversation 'default'."
    history = json.loads(printed[1])
    assert [m["content"] for m in history] == ["Who are you?", "**model-b** says hi at None"]


def test_interrupt_stops_every_variant(kernel: KernelSession, server: FakeOpenAI) -> None:
    server.default = TextReply([f"w{n} " for n in range(2000)], tokens_per_second=50)
    seen: list[str] = []

    def on_message(message: dict[str, Any], _: float) -> None:
        if message["msg_type"] in ("display_data", "update_display_data"):
            seen.append(message["content"]["data"].get("text/plain", ""))

    def interrupt_when_streaming() -> None:
        deadline = time.monotonic() + 30
        while not any(text.count("writing") >= 2 for text in seen) and time.monotonic() < deadline:
            time.sleep(0.02)
        kernel.manager.interrupt_kernel()
        ensure_event_loop().close()

    interrupter = threading.Thread(target=interrupt_when_streaming, daemon=True)
    interrupter.start()
    run = kernel.run("%%chat -t 0,1\nCount slowly.", on_message=on_message)
    interrupter.join()
    assert run.status == "error" and run.error is not None
    assert run.error["ename"] == "StreamInterrupted"
    shown = the_output(run)["text/plain"]
    assert shown.count("⏹ Interrupted.") == 2 and "w1999" not in shown
    follow = kernel.run("%%chat\nAnd now?")
    assert follow.status == "ok", follow.error


def test_no_secret_from_the_environment_is_ever_sent(
    kernel: KernelSession, server: FakeOpenAI
) -> None:
    password, token, key = SECRETS.values()
    server.enqueue(ToolCallReply([("read_env", "{}")]), TextReply("Done."))
    cells = [
        f"%%chat -s 'Our password is {password}.'\nIs {token} a valid token?",
        "accounts = pd.DataFrame({'user': ['ann', 'bob'], 'credentials': "
        f"[{password!r}, {token!r}], 'note': ['uses {key}', 'none']}})",
        "%%chat --with accounts\nWho has credentials?",
        "import os, tf_magics\n@tf_magics.tool\ndef read_env() -> dict:\n"
        "    '''The environment.'''\n    return dict(os.environ)",
        "%%chat --tool-choice read_env\nWhat is configured?",
        "%%chat --dry-run\nThe key is " + key,
    ]
    for cell in cells:
        run = kernel.run(cell)
        assert run.status == "ok", (cell, run.error)
    assert len(server.chat_requests) == 4
    masked = json.dumps(server.chat_requests)
    assert "[redacted: GITHUB_TOKEN]" in masked and "[redacted: WAREHOUSE_PASSWORD]" in masked
    assert "[redacted: PAYMENTS_API_KEY]" in masked
    assert "values withheld (the name looks secret)" in masked
    dry_run = the_output(run)["text/plain"]
    assert "[redacted: PAYMENTS_API_KEY]" in dry_run and key not in dry_run
