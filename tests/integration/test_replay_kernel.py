"""Record a notebook against the scripted server, stop it, and replay the notebook in a new kernel.

This is the promise of record/replay, checked end to end with nbclient as a headless run does:

- the notebook runs in record mode against the scripted server, with a key in the environment
  (as an instructor's machine has), and the kernel believes it is ``lesson.ipynb`` (JupyterLab's
  ``JPY_SESSION_NAME``), so the recording lands beside it;
- the server is stopped and a plain socket listens on its port instead; the same notebook runs in
  a new kernel with ``TF_MAGICS_CACHE=replay``, no key, no base URL and a local model that cannot
  start: every reply's text is the recorded one, the tool ran again in the new kernel, and nothing
  connected to the port;
- a changed cell fails with one line that names the cell and the difference;
- the recording holds no key.

A second test restarts a kernel and brings its conversations back with ``%chat restore``.
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tests.paths import REPO_ROOT
from tf_testing.fake_openai import FakeOpenAI, TextReply, ToolCallReply
from tf_testing.kernels import kernel_session

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(240)]

KEY = "sk-instructor-5e1f0a7d9c3b2e4f6a8b"
_ENDPOINT = (
    "TOKEN_FACTORY_API_KEY",
    "TOKEN_FACTORY_BASE_URL",
    "TOKEN_FACTORY_MODEL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "TF_MAGICS_CACHE",
    "TF_MAGICS_CACHE_FILE",
    "TF_MAGICS_LOCAL_MODEL",
)

SETUP = '''\
%load_ext tf_magics
import tf_magics

ran = []


@tf_magics.tool
def get_temperature(city: str) -> float:
    """Current temperature in a city, in degrees Celsius."""
    ran.append(city)
    return {"Paris": 18.5}[city]'''
CELLS = [
    SETUP,
    '%%chat -s "You are terse." -t 0\nCapital of France?',
    "%%chat -t 0 --tool-choice get_temperature\nAnd the temperature there?",
    'names = [tf_magics.get_chat().ask("A name for a cat?", history=False, temperature=1.0).text\n'
    "         for _ in range(2)]\nprint(names)",
    "%%chat -c poet --max-tokens 30\nA haiku about rain.",
    "print(ran)",
]
REPLIES = [
    TextReply("## Paris\n\nThe capital of **France** is Paris.", tokens_per_second=200),
    ToolCallReply([("get_temperature", {"city": "Paris"})]),
    TextReply("It is 18.5 °C in Paris.", tokens_per_second=200),
    TextReply("Whiskers"),
    TextReply("Mittens"),
    TextReply("Grey sky whispers\nsoft drops on the window pane\nthe kettle sings on"),
]


def _environment(ipython_dir: str, notebook: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _ENDPOINT}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["IPYTHONDIR"] = ipython_dir
    env["JPY_SESSION_NAME"] = str(notebook)  # what JupyterLab and Notebook 7 set
    env.update(extra)
    return env


def _write(path: Path, cells: list[str]) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nbformat.write(notebook, path)


def _execute(path: Path, **env: str) -> Any:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    with tempfile.TemporaryDirectory(prefix="tf_magics-ipython-") as ipython_dir:
        client.execute(env=_environment(ipython_dir, path, **env))
    return notebook


def _reply(cell: Any) -> dict[str, str]:
    (shown,) = [o for o in cell.outputs if o.output_type == "display_data"]
    data: dict[str, str] = shown["data"]
    return data


def _content(cell: Any) -> list[str]:
    """The reply's rendered answers and tool blocks, without the footer (time, replayed...)."""
    html = _reply(cell)["text/html"]
    answers = re.findall(r'<div class="tf-magics-content">(.*?)</div>(?=<)', html, re.S)
    tools = re.findall(r"\[tool\] (.*?) in \d", _reply(cell)["text/plain"])
    return answers + tools


def _printed(cell: Any) -> str:
    return "".join(o.text for o in cell.outputs if o.output_type == "stream")


@pytest.fixture
def lesson(tmp_path: Path) -> Path:
    path = tmp_path / "lesson.ipynb"
    _write(path, CELLS)
    return path


@pytest.fixture
def port_watch() -> Iterator[tuple[FakeOpenAI, _Later]]:
    """The scripted server, and a socket that can take its port once it has stopped."""
    server = FakeOpenAI(api_key=KEY).start()
    watch = _Later(server.port)
    yield server, watch
    server.close()
    watch.close()


