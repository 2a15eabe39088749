"""No key in any message a kernel sends, even with ``%xmode Verbose`` and hostile input.

A verbose traceback prints the local variables of every frame, and whatever a cell's outputs
hold is saved with the notebook. The kernel here has a key in its environment, bound to the
scripted server; each cell is a way an earlier version leaked it (or a sibling of one).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator

import pytest

from tf_testing.fake_openai import ErrorReply, FakeOpenAI, ToolCallReply
from tf_testing.kernels import KernelSession, kernel_session

pytestmark = pytest.mark.kernel

SECRET = "sk-kernel-SECRET-5f0c9a7e31b24d688e0f"

HOSTILE_CELLS = [
    "%%chat\nthe server answers 401 and echoes the key",
    "%%chat --base-url http://[::1/v1\nhello",
    "%%chat --base-url http://127.0.0.1:70000/v1\nhello",
    "%chat set 'extra_body={\"x\": NaN}'",
    "%chat set read_timeout=-1",
    "x = 'half \\ud83d'",
    "%%chat -i\n{x}",
    "import tf_magics\ntf_magics.get_chat().ask(None)",
    "tf_magics.get_chat().ask('hi', extra_body={'a': float('nan')})",
    "tf_magics.get_chat().ask('hi', tool_choice={'type': 'function', 'x': object()})",
    "class Boom:\n    @property\n    def value(self):\n        raise OSError('no')\nb = Boom()",
    "%%chat -i\n{b.value}",
    "@tf_magics.tool\ndef leak() -> str:\n    raise ValueError('tool failed')",
    "%%chat\ncall the tool",
]


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def kernel(server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> Iterator[KernelSession]:
    monkeypatch.setenv("TOKEN_FACTORY_API_KEY", SECRET)
    monkeypatch.setenv("TOKEN_FACTORY_BASE_URL", server.base_url)
    monkeypatch.setenv("TOKEN_FACTORY_MODEL", "fake-model")
    with kernel_session() as session:
        setup = session.run("%load_ext tf_magics\n%xmode Verbose")
        assert setup.status == "ok", setup.error
        yield session


def test_no_kernel_message_ever_holds_the_key(kernel: KernelSession, server: FakeOpenAI) -> None:
    server.enqueue(
        ErrorReply(401, {"error": {"message": "bad key " + "x" * 300 + SECRET}}),
        ToolCallReply([("leak", {})]),
    )
    sent: list[str] = []
    tracebacks: list[list[str]] = []
    failed = 0
    for cell in HOSTILE_CELLS:
        run = kernel.run(cell, timeout=60)
        sent.extend(json.dumps(m["content"], default=str) for m in run.messages)
        failed += run.status == "error"
        if run.error is not None:
            tracebacks.append(run.error["traceback"])
    assert failed >= 8  # the hostile cells did fail
    leaks = [text for text in sent if SECRET in text or SECRET[:16] in text]
    assert leaks == []
    # Every failure was one line, not a traceback of frames and their locals.
    assert [len(lines) for lines in tracebacks] == [1] * len(tracebacks)
    chats = [r for r in server.requests if r.path.endswith("/chat/completions")]
    assert chats and all(r.headers.get("authorization") == f"Bearer {SECRET}" for r in chats)


def test_the_conversation_stays_sendable_after_hostile_cells(
    kernel: KernelSession, server: FakeOpenAI
) -> None:
    for cell in HOSTILE_CELLS[:7]:
        kernel.run(cell, timeout=60)
    run = kernel.run(
        "import json\n"
        "from tf_magics import get_chat\n"
        "roles = [m['role'] for m in get_chat().history]\n"
        "print(json.dumps(roles))"
    )
    roles = json.loads(run.of_type("stream")[-1]["content"]["text"])
    assert all(a != b or a != "user" for a, b in itertools.pairwise(roles))
    assert kernel.run("%%chat\nstill fine?").status == "ok"
