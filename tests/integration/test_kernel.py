"""The magic in a real Jupyter kernel: streaming, saved outputs, interrupts, errors, await."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import nbformat
import pytest
from jupyter_core.utils import ensure_event_loop
from nbclient import NotebookClient

from tf_testing.fake_openai import ErrorReply, FakeOpenAI, TextReply, ToolCallReply
from tf_testing.kernels import KernelSession, kernel_session
from tf_testing.markdown_text import make_markdown_tokens

pytestmark = pytest.mark.kernel


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(scope="module")
def kernel(server: FakeOpenAI) -> Iterator[KernelSession]:
    with kernel_session() as session:
        setup = session.run(
            "%load_ext tf_magics\n"
            f"%config ChatSettings.base_url = {server.base_url!r}\n"
            "%config ChatSettings.model = 'fake-model'"
        )
        assert setup.status == "ok", setup.error
        yield session


@pytest.fixture(autouse=True)
def _fresh(server: FakeOpenAI) -> None:
    server.reset()


def test_reply_streams_then_leaves_one_output_with_three_mimetypes(
    kernel: KernelSession, server: FakeOpenAI
) -> None:
    server.enqueue(TextReply(make_markdown_tokens(300), tokens_per_second=300))
    run = kernel.run("%%chat --new\nWrite something long.")
    assert run.status == "ok"
    updates = run.of_type("update_display_data")
    assert len(updates) > 5  # the reply was visibly streamed
    outputs = run.outputs()
    assert len(outputs) == 1
    assert set(outputs[0]["data"]) == {"text/plain", "text/markdown", "text/html"}
    # Bounded rate: about 2 display messages per 0.1 s interval at most.
    times = [m["header"]["date"] for m in run.of_type("display_data", "update_display_data")]
    span = (times[-1] - times[0]).total_seconds()
    assert len(times) <= 25 * span + 10


def test_interrupt_keeps_the_partial_reply_and_the_next_cell_works(
    kernel: KernelSession, server: FakeOpenAI
) -> None:
    # Long enough (40 s) that the interrupt always lands mid-stream, even on a busy machine.
    words = [f"word{n} " for n in range(2000)]
    server.enqueue(TextReply(words, tokens_per_second=50))
    seen: list[str] = []

    def on_message(message: dict[str, Any], _: float) -> None:
        if message["msg_type"] in ("display_data", "update_display_data"):
            seen.append(message["content"]["data"].get("text/plain", ""))

    def interrupt_when_streaming() -> None:
        deadline = time.monotonic() + 30
        while not any("word5" in text for text in seen) and time.monotonic() < deadline:
            time.sleep(0.02)
        kernel.manager.interrupt_kernel()
        # jupyter_core ran that on a new event loop for this thread: close it with the thread.
        ensure_event_loop().close()

    interrupter = threading.Thread(target=interrupt_when_streaming, daemon=True)
    interrupter.start()
    run = kernel.run("%%chat --new\nCount slowly.", on_message=on_message)
    interrupter.join()
    assert run.status == "error"
    assert run.error is not None and run.error["ename"] == "StreamInterrupted"
    assert len(run.error["traceback"]) == 1
    outputs = run.outputs()
    shown = outputs[0]["data"]["text/plain"]
    assert shown.startswith("word0 word1") and "Interrupted" in shown
    assert "word1999" not in shown  # stopped at once, not at the end of the stream
    follow = kernel.run("%%chat\nAnd now?")
    assert follow.status == "ok"
    sent = server.chat_requests[-1]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[1]["content"].startswith("word0 word1")


def test_an_error_fails_the_cell_with_one_line(kernel: KernelSession, server: FakeOpenAI) -> None:
    server.enqueue(ErrorReply(401, {"error": {"message": "Incorrect API key provided"}}))
    run = kernel.run("%%chat --new\nhi")
    assert run.status == "error"
    assert run.error is not None and run.error["ename"] == "AuthenticationError"
    (line,) = run.error["traceback"]
    assert "401" in line and "TOKEN_FACTORY_API_KEY" in line


def test_await_chat_send_in_a_cell(kernel: KernelSession, server: FakeOpenAI) -> None:
    server.enqueue(TextReply("awaited reply"))
    run = kernel.run(
        "import tf_magics\n"
        f"chat = tf_magics.Chat(base_url={server.base_url!r}, model='fake-model')\n"
        "reply = await chat.send('hello from await')\n"
        "print(reply.text)"
    )
    assert run.status == "ok", run.error
    assert "awaited reply" in "".join(m["content"]["text"] for m in run.of_type("stream"))


def _notebook(server: FakeOpenAI, *cells: str) -> Any:
    notebook = nbformat.v4.new_notebook()
    setup = (
        "%load_ext tf_magics\n"
        f"%config ChatSettings.base_url = {server.base_url!r}\n"
        "%config ChatSettings.model = 'fake-model'"
    )
    notebook.cells = [nbformat.v4.new_code_cell(setup)] + [
        nbformat.v4.new_code_cell(c) for c in cells
    ]
    return notebook


def test_a_notebook_with_several_chat_cells_runs_end_to_end(server: FakeOpenAI) -> None:
    server.enqueue(TextReply("# First\n\nAnswer one."), TextReply("Answer **two**."))
    notebook = _notebook(server, "%%chat -s 'Be brief.'\nQuestion one", "%%chat\nQuestion two")
    NotebookClient(notebook, timeout=60, kernel_name="python3").execute()
    for cell in notebook.cells[1:]:
        (output,) = cell.outputs
        assert set(output["data"]) == {"text/plain", "text/markdown", "text/html"}
    assert "<strong>two</strong>" in notebook.cells[2].outputs[0]["data"]["text/html"]
    assert [m["role"] for m in server.chat_requests[-1]["messages"]] == [
        "system",
        "user",
        "assistant",
        "user",
    ]


def test_a_decorated_tool_is_called_in_a_notebook(server: FakeOpenAI) -> None:
    server.enqueue(
        ToolCallReply([("get_weather", '{"city": "Paris"}')]),
        TextReply("It is sunny in Paris."),
    )
    notebook = _notebook(
        server,
        "import tf_magics\n\n"
        "@tf_magics.tool\n"
        "def get_weather(city: str) -> str:\n"
        '    """Current weather for a city."""\n'
        "    print('looking up', city)\n"
        '    return f"Sunny, 21 C in {city}"',
        "%%chat\nWeather in Paris?",
    )
    NotebookClient(notebook, timeout=60, kernel_name="python3").execute()
    outputs = notebook.cells[2].outputs
    html = outputs[0]["data"]["text/html"]
    assert "get_weather" in html and "Sunny, 21 C in Paris" in html
    assert "It is sunny in Paris." in html
    assert any("looking up Paris" in o.get("text", "") for o in outputs)  # tool print kept
    tool_message = server.chat_requests[-1]["messages"][-1]
    assert tool_message["role"] == "tool" and tool_message["content"] == "Sunny, 21 C in Paris"


def test_a_failing_cell_stops_run_all(server: FakeOpenAI) -> None:
    from nbclient.exceptions import CellExecutionError

    server.enqueue(ErrorReply(500, {"error": {"message": "boom"}}))
    notebook = _notebook(server, "%config ChatSettings.max_retries = 0", "%%chat\nhi", "x = 1")
    with pytest.raises(CellExecutionError):
        NotebookClient(notebook, timeout=60, kernel_name="python3").execute()
    assert notebook.cells[3].outputs == [] and "execution_count" in notebook.cells[3]
    assert notebook.cells[3]["execution_count"] is None


def test_a_confirm_tool_is_declined_in_a_headless_run(server: FakeOpenAI) -> None:
    server.enqueue(
        ToolCallReply([("send_email", '{"to": "team@example.com"}')]),
        TextReply("I did not send it."),
    )
    notebook = _notebook(
        server,
        "import tf_magics\n\n"
        "sent = []\n\n"
        "@tf_magics.tool(confirm=True)\n"
        "def send_email(to: str) -> str:\n"
        '    """Send the report by email."""\n'
        "    sent.append(to)\n"
        '    return "sent"',
        "%%chat\nEmail the report to the team.",
        "print(sent)",
    )
    NotebookClient(notebook, timeout=60, kernel_name="python3").execute()
    html = notebook.cells[2].outputs[0]["data"]["text/html"]
    assert "declined" in html and "I did not send it." in html
    assert notebook.cells[3].outputs[0]["text"].strip() == "[]"
    result = server.chat_requests[-1]["messages"][-1]
    assert result["role"] == "tool" and "confirm" in result["content"]
