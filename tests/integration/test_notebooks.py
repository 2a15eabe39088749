"""The notebooks in ``notebooks/`` run headless, live and replayed, and read well when saved.

Each notebook runs twice, with nbclient in a fresh ``python3`` kernel whose environment names no API
key and no base URL, from a copy in a temporary folder (so a run leaves nothing in the checkout):

- **live**: the first ``%%chat`` must start the embedded local model by the default path (the
  ``[local]`` extra; skipped without it unless ``TF_MAGICS_REQUIRE_ALL=1``);
- **replayed**: with ``TF_MAGICS_CACHE=replay`` and no model server at all (the local model could
  not even start: its file points nowhere, and the test asserts it never ran), every reply comes
  from the recording committed beside the notebook (``<name>.tf_magics.jsonl``) and must be the
  one the committed notebook shows.

Any cell error fails the test, and a few outputs per notebook are checked for what its lesson shows.
The kernel is told the notebook's path (``JPY_SESSION_NAME``, as JupyterLab does), so the recording
is found beside it.

The committed notebooks carry the outputs of a real run, recorded in the same run as their
recordings; the fast tests below check that they do, that the two agree, and that nothing gives
away a machine's paths or a key. To record the notebooks again after changing one (or the magic),
run from the repository's root (the local model answers; the old recording is replaced)::

    .venv/bin/python -m tests.integration.test_notebooks            # every notebook
    .venv/bin/python -m tests.integration.test_notebooks 02-tools   # names containing 02-tools
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.paths import REPO_ROOT
from tf_magics.cache import RecordingFile
from tf_testing.model_server import require_local_extra

NOTEBOOKS = REPO_ROOT / "notebooks"
NOTEBOOK_PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
EXPECTED = {
    "01-quick-start.ipynb",
    "02-tools.ipynb",
    "03-teaching-the-api.ipynb",
    "04-exploratory-analysis.ipynb",
    "05-data-at-scale.ipynb",
}
CELL_TIMEOUT = 240  # seconds for one cell (a slow, busy CI machine included)

#: Environment variables that would point the kernel at another endpoint or model.
ENDPOINT_VARIABLES = (
    "TOKEN_FACTORY_API_KEY",
    "TOKEN_FACTORY_BASE_URL",
    "TOKEN_FACTORY_MODEL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "TF_MAGICS_LOCAL_MODEL",
    "TF_MAGICS_CACHE",
    "TF_MAGICS_CACHE_FILE",
)
#: A cell added to a replayed run: the local model server must never have started.
SERVER_CHECK = (
    "import tf_magics.local\n"
    "print('local model server started:', tf_magics.local.local_server_running())"
)
REPLY_MIMETYPES = {"text/plain", "text/markdown", "text/html"}
LOCAL_FOOTER = "tiny local demo model"
TOOL_BLOCK_HTML = '<details class="tf-magics-tool'
# Paths that would tie a saved output to one machine (checkouts, temp dirs, home directories).
MACHINE_PATH = re.compile(
    r"(?<![\w.])/(?:work|tmp|root|home|Users|var/folders)/"  # a checkout, temp or home dir
)

Notebook = Any  # nbformat.NotebookNode (untyped)


# -- running -------------------------------------------------------------------------------------


def kernel_environment(ipython_dir: str) -> dict[str, str]:
    """The kernel's environment: this one without any endpoint setting, with this checkout first.

    No key and no base URL, so the first ``%%chat`` takes the default path to the local model;
    ``PYTHONPATH`` makes the kernel import this working tree's ``tf_magics``; a private
    ``IPYTHONDIR`` keeps profiles and startup files of the machine out of the run.
    """
    env = {k: v for k, v in os.environ.items() if k not in ENDPOINT_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["IPYTHONDIR"] = ipython_dir
    env.pop("MPLBACKEND", None)  # the kernel's inline backend draws the charts into the notebook
    return env


def recording_of(path: Path) -> Path:
    """The recording committed beside a notebook."""
    return path.with_name(path.stem + ".tf_magics.jsonl")


def execute_notebook(
    path: Path, *, mode: str = "off", cells: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> tuple[Notebook, str]:
    """Run a copy of a notebook top to bottom in a fresh kernel; raise on the first cell error.

    The copy runs in a temporary folder with the notebook's recording beside it (except in
    ``record`` mode, which starts a new one), in the record/replay ``mode``, with ``cells``
    appended. Returns the executed notebook and the recording's text after the run.
    """
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory(prefix="tf_magics-lesson-") as folder:
        copy = Path(folder) / path.name
        shutil.copyfile(path, copy)
        if mode != "record" and recording_of(path).exists():
            shutil.copyfile(recording_of(path), recording_of(copy))
        notebook = nbformat.read(copy, as_version=4)
        notebook.cells += [nbformat.v4.new_code_cell(source) for source in cells]
        client = NotebookClient(
            notebook,
            timeout=CELL_TIMEOUT,
            kernel_name="python3",
            resources={"metadata": {"path": folder}},
            record_timing=False,
        )
        with tempfile.TemporaryDirectory(prefix="tf_magics-ipython-") as ipython_dir:
            kernel_env = kernel_environment(ipython_dir)
            # As JupyterLab and Notebook 7 do: the kernel learns which notebook it runs.
            kernel_env.update(JPY_SESSION_NAME=str(copy), TF_MAGICS_CACHE=mode, **(env or {}))
            client.execute(env=kernel_env)
        recorded = recording_of(copy)
        text = recorded.read_text(encoding="utf-8") if recorded.exists() else ""
    return notebook, text


# -- reading outputs -----------------------------------------------------------------------------


def code_cell(notebook: Notebook, snippet: str) -> Any:
    """The first code cell whose source contains ``snippet``."""
    for cell in notebook.cells:
        if cell.cell_type == "code" and snippet in cell.source:
            return cell
    raise AssertionError(f"no code cell contains {snippet!r}")


def chat_cells(notebook: Notebook) -> list[Any]:
    """The ``%%chat`` cells that leave a reply.

    A ``--map`` cell leaves a summary instead, and a ``--dry-run`` cell the request it would send.
    """
    return [
        c
        for c in notebook.cells
        if c.cell_type == "code"
        and c.source.startswith("%%chat")
        and not {"--map", "--dry-run"} & set(c.source.splitlines()[0].split())
    ]


def reply_output(cell: Any) -> dict[str, Any]:
    """The one rich output a ``%%chat`` cell leaves (extra outputs: a tool's prints)."""
    rich = [o for o in cell.outputs if o.output_type == "display_data"]
    assert len(rich) == 1, f"expected one reply output in {cell.source[:50]!r}, got {len(rich)}"
    data: dict[str, Any] = rich[0]["data"]
    return data


def text_of(cell: Any) -> str:
    """Everything a cell printed or displayed, as plain text."""
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type in ("display_data", "execute_result"):
            parts.append(output.data.get("text/plain", ""))
        elif output.output_type == "error":
            parts.append(f"{output.ename}: {output.evalue}")
    return "\n".join(parts)


def printed_lines(cell: Any) -> list[str]:
    return [line for line in text_of(cell).splitlines() if line.strip()]


def outputs_json(notebook: Notebook) -> str:
    return json.dumps([c.get("outputs", []) for c in notebook.cells]) + json.dumps(
        notebook.metadata
    )


# -- checks shared by the fresh run and the committed files --------------------------------------


def check_ran_cleanly(notebook: Notebook) -> None:
    code = [c for c in notebook.cells if c.cell_type == "code"]
    counts = [c.execution_count for c in code]
    assert counts == list(range(1, len(code) + 1)), f"not one top-to-bottom run: {counts}"
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, f"a cell failed: {errors[0]['ename']}: {errors[0]['evalue']}"
    stderr = [o.text for c in code for o in c.outputs if o.get("name") == "stderr"]
    assert not stderr, f"a cell wrote to stderr: {stderr[0][:300]!r}"


def check_no_machine_paths(notebook: Notebook) -> None:
    saved = outputs_json(notebook)
    found = MACHINE_PATH.search(saved)
    assert found is None, (
        f"an output shows a path: ...{saved[found.start() - 60 : found.end() + 60]}"
    )
    assert str(REPO_ROOT) not in saved


def check_chat_replies(notebook: Notebook) -> None:
    cells = chat_cells(notebook)
    assert cells, "the notebook has no %%chat cell"
    for cell in cells:
        if "--dry-run" in cell.source.split("\n", 1)[0]:
            continue  # a request shown, not sent: no reply
        data = reply_output(cell)
        assert set(data) == REPLY_MIMETYPES, f"{cell.source[:40]!r}: {sorted(data)}"
        assert LOCAL_FOOTER in data["text/plain"], data["text/plain"][-300:]
        assert "<script" not in data["text/html"].lower()


def check_quick_start(notebook: Notebook) -> None:
    history = text_of(code_cell(notebook, "%chat history"))
    assert "turn 2" in history and "What is she or he known for?" in history
    assert "[system]" not in history  # the pirate system prompt went to its own conversation
    poet = code_cell(notebook, "-c pirate")
    assert reply_output(poet)["text/plain"].strip()
    idea = code_cell(notebook, "idea.strip()")
    (result,) = idea.outputs
    assert result.output_type == "execute_result" and len(result.data["text/plain"]) > 2
    settings = text_of(code_cell(notebook, "%chat settings"))
    assert "max_tokens         200" in settings and "api_key            not set" in settings
    panel = code_cell(notebook, "%chat panel")
    (shown,) = panel.outputs
    assert "application/vnd.jupyter.widget-view+json" in shown.data  # the live widgets
    assert "text/html" in shown.data and "temperature" in shown.data["text/plain"]
    endpoint = text_of(code_cell(notebook, "example_environment"))
    assert "(from TOKEN_FACTORY_BASE_URL)" in endpoint and "set (TOKEN_FACTORY_API_KEY)" in endpoint
    assert "an-example-key" not in endpoint  # the key itself is never shown


def check_tools(notebook: Notebook) -> None:
    paris = reply_output(code_cell(notebook, "--tool-choice get_temperature"))
    assert "[tool] ✓ get_temperature(" in paris["text/plain"]
    assert "→ 18.5" in paris["text/plain"]  # the function's real result
    assert TOOL_BLOCK_HTML in paris["text/html"] and "18.5" in paris["text/html"]
    convert = reply_output(code_cell(notebook, "--tool-choice celsius_to_fahrenheit"))
    assert "[tool] ✓ celsius_to_fahrenheit(" in convert["text/plain"]
    schema = json.loads(text_of(code_cell(notebook, "schemas()[0]")))
    assert schema["function"]["name"] == "get_temperature"
    assert schema["function"]["parameters"]["properties"]["city"]["type"] == "string"
    results = text_of(code_cell(notebook, "reply.tool_results"))
    assert "celsius_to_fahrenheit(" in results and "[ok]" in results
    roles = [line.split()[0] for line in text_of(code_cell(notebook, ".history:")).splitlines()]
    assert roles[:5] == ["user", "assistant", "tool", "assistant", "user"]
    failing = reply_output(code_cell(notebook, "--tool-choice get_humidity"))
    assert "✗ get_humidity(" in failing["text/plain"] and "offline" in failing["text/plain"]


def check_teaching(notebook: Notebook) -> None:
    history = text_of(code_cell(notebook, "enumerate(chat.history)")).splitlines()
    assert history[0].split()[:2] == ["0", "system"]
    body = json.loads(text_of(code_cell(notebook, "request_body(")))
    assert body["messages"][0]["role"] == "system" and "max_tokens" in body
    chart = code_cell(notebook, "usage_by_turn()")
    assert any("image/png" in o.get("data", {}) for o in chart.outputs), "no chart"
    match = re.search(r"prompt tokens per turn: \[([\d, ]+)\]", text_of(chart))
    assert match is not None, text_of(chart)
    prompt_tokens = [int(n) for n in match.group(1).split(",")]
    assert len(prompt_tokens) == 5 and all(n > 0 for n in prompt_tokens)
    assert prompt_tokens == sorted(prompt_tokens) and prompt_tokens[-1] > prompt_tokens[0]
    lines = printed_lines(code_cell(notebook, "for temperature in"))
    assert len(lines) == 9 and all(line.startswith("t=") for line in lines)
    assert lines[1] == lines[2]  # two repeats at temperature 0, computed alike: the same reply
    seeded = printed_lines(code_cell(notebook, "seed=42"))
    assert len(seeded) == 2
    cut = reply_output(code_cell(notebook, "--max-tokens 8"))
    assert "cut off at max_tokens (8)" in cut["text/plain"]
    finish = text_of(code_cell(notebook, "cut.finish_reason"))
    assert "finish_reason: length" in finish and "tokens out:    8" in finish
    timing = text_of(code_cell(notebook, "streamed = chat.ask"))
    assert timing.count("first words after") == 2


def check_analysis(notebook: Notebook) -> None:
    assert "1,092 rows" in text_of(code_cell(notebook, "rng = np.random.default_rng"))
    for name in ("describe_sales", "revenue_by", "best_days"):
        cell = code_cell(notebook, f"--tool-choice {name}")
        data = reply_output(cell)
        assert f"[tool] ✓ {name}(" in data["text/plain"], data["text/plain"][:300]
        assert TOOL_BLOCK_HTML in data["text/html"]
    store = reply_output(code_cell(notebook, "Compare the revenue of the three stores."))
    result = store["text/plain"].split("→", 1)[1]
    assert "| revenue |" in " ".join(result.split())  # the real table went back to the model
    assert "'latte'" in text_of(code_cell(notebook, "idxmax()"))
    audit = text_of(code_cell(notebook, 'print("asked:"'))
    assert audit.count("asked:") == 4 and audit.count("got:") == 4
    chart = code_cell(notebook, "plot.barh")
    assert any("image/png" in o.get("data", {}) for o in chart.outputs), "no chart"
    dry_run = text_of(code_cell(notebook, "--with sales --dry-run"))
    assert dry_run.startswith("Dry run: nothing was sent.")
    assert "Attachment `sales` (pandas DataFrame, 1,092 rows × 6 columns)" in dry_run
    assert "- store (str): no nulls, 3 distinct" in dry_run
    attached = reply_output(code_cell(notebook, "--with by_product"))
    assert attached["text/plain"].startswith("📎 Attached: by_product (pandas Series 'revenue'")
    assert 'class="tf-magics-attachments' in attached["text/html"]
    assert "latte" in attached["text/html"]  # the values sent, shown collapsed


def check_data_at_scale(notebook: Notebook) -> None:
    assert "200 reviews" in text_of(code_cell(notebook, "random.seed(2024)"))
    one = reply_output(code_cell(notebook, "--schema Review -o first"))
    assert '<table class="tf-magics-value' in one["text/html"]
    assert "Review(sentiment=" in one["text/plain"]
    # The local server refuses json_schema once; the fallback is said under the reply. A replay
    # answers the request as the notebook made it, asking no server: nothing to fall back from.
    replayed = "↺ replayed" in one["text/plain"]
    assert ("does not accept response_format json_schema" in one["text/plain"]) is not replayed
    assert "Review(sentiment=" in text_of(code_cell(notebook, "first"))
    sample = printed_lines(code_cell(notebook, "sample = reviews.sample"))
    assert len(sample) == 2 and all(re.search(r"\d+% right on the sample", s) for s in sample)
    mapped = code_cell(notebook, "%%chat --map reviews")
    (summary,) = [o for o in mapped.outputs if o.output_type == "display_data"]
    assert set(summary.data) == {"text/plain", "text/html"}  # the bar, turned into the summary
    line = summary.data["text/plain"].splitlines()[0]
    assert line.startswith("✓ 200 rows in ") and "200 done" in line and "distinct prompts" in line
    accuracy = text_of(code_cell(notebook, "pd.crosstab("))
    match = re.search(r"accuracy: (\d+\.\d)% on 200 reviews \(0 rows failed\)", accuracy)
    assert match is not None, accuracy
    cost = text_of(code_cell(notebook, "price_in, price_out"))
    assert "200 rows: $" in cost and "100,000 such rows" in cost
    listed = text_of(code_cell(notebook, '"I adore this lamp."'))
    assert listed.count("Review(sentiment=") == 2


CHECKS: dict[str, Callable[[Notebook], None]] = {
    "01-quick-start.ipynb": check_quick_start,
    "02-tools.ipynb": check_tools,
    "03-teaching-the-api.ipynb": check_teaching,
    "04-exploratory-analysis.ipynb": check_analysis,
    "05-data-at-scale.ipynb": check_data_at_scale,
}


# -- the recordings ------------------------------------------------------------------------------


def answers(cell: Any) -> list[str]:
    """What a ``%%chat`` cell's reply says: its rendered answers and its tool blocks.

    Not the footer or the notes: they say how long the reply took, and that it was replayed.
    """
    data = reply_output(cell)
    html = data["text/html"]
    block = r'(?=<div class="tf-magics-|<details class="tf-magics-|</div>\Z)'
    texts = re.findall(r'<div class="tf-magics-content">(.*?)</div>' + block, html, re.S)
    # "[tool] ✓ name(arguments) — done in 0.01 s" then "→ result": all but the time.
    tools = re.findall(r"^\[tool\] (.*?)(?: in [\d.]+ s)?\n\s+→ (.*)$", data["text/plain"], re.M)
    return texts + [" → ".join(found) for found in tools]


def check_recording(path: Path, notebook: Notebook, text: str) -> None:
    """The recording is readable, holds nothing private, and matches the notebook's replies."""
    file = RecordingFile(recording_of(path))
    entries = file.entries
    assert entries, f"{recording_of(path).name} is missing or empty"
    assert file.problems == [], file.problems
    found = MACHINE_PATH.search(text)
    assert found is None, (
        f"the recording shows a path: {text[found.start() - 60 : found.end() + 60]}"
    )
    assert "authorization" not in text.lower() and "api_key" not in text.lower()
    assert {entry.server for entry in entries} == {"local"}
    recorded = [entry.completion.content for entry in entries]
    for cell in chat_cells(notebook):
        plain = reply_output(cell)["text/plain"]
        assert any(r and _shows(plain, r) for r in recorded), (
            f"not in the recording: {plain[:200]!r}"
        )


def _shows(plain: str, content: str) -> bool:
    """Whether a cell's text shows a recorded reply: as text, or a structured reply's values."""
    if content in plain:
        return True
    try:
        value = json.loads(content)
    except ValueError:
        return False
    # A structured reply is shown as the object it became: ``Review(sentiment='positive')``.
    return isinstance(value, dict) and all(
        f"{key}={item!r}" in plain for key, item in value.items()
    )


# -- tests ---------------------------------------------------------------------------------------


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def test_the_five_lessons_are_there() -> None:
    assert {p.name for p in NOTEBOOK_PATHS} >= EXPECTED
    assert set(CHECKS) >= {p.name for p in NOTEBOOK_PATHS}, "add checks for the new notebook"


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=_ids(NOTEBOOK_PATHS))
def test_committed_notebook_carries_the_outputs_of_a_clean_run(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    check_ran_cleanly(notebook)
    check_no_machine_paths(notebook)
    check_chat_replies(notebook)
    CHECKS[path.name](notebook)


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=_ids(NOTEBOOK_PATHS))
def test_committed_notebook_ships_with_its_recording(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    check_recording(path, notebook, recording_of(path).read_text(encoding="utf-8"))


@pytest.fixture
def local_model() -> None:
    require_local_extra()


@pytest.mark.model
@pytest.mark.kernel
@pytest.mark.timeout(CELL_TIMEOUT * 3)
@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=_ids(NOTEBOOK_PATHS))
def test_notebook_runs_headless_against_the_local_model(path: Path, local_model: None) -> None:
    for name in ENDPOINT_VARIABLES[:5]:
        assert name not in os.environ  # conftest cleared them; the kernel inherits that
    notebook, _ = execute_notebook(path, mode="off")
    check_ran_cleanly(notebook)
    check_no_machine_paths(notebook)
    check_chat_replies(notebook)
    CHECKS[path.name](notebook)


