"""``--with``, ``--dry-run``, ``--code``, ``--compare``, ``%chat explain`` and ``%chat keep`` in a
real IPython shell, against the scripted server."""

from __future__ import annotations

from typing import Any

import pytest
from IPython.core.error import UsageError

from tf_magics.notebook.flags import CellRequest
from tf_magics.notebook.session import NotebookSession, session_for
from tf_testing.fake_openai import Dynamic, FakeOpenAI, RecordedRequest, TextReply


def run(ip: Any, source: str) -> Any:
    return ip.run_cell(source, store_history=True)


def session(ip: Any) -> NotebookSession:
    found = session_for(ip)
    assert found is not None
    return found


def last_user(server: FakeOpenAI) -> Any:
    return server.chat_requests[-1]["messages"][-1]["content"]


def test_with_attaches_notebook_values_by_name(ip: Any, fake_server: FakeOpenAI) -> None:
    run(ip, "import pandas as pd\nsales = pd.DataFrame({'store': ['a', 'b'], 'units': [3, 4]})")
    run(ip, "class Model:\n    coef_ = [0.5, 1.5]\nmodel = Model()")
    assert run(ip, "%%chat --with sales,model.coef_\nSummarise.").success
    sent = last_user(fake_server)
    assert sent.startswith("Attachment `sales` (pandas DataFrame, 2 rows × 2 columns):")
    assert "Attachment `model.coef_` (list, 2 items):\n[0.5, 1.5]" in sent
    assert sent.endswith("\n\nSummarise.")
    kept = session(ip).chat().conversation.messages[0]
    assert [p["text"].split("\n", 1)[0] for p in kept.parts][1].startswith("Attachment `model")


def test_with_an_unknown_name_fails_before_anything_is_sent(
    ip: Any, fake_server: FakeOpenAI
) -> None:
    run(ip, "sales = 1")
    result = run(ip, "%%chat --with slaes\nhi")
    assert isinstance(result.error_in_exec, UsageError)
    assert "no variable named 'slaes'" in str(result.error_in_exec)
    assert "Did you mean 'sales'?" in str(result.error_in_exec)
    assert isinstance(run(ip, "%%chat --with sales._x\nhi").error_in_exec, UsageError)
    assert isinstance(run(ip, "%%chat --with sales:code\nhi").error_in_exec, UsageError)
    assert fake_server.requests == []


def test_with_source_sends_a_cell_defined_function_s_code(ip: Any, fake_server: FakeOpenAI) -> None:
    run(
        ip,
        "def slow(n):\n    total = 0\n    for i in range(n):\n        total += i\n    return total",
    )
    assert run(ip, "%%chat --with slow:source\nWhy is it slow?").success
    assert "for i in range(n):" in last_user(fake_server)


def test_explain_sends_the_exception_and_the_cell_that_raised_it(
    ip: Any, fake_server: FakeOpenAI
) -> None:
    run(ip, "def ratio(a, b):\n    return a / b")
    failed = run(ip, "values = [1, 2]\nratio(sum(values), len(values) - 2)")
    assert isinstance(failed.error_in_exec, ZeroDivisionError)
    fake_server.enqueue(
        TextReply("`len(values) - 2` is 0. Check for it:\n\n```python\nif b: ...\n```")
    )
    assert run(ip, "%chat explain").success
    sent = last_user(fake_server)
    assert "Attachment `error` (ZeroDivisionError raised in cell In [" in sent
    assert "ZeroDivisionError: division by zero" in sent
    assert "in ratio" in sent and "return a / b" in sent
    assert "→2 | ratio(sum(values), len(values) - 2)" in sent
    assert "Explain briefly what went wrong, then show how to fix it." in sent
    # A mistyped magic in between does not replace the error to explain.
    assert isinstance(run(ip, "%chat explian").error_in_exec, UsageError)
    assert run(ip, "%chat explain").success
    assert "ZeroDivisionError: division by zero" in last_user(fake_server)
    assert run(ip, "%%chat --with error --no-history\nAnd in one word?").success
    assert "ZeroDivisionError: division by zero" in last_user(fake_server)


def test_explain_a_cell_that_does_not_compile(ip: Any, fake_server: FakeOpenAI) -> None:
    run(ip, "x = 1\nif x\n    print(x)")
    assert run(ip, "%chat explain").success
    sent = last_user(fake_server)
    assert "Attachment `error` (SyntaxError raised in cell In [" in sent
    assert "SyntaxError: expected ':'" in sent and "→2 | if x" in sent
    assert "Traceback" not in sent  # IPython's own frames say nothing useful here


def test_explain_without_an_error_says_so(
    ip: Any, fake_server: FakeOpenAI, monkeypatch: Any
) -> None:
    import sys

    monkeypatch.delattr(sys, "last_value", raising=False)
    session(ip).last_error = None
    result = run(ip, "%chat explain")
    assert isinstance(result.error_in_exec, UsageError) and "no cell has raised" in str(
        result.error_in_exec
    )
    assert isinstance(run(ip, "%%chat --with error\nhi").error_in_exec, UsageError)
    assert fake_server.requests == []


