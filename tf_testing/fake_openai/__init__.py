"""A scripted OpenAI-compatible HTTP server on 127.0.0.1, for tests and benchmarks.

:class:`FakeOpenAI` runs a real HTTP/1.1 server (keep-alive, chunked streams) on a background
thread, answers ``POST /v1/chat/completions`` and ``GET /v1/models``, and records every request so a
test can assert on what the client sent::

    from tf_testing.fake_openai import ErrorReply, FakeOpenAI, TextReply

    with FakeOpenAI() as server:
        server.enqueue(TextReply(["Hel", "lo"], tokens_per_second=50))
        server.enqueue(ErrorReply(429, {"error": {"message": "slow down"}}, {"retry-after": "0"}))
        ...  # point the client at server.base_url
        assert server.chat_requests[0]["stream"] is True

In the test suite, the ``fake_server`` fixture (``tests/conftest.py``) gives each test a fresh one.

Replies come from a FIFO queue of response specs; when it is empty, :attr:`FakeOpenAI.default`
answers (a short "Hello from fake-model." text, streamed when the request asked for a stream). A
spec is a small value that answers both streaming and non-streaming requests:

- :class:`TextReply` -- content (and optional reasoning) tokens, with pacing and usage;
- :class:`ToolCallReply` -- tool calls with fragmented arguments;
- :class:`ErrorReply` -- an HTTP error with a JSON or text body;
- :class:`RawReply` -- exact bytes, with pauses between writes;
- :class:`MidStreamError`, :class:`Disconnect`, :class:`Hang` -- the ways streams go wrong;
- :class:`ReplayCapture` -- a byte-exact capture from ``tests/wire/`` served again;
- :class:`Dynamic` -- a function that picks the reply from the request it received.

``FakeOpenAI(vision=False)`` plays a model that reads text only: a request with an ``image_url``
part gets OpenAI's 400 for it.

Run ``python -m tf_testing.fake_openai --port P --tokens N --rate R`` from the repository root to
serve from another process (a notebook, a kernel, a benchmark); it prints its base URL on the first
line of stdout and stops on SIGTERM or Ctrl-C. ``--tokens N`` serves ``N`` tokens of generated
Markdown (:func:`tf_testing.markdown_text.make_markdown_tokens`).

A fixed latency is ``TextReply(..., first_token_delay=0.2)`` (as the default, or from a
:class:`Dynamic`); ``FakeOpenAI(max_in_flight=16)`` answers 429 to a request that arrives while 16
are being answered, like a provider's concurrency limit, and :attr:`FakeOpenAI.peak_in_flight`
says how many a client ever had in flight at once.

One thread serves each connection. Pacing stays accurate up to roughly 10,000 paced events per
second in total (say 100 streams at 100 tokens/s); beyond that the streams run slower than asked.

The modules, each with one job:

=============  ====================================================================================
``specs``      the response specs and the framing helpers (:func:`sse`, :func:`chat_chunk`, ...)
``server``     the HTTP server: :class:`FakeOpenAI`, its handler, recording, pacing, framing
``exchange``   what the two share: the recorded request and the plan of a response
``cli``        the command line (``__main__`` runs it)
=============  ====================================================================================
"""

from __future__ import annotations

from .batches import FakeBatches, echo_completion
from .cli import main
from .server import FakeOpenAI, ModelsSetting, RecordedRequest
from .specs import (
    DEFAULT_MODEL,
    DEFAULT_TEXT,
    ChunkStyle,
    Disconnect,
    Dynamic,
    ErrorReply,
    Hang,
    MidStreamError,
    RawReply,
    ReplayCapture,
    ResponseSpec,
    TextReply,
    ToolCallReply,
    chat_chunk,
    split_tokens,
    sse,
)

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_TEXT",
    "ChunkStyle",
    "Disconnect",
    "Dynamic",
    "ErrorReply",
    "FakeBatches",
    "FakeOpenAI",
    "Hang",
    "MidStreamError",
    "ModelsSetting",
    "RawReply",
    "RecordedRequest",
    "ReplayCapture",
    "ResponseSpec",
    "TextReply",
    "ToolCallReply",
    "chat_chunk",
    "echo_completion",
    "main",
    "split_tokens",
    "sse",
]
