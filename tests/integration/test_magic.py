from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tf_magics.notebook.session import NotebookSession, session_for
from tf_testing.fake_openai import ErrorReply, FakeOpenAI, TextReply


def run(ip: Any, source: str) -> Any:
    return ip.run_cell(source, store_history=False)


def _last_line_of(code: str, env: dict[str, str]) -> str:
    """Run ``code`` in a fresh Python and return the last line it printed."""
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=env,
    ).stdout
    return out.strip().splitlines()[-1]


def session(ip: Any) -> NotebookSession:
    found = session_for(ip)
    assert found is not None
    return found


def test_chat_cell_sends_text_verbatim_and_flags_reach_the_request(
    ip: Any, fake_server: FakeOpenAI
) -> None:
    source = (
        "%%chat -m custom -t 0 --top-p 0.5 --max-tokens 64 --seed 3 --stop END --stop STOP "
        "--presence-penalty 0.1 --frequency-penalty -0.2\n"
        'Parse {"json": [1, 2]} and def f(): return {x}'
    )
    assert run(ip, source).success
    sent = fake_server.chat_requests[-1]
    assert sent["messages"] == [
        {"role": "user", "content": 'Parse {"json": [1, 2]} and def f(): return {x}'}
    ]
    expected = {
        "model": "custom",
        "temperature": 0,
        "top_p": 0.5,
        "max_tokens": 64,
        "seed": 3,
        "stop": ["END", "STOP"],
        "presence_penalty": 0.1,
        "frequency_penalty": -0.2,
    }
    assert {k: sent[k] for k in expected} == expected


def test_cell_flags_apply_to_that_cell_only(ip: Any, fake_server: FakeOpenAI) -> None:
    run(ip, "%config ChatSettings.temperature = 0.7")
    run(ip, "%%chat -t 0.1\nfirst")
    run(ip, "%%chat\nsecond")
    temperatures = [r["temperature"] for r in fake_server.chat_requests]
    assert temperatures == [0.1, 0.7]
    assert session(ip).settings.temperature == 0.7


def test_multi_turn_history_and_system_prompt(ip: Any, fake_server: FakeOpenAI) -> None:
    fake_server.enqueue(TextReply("Paris."), TextReply("2 million."))
    run(ip, '%%chat -s "You are terse."\nCapital of France?')
    run(ip, "%%chat\nIts population?")
    assert fake_server.chat_requests[-1]["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "Its population?"},
    ]


def test_named_conversations_new_and_no_history(ip: Any, fake_server: FakeOpenAI) -> None:
    run(ip, "%%chat\nin default")
    run(ip, "%%chat -c review\nin review")
    assert [m["content"] for m in fake_server.chat_requests[-1]["messages"]] == ["in review"]
    run(ip, "%%chat --no-history\none-off")
    assert [m["content"] for m in fake_server.chat_requests[-1]["messages"]] == ["one-off"]
    run(ip, "%%chat\nback in default")
    sent = [m["content"] for m in fake_server.chat_requests[-1]["messages"]]
    assert sent == ["in default", "Hello from fake-model.", "back in default"]
    run(ip, "%%chat --new\nafresh")
    assert [m["content"] for m in fake_server.chat_requests[-1]["messages"]] == ["afresh"]


def test_output_variable_and_python_objects(ip: Any, fake_server: FakeOpenAI) -> None:
    fake_server.enqueue(TextReply("42"))
    run(ip, "%%chat -o answer\nThe answer?")
    assert ip.user_ns["answer"] == "42"
    run(ip, "import tf_magics; chat = tf_magics.get_chat(); last = chat.last_reply")
    assert ip.user_ns["last"].text == "42"
    assert ip.user_ns["chat"].conversation.messages[-1].content == "42"


def test_no_stream_flag(ip: Any, fake_server: FakeOpenAI) -> None:
    run(ip, "%%chat --no-stream\nhi")
    assert fake_server.chat_requests[-1]["stream"] is False


def test_base_url_flag_switches_server_for_one_cell(ip: Any, fake_server: FakeOpenAI) -> None:
    with FakeOpenAI() as other:
        other.enqueue(TextReply("from the other server"))
        run(ip, f"%%chat --base-url {other.base_url} -o r\nhi")
        assert ip.user_ns["r"] == "from the other server"
    run(ip, "%%chat\nagain")
    assert len(fake_server.chat_requests) == 1