def test_a_dry_run_sends_nothing_and_leaves_the_history_alone(
    ip: Any, fake_server: FakeOpenAI, capsys: Any
) -> None:
    run(ip, "%%chat\nfirst")
    chat = session(ip).chat()
    before = chat.conversation.to_dict()
    sent = len(fake_server.requests)
    run(ip, "data = {'a': 1}")
    assert run(
        ip, "%%chat --dry-run --with data -t 0.3 --new -s 'New prompt' -o shown\nsecond"
    ).success
    assert len(fake_server.requests) == sent
    assert chat.conversation.to_dict() == before
    preview = ip.user_ns["shown"]
    assert [m["role"] for m in preview.messages] == ["system", "user"]  # --new and -s, previewed
    assert preview.body["temperature"] == 0.3
    assert "Dry run: nothing was sent." in capsys.readouterr().out


def test_code_puts_the_reply_s_code_into_the_next_input(ip: Any, fake_server: FakeOpenAI) -> None:
    reply = "Do:\n\n```python\nx = 1\n```\n\nor in a shell:\n\n```bash\npip install y\n```\n"
    fake_server.enqueue(TextReply(reply), TextReply(reply), TextReply("No code."))
    ip.rl_next_input = None
    assert run(ip, "%%chat --code\nShow me").success
    assert ip.rl_next_input == "x = 1"
    assert run(ip, "%%chat --code 2\nShow me").success
    assert ip.rl_next_input == "pip install y"
    ip.rl_next_input = None
    assert run(ip, "%%chat --code\nNothing").success
    assert ip.rl_next_input is None


def test_a_comma_list_or_compare_runs_variants_and_keep_takes_one(
    ip: Any, fake_server: FakeOpenAI, capsys: Any
) -> None:
    def answer(request: RecordedRequest) -> TextReply:
        return TextReply(f"{request.json['model']} at {request.json.get('temperature')}")

    fake_server.default = Dynamic(answer)
    assert run(ip, "%%chat -m m1 -t 0,1.4\nHi").success
    assert sorted(r["temperature"] for r in fake_server.chat_requests) == [0, 1.4]
    assert session(ip).chat().history == []
    out = capsys.readouterr().out
    assert "── 1 · t=0 ──" in out and "── 2 · t=1.4 ──" in out
    assert run(ip, "%chat keep 2").success
    assert [m["content"] for m in session(ip).chat().history] == ["Hi", "m1 at 1.4"]
    assert run(ip, "%%chat --compare a,b,c\nWho?").success
    assert sorted(r["model"] for r in fake_server.chat_requests[-3:]) == ["a", "b", "c"]
    assert isinstance(run(ip, "%chat keep 7").error_in_exec, UsageError)


def test_bad_comparisons_are_refused_in_one_line(ip: Any, fake_server: FakeOpenAI) -> None:
    for line in (
        "%%chat --compare a,b,c -t 0,1,2\nx",  # 9 variants
        "%%chat --compare a,b --code\nx",
        "%%chat -t 0,x\nx",
        "%%chat --compare a\nx",
    ):
        assert isinstance(run(ip, line).error_in_exec, UsageError), line
    assert isinstance(run(ip, "%chat keep 1").error_in_exec, UsageError)  # none yet
    assert isinstance(run(ip, "%chat retry -t 0,1").error_in_exec, UsageError)
    assert fake_server.requests == []


def test_a_cell_request_multiplies_the_lists() -> None:
    request = CellRequest(compare="a,b", variants={"temperature": [0, 1]})
    assert request.comparison() == [
        {"model": "a", "temperature": 0},
        {"model": "a", "temperature": 1},
        {"model": "b", "temperature": 0},
        {"model": "b", "temperature": 1},
    ]
    assert CellRequest().comparison() == []


def test_keep_buttons_keep_a_reply(ip: Any, fake_server: FakeOpenAI) -> None:
    from tf_magics.notebook.compare_view import KeepButtons

    fake_server.default = Dynamic(lambda r: TextReply(f"reply at {r.json['temperature']}"))
    chat = session(ip).chat()
    comparison = chat.compare("Hi", [{"temperature": 0}, {"temperature": 1}])
    buttons = KeepButtons(session(ip), comparison, None)
    assert "%chat keep N (1: t=0, 2: t=1)" in buttons._repr_mimebundle_()["text/plain"]
    buttons.buttons[0].click()
    assert [m["content"] for m in chat.history] == ["Hi", "reply at 0.0"]
    assert all(button.disabled for button in buttons.buttons)
    assert "is now in the history" in buttons.status.value
    buttons.keep(2)
    assert "already kept" in buttons.status.value


def test_a_secret_in_a_cell_is_masked_and_the_cell_says_so(
    ip: Any, fake_server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("STRIPE_SECRET", "sk_live_51Habcdefghijklmnop")
    assert run(ip, "%%chat\nWhy does sk_live_51Habcdefghijklmnop fail?").success
    assert b"sk_live_51H" not in fake_server.requests[-1].body
    out = capsys.readouterr().out
    assert "Secrets masked before sending: STRIPE_SECRET (in the question)" in out