@pytest.mark.kernel
@pytest.mark.timeout(CELL_TIMEOUT * 3)
@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=_ids(NOTEBOOK_PATHS))
def test_notebook_replays_its_recording_with_no_model_server(path: Path, tmp_path: Path) -> None:
    committed = nbformat.read(path, as_version=4)
    nowhere = str(tmp_path / "no-model-here.gguf")  # starting the local model would fail
    notebook, text = execute_notebook(
        path, mode="replay", cells=(SERVER_CHECK,), env={"TF_MAGICS_LOCAL_MODEL": nowhere}
    )
    assert text == recording_of(path).read_text(encoding="utf-8")  # replay writes nothing
    assert text_of(notebook.cells[-1]).strip() == "local model server started: False"
    notebook.cells.pop()
    check_ran_cleanly(notebook)
    check_no_machine_paths(notebook)
    check_chat_replies(notebook)
    CHECKS[path.name](notebook)
    for before, after in zip(chat_cells(committed), chat_cells(notebook), strict=True):
        assert answers(after) == answers(before) and answers(after), after.source[:60]
        assert "↺ replayed, recorded " in reply_output(after)["text/plain"]


# -- recording the notebooks again ---------------------------------------------------------------


def _refresh(paths: list[Path]) -> Iterator[str]:
    """Run each notebook in record mode, check it as the tests do, save it and its recording."""
    for path in paths:
        began = time.monotonic()
        notebook, text = execute_notebook(path, mode="record")
        check_ran_cleanly(notebook)
        check_no_machine_paths(notebook)
        check_chat_replies(notebook)
        CHECKS[path.name](notebook)
        recording_of(path).write_text(text, encoding="utf-8")
        check_recording(path, notebook, text)
        nbformat.write(notebook, path)
        yield f"{path.name}: {time.monotonic() - began:.1f} s, {len(text.splitlines())} replies"


def main(argv: list[str]) -> int:
    """Record again the notebooks whose names contain any of ``argv`` (all by default)."""
    for name in ENDPOINT_VARIABLES:
        os.environ.pop(name, None)
    paths = [p for p in NOTEBOOK_PATHS if not argv or any(a in p.name for a in argv)]
    if not paths:
        print(f"no notebook matches {argv}", file=sys.stderr)
        return 2
    for line in _refresh(paths):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
