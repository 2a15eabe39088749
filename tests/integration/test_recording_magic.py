"""Record/replay and saved conversations through the magic, in IPython's test shell.

``%chat cache`` and its actions, a replay that fails naming the cell and the difference, the
conversations written beside the notebook after each cell, the notice a fresh session shows, and
``%chat restore``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tf_magics.cache import store
from tf_magics.errors import CacheMissError
from tf_magics.notebook.session import NotebookSession, discard_session, session_for
from tf_testing.fake_openai import FakeOpenAI, TextReply

KEY = "sk-test-c0ffee-0123456789abcdef"


def run(ip: Any, source: str) -> Any:
    return ip.run_cell(source, store_history=False)


def session(ip: Any) -> NotebookSession:
    found = session_for(ip)
    assert found is not None
    return found


@pytest.fixture
def notebook(ip: Any, tmp_path: Path) -> Iterator[Path]:
    """The shell believes it runs ``tmp_path/lesson.ipynb`` (as JupyterLab tells ipykernel)."""
    path = tmp_path / "lesson.ipynb"
    ip.user_ns["__session__"] = str(path)
    yield path
    ip.user_ns.pop("__session__", None)


def _restart(ip: Any, fake_server: FakeOpenAI) -> None:
    """What a kernel restart leaves: the files, and a fresh session with empty conversations."""
    run(ip, "%unload_ext tf_magics")
    discard_session(ip)
    # A restart is a new process: nothing counted or used by the old one is known.
    store._FILES.clear()
    ip.config.pop("ChatSettings", None)
    run(ip, "%load_ext tf_magics")
    run(ip, f"%config ChatSettings.base_url = {fake_server.base_url!r}")


def test_cache_shows_where_the_recording_is_and_what_it_holds(
    ip: Any, fake_server: FakeOpenAI, notebook: Path, capsys: Any
) -> None:
    run(ip, "%chat cache")
    out = capsys.readouterr().out
    assert "mode     off (from ChatSettings.cache;" in out
    assert f"file     {notebook.with_name('lesson.tf_magics.jsonl')} (beside the notebook" in out
    assert "none yet" in out
    run(ip, "%chat cache auto")
    assert capsys.readouterr().out.strip() == "cache = auto"
    fake_server.enqueue(TextReply("One."), TextReply("Two."))
    assert run(ip, "%%chat -m m1\nFirst?").success
    assert run(ip, "%%chat -m m2 --no-history\nSecond?").success
    run(ip, "%chat cache")
    out = capsys.readouterr().out
    assert "entries  2 recorded replies (m1: 1, m2: 1)" in out
    assert "used     2 by this kernel's requests" in out


def test_prune_keeps_what_this_kernel_used_and_clear_deletes(
    ip: Any, fake_server: FakeOpenAI, notebook: Path, capsys: Any
) -> None:
    path = notebook.with_name("lesson.tf_magics.jsonl")
    run(ip, "%chat set cache=record")
    run(ip, "%%chat --no-history\nStale question?")
    run(ip, "%%chat --no-history\nKept question?")
    _restart(ip, fake_server)
    refused = run(ip, "%chat cache prune").error_in_exec
    assert "no request of this kernel used the recording yet" in str(refused)
    run(ip, "%chat set cache=auto")
    run(ip, "%%chat --no-history\nKept question?")
    capsys.readouterr()
    run(ip, "%chat cache prune")
    assert "Kept the 1 recorded replies this kernel used; removed 1" in capsys.readouterr().out
    (line,) = path.read_text().splitlines()
    assert "Kept question?" in line
    run(ip, "%chat cache clear")
    assert "Removed 1 recorded replies" in capsys.readouterr().out
    assert not path.exists()
    assert len(fake_server.chat_requests) == 2  # the kept question was answered from the file


def test_a_replay_miss_fails_the_cell_naming_it_and_the_difference(
    ip: Any, fake_server: FakeOpenAI, notebook: Path
) -> None:
    run(ip, "%chat set cache=record")
    fake_server.enqueue(TextReply("Paris."))
    assert run(ip, "%%chat -t 0\nCapital of France?").success
    _restart(ip, fake_server)
    run(ip, "%chat set cache=replay")
    ip.execution_count = 12
    result = ip.run_cell("%%chat -t 0.7\nCapital of France?", store_history=True)
    error = result.error_in_exec
    assert isinstance(error, CacheMissError)
    assert str(error).startswith(
        "In [12]: Replay mode: the request for 'Capital of France?' is not in the recording "
        "lesson.tf_magics.jsonl; against the closest recorded request, temperature 0.7 vs 0."
    )
    assert error._render_traceback_()[0].endswith(str(error))  # one line, no traceback
    assert run(ip, "%%chat -t 0\nCapital of France?").success  # the cell as recorded
    assert len(fake_server.chat_requests) == 1


def test_setting_a_mode_says_when_the_environment_wins(
    ip: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("TF_MAGICS_CACHE", "replay")
    run(ip, "%chat cache auto")
    assert "TF_MAGICS_CACHE=replay is set in the environment and wins" in capsys.readouterr().out
    run(ip, "%chat settings")
    assert "cache              replay (from TF_MAGICS_CACHE)" in capsys.readouterr().out


def test_conversations_are_saved_beside_the_notebook_after_each_cell(
    ip: Any, fake_server: FakeOpenAI, notebook: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    run(ip, "%chat set api_key_env=OPENAI_API_KEY")  # the key goes to the fake server
    saved = notebook.with_name("lesson.tf_magics.conversations.json")
    fake_server.enqueue(TextReply("Arr, wet."), TextReply("Paris."))
    run(ip, '%%chat -c pirate -s "You are a pirate."\nWhat is the ocean like?')
    first = saved.read_text(encoding="utf-8")
    run(ip, "%%chat\nCapital of France?")
    data = json.loads(saved.read_text(encoding="utf-8"))
    assert data["format"] == "tf_magics.conversations" and saved.read_text() != first
    by_name = {c["name"]: c for c in data["conversations"]}
    assert by_name["pirate"]["messages"][0] == {
        **by_name["pirate"]["messages"][0],
        "role": "system",
        "content": "You are a pirate.",
    }
    assert [m["content"] for m in by_name["default"]["messages"]] == [
        "Capital of France?",
        "Paris.",
    ]
    assert fake_server.requests[-1].headers["authorization"] == f"Bearer {KEY}"
    # A Python cell that talks through the notebook's chats is saved too.
    run(ip, "import tf_magics\ntf_magics.get_chat('python').ask('From Python?')")
    names = [c["name"] for c in json.loads(saved.read_text(encoding="utf-8"))["conversations"]]
    assert names == ["pirate", "default", "python"]
    text = saved.read_text(encoding="utf-8")
    assert KEY not in text and "api_key" not in text and fake_server.base_url not in text
    assert not list(notebook.parent.glob(".*.tmp"))  # written through a renamed temporary file


def test_autosave_is_a_setting_and_needs_to_know_the_notebook(
    ip: Any, fake_server: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run(ip, "%%chat\nWhere am I?")  # no notebook path: a headless run writes nothing
    assert list(tmp_path.iterdir()) == []
    ip.user_ns["__session__"] = str(tmp_path / "lesson.ipynb")
    run(ip, "%chat set autosave=false")
    run(ip, "%%chat\nAnd now?")
    assert list(tmp_path.iterdir()) == []
    run(ip, "%chat set autosave=true")
    run(ip, "%chat undo")
    assert (tmp_path / "lesson.tf_magics.conversations.json").exists()
    ip.user_ns.pop("__session__")


def test_after_a_restart_the_first_chat_offers_and_restore_brings_back(
    ip: Any, fake_server: FakeOpenAI, notebook: Path, capsys: Any
) -> None:
    fake_server.enqueue(TextReply("Marie Curie."), TextReply("Arr."))
    run(ip, '%%chat -s "Answer in three words."\nName a famous scientist.')
    run(ip, '%%chat -c pirate -s "You are a pirate."\nHello?')
    _restart(ip, fake_server)
    capsys.readouterr()
    fake_server.enqueue(TextReply("A new start."))
    run(ip, "%%chat --no-history\nSomething else first.")
    out = capsys.readouterr().out
    assert (
        "Conversations from an earlier session are saved beside this notebook (default (1 turn, "
        "with a system prompt), pirate (1 turn, with a system prompt), saved "
    ) in out
    assert "%chat restore brings them back." in out
    run(ip, "%chat restore")
    out = capsys.readouterr().out
    assert out.startswith("Restored 2 conversations: default (1 turn, with a system prompt)")
    default = session(ip).chat("default")
    assert default.system == "Answer in three words."
    assert [m["content"] for m in default.history[1:]] == [
        "Name a famous scientist.",
        "Marie Curie.",
    ]
    assert session(ip).chat("pirate").system == "You are a pirate."
    fake_server.enqueue(TextReply("Radioactivity."))
    run(ip, "%%chat\nWhat is she known for?")
    assert [m["role"] for m in fake_server.chat_requests[-1]["messages"]] == [
        "system",
        "user",
        "assistant",
        "user",
    ]
    _restart(ip, fake_server)
    run(ip, "%%chat --no-history\nOnce more.")
    assert "Conversations from an earlier session" in capsys.readouterr().out  # 2 turns now


def test_restore_is_all_or_nothing(
    ip: Any, fake_server: FakeOpenAI, notebook: Path, capsys: Any
) -> None:
    saved = notebook.with_name("lesson.tf_magics.conversations.json")
    saved.write_text(
        json.dumps(
            {
                "format": "tf_magics.conversations",
                "version": 1,
                "conversations": [
                    {"name": "good", "messages": [{"role": "user", "content": "Hi"}]},
                    {"name": "bad", "messages": [{"role": "tool", "content": "x"}]},
                ],
            }
        )
    )
    result = run(ip, "%chat restore")
    assert "nothing was restored: conversations[1]: messages[0].tool_call_id" in str(
        result.error_in_exec
    )
    assert "good" not in session(ip).chats
    result = run(ip, f"%chat restore {notebook.parent / 'missing.json'}")
    assert "no saved conversations at" in str(result.error_in_exec)


def test_the_panel_has_the_recording_controls(ip: Any) -> None:
    from tf_magics.notebook.panel import ChatPanel

    panel = ChatPanel(session(ip), fetch_models=False)
    try:
        mode = panel.fields["cache"]
        assert list(mode.widget.options) == ["off", "auto", "record", "replay"]
        mode.widget.value = "replay"
        assert session(ip).settings.cache == "replay"
        session(ip).settings.replay_pace = "recorded"
        assert panel.fields["replay_pace"].widget.value == "recorded"
    finally:
        panel.close()


def test_vs_code_names_the_notebook_too(ip: Any, tmp_path: Path, capsys: Any) -> None:
    ip.user_ns["__session__"] = str(tmp_path / "stale-name.ipynb")  # renamed since the start
    ip.user_ns["__vsc_ipynb_file__"] = str(tmp_path / "analysis.ipynb")
    try:
        run(ip, "%chat cache")
    finally:
        ip.user_ns.pop("__session__")
        ip.user_ns.pop("__vsc_ipynb_file__")
    out = capsys.readouterr().out
    assert f"file     {tmp_path / 'analysis.tf_magics.jsonl'} (beside the notebook" in out