def test_interpolation_is_opt_in_and_single_pass(ip: Any, fake_server: FakeOpenAI) -> None:
    ip.user_ns.update(topic="cats", evil="{topic}", obj=type("O", (), {"name": "Rex"})())
    run(ip, "%%chat -i\nAbout {topic} named {obj.name}, literal {{braces}}, {evil}")
    assert fake_server.chat_requests[-1]["messages"][-1]["content"] == (
        "About cats named Rex, literal {braces}, {topic}"
    )
    result = run(ip, "%%chat -i\n{missing}")
    assert not result.success
    assert "missing" in str(result.error_in_exec)


def test_bad_flag_value_fails_the_cell_with_one_line(ip: Any, fake_server: FakeOpenAI) -> None:
    result = run(ip, "%%chat -t 3\nhi")
    assert not result.success
    assert str(result.error_in_exec) == "temperature must be between 0 and 2, got 3.0."
    assert fake_server.chat_requests == []
    assert session(ip).chat().conversation.messages == []


def test_server_error_fails_the_cell_and_keeps_the_history_clean(
    ip: Any, fake_server: FakeOpenAI
) -> None:
    fake_server.enqueue(ErrorReply(401, {"error": {"message": "Invalid API key"}}))
    result = run(ip, "%%chat\nhi")
    assert not result.success
    message = str(result.error_in_exec)
    assert "401" in message and "TOKEN_FACTORY_API_KEY" in message and "\n" not in message
    lines = result.error_in_exec._render_traceback_()
    assert len(lines) == 1
    assert session(ip).chat().conversation.messages == []


def test_connection_error_names_the_base_url(ip: Any) -> None:
    run(ip, "%config ChatSettings.base_url = 'http://127.0.0.1:9/v1'")
    run(ip, "%config ChatSettings.max_retries = 0")
    result = run(ip, "%%chat\nhi")
    assert "http://127.0.0.1:9/v1" in str(result.error_in_exec)


def test_empty_cell_is_a_usage_error(ip: Any) -> None:
    result = run(ip, "%%chat\n   \n")
    assert "empty" in str(result.error_in_exec)


def test_line_commands(ip: Any, fake_server: FakeOpenAI, tmp_path: Path, capsys: Any) -> None:
    fake_server.enqueue(TextReply("A1"), TextReply("A2"), TextReply("A2 again"))
    run(ip, "%%chat\nQ1")
    run(ip, "%%chat\nQ2")
    chat = session(ip).chat()
    run(ip, "%chat system Be nice.")
    assert chat.system == "Be nice."
    run(ip, "%chat retry -t 0.5")
    assert chat.conversation.messages[-1].content == "A2 again"
    assert fake_server.chat_requests[-1]["temperature"] == 0.5
    run(ip, "%chat undo")
    assert [m.content for m in chat.conversation.messages] == ["Be nice.", "Q1", "A1"]
    path = tmp_path / "conv.json"
    run(ip, f"%chat save {path}")
    assert json.loads(path.read_text())["messages"][1]["content"] == "Q1"
    run(ip, "%chat reset")
    assert [m.role for m in chat.conversation.messages] == ["system"]
    run(ip, f"%chat load {path}")
    assert [m.content for m in session(ip).chat().conversation.messages][1:] == [
        "Q1",
        "A1",
    ]
    md = tmp_path / "conv.md"
    run(ip, f"%chat export {md}")
    assert "## User" in md.read_text()
    run(ip, "%chat set temperature=0.3 max_tokens=50")
    assert session(ip).settings.temperature == 0.3 and session(ip).settings.max_tokens == 50
    run(ip, "%chat unset temperature")
    assert session(ip).settings.temperature is None
    for command in ("help", "history", "settings", "usage", "conversations", "models"):
        assert run(ip, f"%chat {command}").success, command
    assert not run(ip, "%chat nonsense").success
    assert not run(ip, "%chat set temperature=9").success


def test_settings_command_never_shows_the_key(ip: Any, capsys: Any) -> None:
    session(ip).settings.api_key = "sk-super-secret-value"
    run(ip, "%chat settings")
    run(ip, "%config ChatSettings")
    out = capsys.readouterr().out
    assert "sk-super-secret-value" not in out
    assert "set in Python" in out


def test_history_renders_and_is_sanitized(ip: Any, fake_server: FakeOpenAI) -> None:
    from tf_magics.notebook.history_view import history_view

    fake_server.enqueue(TextReply("<script>alert(1)</script> **bold**"))
    run(ip, "%%chat\nhi")
    html, text = history_view(session(ip).chat().conversation)
    assert "<script" not in html and "<strong>bold</strong>" in html
    assert "Turn 1" in html and "in →" in text