class _Later:
    """Binds the port when asked (after the server has let it go)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None

    def listen(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(8)
        self.sock.setblocking(False)

    def accepted(self) -> int:
        """How many connections were made to the port since :meth:`listen`."""
        assert self.sock is not None
        count = 0
        while True:
            try:
                connection, _ = self.sock.accept()
            except BlockingIOError:
                return count
            connection.close()
            count += 1

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()


def test_a_recorded_notebook_replays_in_a_new_kernel_with_no_server(
    lesson: Path, port_watch: Any
) -> None:
    server, watch = port_watch
    server.enqueue(*REPLIES)
    recorded = _execute(
        lesson,
        TF_MAGICS_CACHE="record",
        TOKEN_FACTORY_BASE_URL=server.base_url,
        TOKEN_FACTORY_API_KEY=KEY,
    )
    assert len(server.chat_requests) == 6 and server.pending == 0
    assert all(r.headers.get("authorization") == f"Bearer {KEY}" for r in server.requests)
    recording = lesson.with_name("lesson.tf_magics.jsonl")
    text = recording.read_text(encoding="utf-8")
    assert len(text.splitlines()) == 6
    assert KEY not in text and "authorization" not in text.lower()

    server.close()
    watch.listen()
    replayed = _execute(
        lesson,
        TF_MAGICS_CACHE="replay",
        TF_MAGICS_LOCAL_MODEL=str(lesson.with_name("no-such-model.gguf")),
    )
    assert watch.accepted() == 0  # nothing tried to reach the old server
    for position in (1, 2, 4):
        before, after = recorded.cells[position], replayed.cells[position]
        assert _content(after) == _content(before) and _content(after), position
        assert "↺ replayed, recorded " in _reply(after)["text/plain"]
        assert "↺" not in _reply(before)["text/plain"]
    assert "[tool] ✓ get_temperature(" in _reply(replayed.cells[2])["text/plain"]
    assert _printed(replayed.cells[3]) == _printed(recorded.cells[3]) == "['Whiskers', 'Mittens']\n"
    assert _printed(replayed.cells[5]) == "['Paris']\n"  # the tool ran again, in the new kernel
    assert recording.read_text(encoding="utf-8") == text  # replay writes nothing


def test_a_changed_cell_fails_in_replay_naming_the_cell_and_the_difference(
    lesson: Path, port_watch: Any
) -> None:
    server, _ = port_watch
    server.enqueue(*REPLIES)
    _execute(
        lesson,
        TF_MAGICS_CACHE="record",
        TOKEN_FACTORY_BASE_URL=server.base_url,
        TOKEN_FACTORY_API_KEY=KEY,
    )
    server.close()
    changed = list(CELLS)
    changed[2] = changed[2].replace("-t 0 ", "-t 0.7 ")
    _write(lesson, changed)
    with pytest.raises(CellExecutionError) as caught:
        _execute(lesson, TF_MAGICS_CACHE="replay")
    assert caught.value.ename == "CacheMissError"
    assert caught.value.evalue.startswith(
        "In [3]: Replay mode: the request for 'And the temperature there?' is not in the "
        "recording lesson.tf_magics.jsonl; against the closest recorded request, "
        "temperature 0.7 vs 0."
    )


def test_conversations_come_back_after_a_kernel_restart(tmp_path: Path) -> None:
    notebook = tmp_path / "lesson.ipynb"
    with FakeOpenAI() as server, tempfile.TemporaryDirectory() as ipython_dir:
        server.enqueue(TextReply("Marie Curie."), TextReply("Arr, wet it be."))
        env = _environment(ipython_dir, notebook, OPENAI_API_KEY=KEY)
        with kernel_session(env=env, cwd=str(tmp_path)) as kernel:
            setup = f"%load_ext tf_magics\n%config ChatSettings.base_url = {server.base_url!r}"
            assert kernel.run(setup).status == "ok"
            assert kernel.run('%%chat -s "Answer in three words."\nA scientist?').status == "ok"
            assert kernel.run('%%chat -c pirate -s "You are a pirate."\nThe sea?').status == "ok"
            saved = tmp_path / "lesson.tf_magics.conversations.json"
            assert KEY not in saved.read_text(encoding="utf-8")
            kernel.restart()
            assert kernel.run(setup).status == "ok"
            first = kernel.run("%%chat --no-history\nHello again.")
            (output,) = first.outputs()
            assert "%chat restore brings them back" in output["data"]["text/plain"]
            restored = kernel.run(
                "%chat restore\n"
                "import tf_magics\n"
                "print([m['content'] for m in tf_magics.get_chat().history])\n"
                "print(tf_magics.get_chat('pirate').system)"
            )
            assert restored.status == "ok", restored.error
            printed = "".join(m["content"]["text"] for m in restored.of_type("stream"))
            assert printed.startswith("Restored 2 conversations: default (1 turn, with a system")
            assert "['Answer in three words.', 'A scientist?', 'Marie Curie.']" in printed
            assert printed.rstrip().endswith("You are a pirate.")
