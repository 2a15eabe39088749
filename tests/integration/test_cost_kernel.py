"""The bill in a real kernel: cost where tokens are shown, and a cap that stops requests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tf_testing.fake_openai import FakeOpenAI, TextReply
from tf_testing.kernels import KernelSession, kernel_session

pytestmark = pytest.mark.kernel

USAGE = {"prompt_tokens": 2_000, "completion_tokens": 1_000, "total_tokens": 3_000}


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def kernel(server: FakeOpenAI) -> Iterator[KernelSession]:
    with kernel_session() as session:
        setup = session.run(
            "%load_ext tf_magics\n"
            f"%config ChatSettings.base_url = {server.base_url!r}\n"
            "%config ChatSettings.model = 'fake-model'\n"
            "%chat set 'prices={\"fake-model\": [3, 15]}'"
        )
        assert setup.status == "ok", setup.error
        yield session


def final_text(run: object) -> str:
    outputs = run.outputs()  # type: ignore[attr-defined]
    return "\n".join(str(o.get("data", {}).get("text/plain", o.get("text", ""))) for o in outputs)


def test_the_footer_and_usage_show_the_cost(kernel: KernelSession, server: FakeOpenAI) -> None:
    server.enqueue(TextReply("first", usage=USAGE), TextReply("second", usage=USAGE))
    first = kernel.run("%%chat\nhello")
    # 2,000 tokens at $3/M + 1,000 at $15/M = $0.021 per turn.
    assert "$0.021" in final_text(first)
    second = kernel.run("%%chat\nagain")
    assert "conversation 6,000 tokens, $0.042" in final_text(second)
    usage = final_text(kernel.run("%chat usage"))
    assert "turn 1: 2,000 in, 1,000 out, $0.021" in usage
    assert "total: 4,000 in, 2,000 out, 6,000 tokens, $0.042" in usage
    assert "this kernel has spent $0.042" in usage
    history = final_text(kernel.run("%chat history"))
    assert "6,000 tokens used so far ($0.042)" in history


def test_a_request_over_the_cap_is_never_sent(kernel: KernelSession, server: FakeOpenAI) -> None:
    server.enqueue(TextReply("ok", usage=USAGE))
    assert kernel.run("%chat set budget=0.03").status == "ok"
    assert kernel.run("%%chat\nfirst").status == "ok"
    run = kernel.run("%%chat\nsecond")
    assert run.status == "error"
    assert run.error is not None and run.error["ename"] == "BudgetExceededError"
    assert len(run.error["traceback"]) == 1 and "budget" in run.error["traceback"][0]
    assert len(server.chat_requests) == 1
    roles = kernel.run("import tf_magics\nprint([m['role'] for m in tf_magics.get_chat().history])")
    assert "['user', 'assistant']" in final_text(roles)
