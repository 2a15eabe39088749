"""The command line: serve the fake from its own process (a notebook, a kernel, a benchmark).

Run from the repository root::

    python -m tf_testing.fake_openai --port P --tokens N --rate R

It prints its base URL (``http://127.0.0.1:PORT/v1``) on the first line of stdout, then answers
every chat request with the same reply -- ``N`` tokens of generated Markdown
(:func:`tf_testing.markdown_text.make_markdown_tokens`) at ``R`` tokens per second, or a short
greeting without ``--tokens`` -- until SIGTERM or Ctrl-C. ``--first-token-delay S`` answers each
request after ``S`` seconds (a fixed latency); ``--max-in-flight N`` answers 429 to a request
that arrives while ``N`` are being answered. ``--batches`` adds the Batch API (files and batches,
each line answered with ``echo: <its question>``; see :class:`FakeBatches`).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from tf_testing.markdown_text import make_markdown_tokens

from .batches import FakeBatches
from .server import FakeOpenAI
from .specs import DEFAULT_MODEL, DEFAULT_TEXT, TextReply

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Serve from the command line until interrupted; print the base URL first."""
    parser = argparse.ArgumentParser(
        prog="python -m tf_testing.fake_openai",
        description="A scripted OpenAI-compatible server on 127.0.0.1 (for benchmarks and demos).",
    )
    parser.add_argument("--port", type=int, default=0, help="port to bind (0: any free port)")
    parser.add_argument("--tokens", type=int, default=None, help="reply with N tokens of markdown")
    parser.add_argument(
        "--rate", type=float, default=None, help="tokens per second (default: unpaced)"
    )
    parser.add_argument(
        "--first-token-delay", type=float, default=0.0, help="seconds before the first token"
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help="model name to report")
    parser.add_argument(
        "--max-in-flight",
        type=int,
        default=None,
        help="answer 429 to a request that arrives while N are being answered",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for the generated markdown")
    parser.add_argument(
        "--batches", action="store_true", help="serve the Batch API (/files and /batches)"
    )
    args = parser.parse_args(argv)

    text: str | list[str] = (
        DEFAULT_TEXT if args.tokens is None else make_markdown_tokens(args.tokens, args.seed)
    )
    default = TextReply(
        text,
        tokens_per_second=args.rate,
        first_token_delay=args.first_token_delay,
        model=args.model,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with FakeOpenAI(
        port=args.port,
        default=default,
        models=[args.model],
        max_in_flight=args.max_in_flight,
        batches=FakeBatches() if args.batches else None,
    ) as server:
        sys.stdout.write(server.base_url + "\n")
        sys.stdout.flush()
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    return 0