def test_reload_and_unload(ip: Any, fake_server: FakeOpenAI) -> None:
    assert run(ip, "%reload_ext tf_magics").success
    assert run(ip, "%%chat\nafter reload").success
    run(ip, "%unload_ext tf_magics")
    assert "chat" not in ip.magics_manager.magics["cell"]
    run(ip, "%load_ext tf_magics")
    run(ip, f"%config ChatSettings.base_url = {fake_server.base_url!r}")


def test_import_and_load_ext_do_not_import_heavy_modules() -> None:
    code = (
        "import sys, time\n"
        "from IPython.testing.globalipapp import start_ipython\n"
        "ip = start_ipython()\n"
        "before = set(sys.modules)\n"
        "ip.run_line_magic('load_ext', 'tf_magics')\n"
        "new = set(sys.modules) - before\n"
        "heavy = sorted(m for m in new if m.split('.')[0] in "
        "{'httpx', 'httpcore', 'pyromark', 'nh3', 'pygments', 'ipywidgets', 'docstring_parser'}"
        # The stand-in that keeps httpx's CLI out when httpx comes (tf_magics.client.httpx_cli).
        " and type(sys.modules[m]).__name__ != '_DeferredCli')\n"
        "print(heavy)\n"
    )
    # Without the background warm-up, which imports them on purpose after loading.
    env = {**os.environ, "TF_MAGICS_NO_PREWARM": "1"}
    assert _last_line_of(code, env) == "[]"


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_flags_do_not_exit(ip: Any, flag: str) -> None:
    result = run(ip, f"%%chat {flag}\nx")
    assert not result.success  # a usage error, not a SystemExit that kills the shell


def test_tools_flag_and_tools_commands(ip: Any, fake_server: FakeOpenAI, capsys: Any) -> None:
    from tf_testing.fake_openai import ToolCallReply

    ip.run_cell(
        "def lookup(term: str) -> str:\n"
        '    """Look a term up."""\n'
        "    return term[::-1]\n"
        "not_callable = 3\n"
    )
    fake_server.enqueue(ToolCallReply([("lookup", '{"term": "abc"}')]), TextReply("cba it is"))
    assert run(ip, "%%chat --tools lookup\nlook up abc").success
    assert fake_server.chat_requests[0]["tools"][0]["function"]["name"] == "lookup"
    assert fake_server.chat_requests[1]["messages"][-1]["content"] == "cba"
    assert not run(ip, "%%chat --tools not_callable\nx").success
    run(ip, "%chat tools add lookup")
    run(ip, "%chat tools off lookup")
    run(ip, "%%chat\nno tools now")
    assert "tools" not in fake_server.chat_requests[-1]
    run(ip, "%chat tools on lookup")
    run(ip, "%chat tools")
    assert "[on ] lookup" in capsys.readouterr().out
    run(ip, "%chat tools remove lookup")
    run(ip, "%%chat\nstill no tools")
    assert "tools" not in fake_server.chat_requests[-1]
    html = session(ip).chat().conversation
    from tf_magics.notebook.history_view import history_view

    rendered, _ = history_view(html)
    assert "lookup" in rendered and "cba" in rendered


def test_loading_warms_up_the_first_chat_in_the_background() -> None:
    code = (
        "import sys, time\n"
        "from IPython.testing.globalipapp import start_ipython\n"
        "ip = start_ipython()\n"
        "ip.run_line_magic('load_ext', 'tf_magics')\n"
        "deadline = time.monotonic() + 30\n"
        "while 'nh3' not in sys.modules and time.monotonic() < deadline:\n"
        "    time.sleep(0.05)\n"
        "print(all(m in sys.modules for m in ('httpx', 'pyromark', 'nh3', 'tf_magics.chat')))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_MAGICS_NO_PREWARM"}
    assert _last_line_of(code, env) == "True"


# -- reloading the extension keeps the conversations and settings (issue 15) ---------------------


def test_reload_ext_keeps_conversations_and_settings(ip: Any, fake_server: FakeOpenAI) -> None:
    from tf_magics.notebook.session import session_for

    ip.run_cell("%%chat -c notes\nremember 42")
    ip.run_line_magic("chat", "set temperature=0.3")
    ip.run_line_magic("reload_ext", "tf_magics")
    session = session_for(ip)
    assert session is not None and session.loaded
    assert session.settings.temperature == 0.3
    assert [m.content for m in session.chat("notes").conversation.messages][:1] == ["remember 42"]
    ip.run_line_magic("unload_ext", "tf_magics")
    ip.run_line_magic("load_ext", "tf_magics")
    assert session_for(ip) is session and session.settings.temperature == 0.3
    assert "notes" in session.chats
