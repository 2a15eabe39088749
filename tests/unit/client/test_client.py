"""The HTTP client against a real loopback server (WIRE items 5, 6, 9, 18-22)."""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pytest

from tf_magics.client import ModelInfo, RequestOptions
from tf_magics.client.chunks import ChunkAccumulator
from tf_magics.client.error_bodies import ErrorInfo, is_context_length, parse_error_body
from tf_magics.client.http import Client
from tf_magics.errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ContextLengthError,
    EmptyStreamError,
    IncompleteStreamError,
    RateLimitError,
    ServerError,
)
from tf_magics.events import ContentDelta, Event, Retrying
from tf_magics.settings import ChatSettings
from tf_magics.types import Completion, Usage
from tf_testing.fake_openai import (
    Disconnect,
    Dynamic,
    ErrorReply,
    FakeOpenAI,
    Hang,
    MidStreamError,
    RawReply,
    RecordedRequest,
    ResponseSpec,
    TextReply,
    ToolCallReply,
    chat_chunk,
    sse,
)

SECRET = "sk-test-5ecret-never-shown"
MESSAGES = [{"role": "user", "content": "Hi"}]
# httpx builds an SSL context for every new client (~0.1 s); tests share one instead.
_SSL = ssl.create_default_context()


def new_client(**kwargs: Any) -> Client:
    return Client(transport=httpx.AsyncHTTPTransport(verify=_SSL), **kwargs)


def options(fake_server: FakeOpenAI, **settings: Any) -> RequestOptions:
    return ChatSettings(base_url=fake_server.base_url, api_key=SECRET, model="m").resolve(
        env={}, **settings
    )


@dataclass
class Outcome:
    completion: Completion | None = None
    error: APIError | None = None
    events: list[Event] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)
    accumulator: ChunkAccumulator = field(default_factory=ChunkAccumulator)

    @property
    def ok(self) -> Completion:
        assert self.error is None, f"unexpected {type(self.error).__name__}: {self.error}"
        assert self.completion is not None
        return self.completion

    def failed(self, kind: type[APIError] = APIError) -> Any:
        assert self.error is not None, f"no error; got {self.completion}"
        assert isinstance(self.error, kind), f"{type(self.error).__name__}: {self.error}"
        return self.error

    @property
    def retries(self) -> list[Retrying]:
        return [e for e in self.events if isinstance(e, Retrying)]


def chat(
    fake_server: FakeOpenAI,
    *specs: ResponseSpec,
    opts: RequestOptions | None = None,
    client: Client | None = None,
    tools: list[dict[str, Any]] | None = None,
    tool_choice: Any = None,
    calls: int = 1,
    **settings: Any,
) -> Outcome:
    """Queue ``specs``, send ``calls`` requests on one client (one loop) and record the outcome."""
    fake_server.enqueue(*specs)
    outcome = Outcome()

    async def sleep(seconds: float) -> None:
        outcome.sleeps.append(seconds)

    async def main() -> None:
        own = client or new_client(sleep=sleep)
        try:
            for _ in range(calls):
                outcome.accumulator = ChunkAccumulator()
                try:
                    outcome.completion = await own.chat(
                        opts or options(fake_server, **settings),
                        MESSAGES,
                        outcome.accumulator,
                        on_event=outcome.events.append,
                        tools=tools,
                        tool_choice=tool_choice,
                    )
                except APIError as error:
                    outcome.error = error
        finally:
            await own.aclose()

    asyncio.run(main())
    return outcome


def chat_bodies(fake_server: FakeOpenAI) -> list[Any]:
    return fake_server.chat_requests


# --------------------------------------------------------------------------- streaming basics


def test_a_streamed_reply_is_assembled_and_reported_token_by_token(fake_server: FakeOpenAI) -> None:
    # Paced, so each token arrives in a read of its own.
    outcome = chat(fake_server, TextReply(["Hel", "lo", "!"], usage="auto", tokens_per_second=40))
    completion = outcome.ok
    assert completion.content == "Hello!"
    assert completion.ended == "done"
    assert completion.finish_reason == "stop"
    assert [e.text for e in outcome.events if isinstance(e, ContentDelta)] == ["Hel", "lo", "!"]
    assert completion.usage is not None and completion.usage.completion_tokens == 3
    assert chat_bodies(fake_server)[0]["stream"] is True


def test_tokens_that_arrive_in_one_read_are_reported_as_one_delta(fake_server: FakeOpenAI) -> None:
    pieces = [f"t{n} " for n in range(300)]
    outcome = chat(fake_server, TextReply(pieces))  # unpaced: the whole body in one or two reads
    deltas = [e.text for e in outcome.events if isinstance(e, ContentDelta)]
    assert "".join(deltas) == "".join(pieces) == outcome.ok.content
    assert len(deltas) < 30


def test_a_non_streamed_reply_is_read_as_one_body(fake_server: FakeOpenAI) -> None:
    outcome = chat(fake_server, TextReply("Hello there", usage="auto"), stream=False)
    completion = outcome.ok
    assert completion.content == "Hello there"
    assert completion.ended == "complete"
    assert completion.usage is not None
    assert chat_bodies(fake_server)[0]["stream"] is False


def test_a_200_json_answer_to_a_streamed_request_is_parsed_as_json(fake_server: FakeOpenAI) -> None:
    body = json.dumps(
        {
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "J"},
                    "finish_reason": "stop",
                }
            ],
            "model": "srv",
        }
    ).encode()
    reply = RawReply(200, {"content-type": "application/json"}, [body], framing="length")
    completion = chat(fake_server, reply).ok
    assert (completion.content, completion.model, completion.ended) == ("J", "srv", "complete")


def test_a_200_json_error_answer_to_a_streamed_request_raises(fake_server: FakeOpenAI) -> None:
    body = json.dumps({"error": {"message": "model is loading", "code": 503}}).encode()
    reply = RawReply(200, {"content-type": "application/json"}, [body], framing="length")
    error = chat(fake_server, reply).failed(APIStatusError)
    assert "model is loading" in str(error)


def test_a_200_that_is_not_json_says_so(fake_server: FakeOpenAI) -> None:
    page = b"<html><body>Welcome to nginx!</body></html>"
    reply = RawReply(200, {"content-type": "text/html"}, [page], framing="length")
    error = chat(fake_server, reply, stream=False).failed(APIStatusError)
    assert "not JSON" in str(error)
    assert "/v1" in str(error)


def test_an_event_stream_answer_to_a_non_streamed_request_is_read_as_a_stream(
    fake_server: FakeOpenAI,
) -> None:
    reply = RawReply.events([chat_chunk({"content": "s"}), chat_chunk({}, "stop"), "[DONE]"])
    assert chat(fake_server, reply, stream=False).ok.content == "s"


def test_a_gzipped_event_stream_is_decoded(fake_server: FakeOpenAI) -> None:
    body = sse(chat_chunk({"content": "zipped"})) + sse(chat_chunk({}, "stop")) + sse("[DONE]")
    headers = {"content-type": "text/event-stream", "content-encoding": "gzip"}
    completion = chat(fake_server, RawReply(200, headers, [gzip.compress(body)])).ok
    assert (completion.content, completion.ended) == ("zipped", "done")


def test_an_event_stream_content_type_is_matched_case_insensitively(
    fake_server: FakeOpenAI,
) -> None:
    reply = RawReply.events(
        [chat_chunk({"content": "x"}), "[DONE]"], headers={"content-type": "Text/Event-Stream"}
    )
    assert chat(fake_server, reply).ok.content == "x"


def test_comments_and_events_split_across_reads_arrive_intact(fake_server: FakeOpenAI) -> None:
    data = sse(chat_chunk({"content": "naïve 🎉"}))
    reply = RawReply.events(
        [
            b": OPENROUTER PROCESSING\r\n\r\n",
            data[:9],
            0.02,
            data[9:12],
            0.02,
            data[12:],
            b"data: [DONE]",
        ]
    )
    completion = chat(fake_server, reply).ok
    assert (completion.content, completion.ended) == ("naïve 🎉", "done")


# --------------------------------------------------------------------------- how streams end (5)


def test_finish_reason_then_end_of_body_without_done_is_success(fake_server: FakeOpenAI) -> None:
    completion = chat(fake_server, TextReply("All good", send_done=False)).ok
    assert (completion.content, completion.ended) == ("All good", "finished")


def test_a_stream_cut_off_mid_reply_is_incomplete_with_the_partial(fake_server: FakeOpenAI) -> None:
    outcome = chat(fake_server, Disconnect(after_tokens=2, text=["Par", "tial", " never"]))
    error = outcome.failed(IncompleteStreamError)
    assert error.partial is not None
    assert (error.partial.content, error.partial.ended) == ("Partial", "incomplete")
    assert error.partial.partial


def test_a_stream_ending_cleanly_without_finish_or_done_is_incomplete(
    fake_server: FakeOpenAI,
) -> None:
    reply = RawReply.events([chat_chunk({"content": "half"})])
    error = chat(fake_server, reply).failed(IncompleteStreamError)
    assert error.partial is not None and error.partial.content == "half"


def test_an_empty_200_stream_is_an_empty_stream_error(fake_server: FakeOpenAI) -> None:
    error = chat(fake_server, RawReply(200, {"content-type": "text/event-stream"}, [])).failed(
        EmptyStreamError
    )
    assert "empty stream" in str(error)
    assert "trim" in str(error)


def test_a_stream_of_comments_only_is_incomplete_not_empty(fake_server: FakeOpenAI) -> None:
    error = chat(fake_server, RawReply.events([b": ping\n\n"])).failed(IncompleteStreamError)
    assert not isinstance(error, EmptyStreamError)


def test_a_non_streamed_body_cut_off_is_incomplete_and_not_retried(fake_server: FakeOpenAI) -> None:
    outcome = chat(fake_server, Disconnect(), TextReply("retry"), stream=False)
    outcome.failed(IncompleteStreamError)
    assert len(chat_bodies(fake_server)) == 1


def test_a_stream_that_stalls_is_incomplete_and_keeps_the_partial(fake_server: FakeOpenAI) -> None:
    reply = RawReply.events([chat_chunk({"content": "slow"}), 5.0, chat_chunk({}, "stop")])
    outcome = chat(fake_server, reply, read_timeout=0.3)
    error = outcome.failed(IncompleteStreamError)
    assert "stalled" in str(error)
    assert error.partial is not None and error.partial.content == "slow"
    assert len(chat_bodies(fake_server)) == 1


def test_keep_alive_comments_reset_the_idle_timer(fake_server: FakeOpenAI) -> None:
    pings: list[bytes | float] = []
    for _ in range(4):
        pings += [0.15, b": keep-alive\n\n"]
    reply = RawReply.events(
        [*pings, chat_chunk({"content": "late"}), chat_chunk({}, "stop"), "[DONE]"]
    )
    completion = chat(fake_server, reply, read_timeout=0.3, first_token_timeout=5, max_retries=0).ok
    assert completion.content == "late"


def test_keep_alives_do_not_extend_the_wait_for_the_first_token(fake_server: FakeOpenAI) -> None:
    # A fake_server that only sends ": keep-alive" must not keep a cell waiting forever.
    pings: list[bytes | float] = []
    for _ in range(40):
        pings += [0.1, b": keep-alive\n\n"]
    reply = RawReply.events([*pings, chat_chunk({"content": "late"}), "[DONE]"])
    started = time.perf_counter()
    error = chat(fake_server, reply, read_timeout=0.5, max_retries=0).failed(IncompleteStreamError)
    assert time.perf_counter() - started < 2.5
    assert "sent no token within 0.5 s (read_timeout)" in str(error)
    assert "Nothing had arrived" in str(error) and "partial reply is kept" not in str(error)


def test_first_token_timeout_bounds_the_wait_for_the_first_token(fake_server: FakeOpenAI) -> None:
    pings: list[bytes | float] = [0.1, b": keep-alive\n\n"] * 30
    reply = RawReply.events([*pings, chat_chunk({"content": "late"}), "[DONE]"])
    error = chat(fake_server, reply, first_token_timeout=0.4).failed(IncompleteStreamError)
    assert "(first_token_timeout)" in str(error)


def test_reply_timeout_bounds_the_whole_reply_and_keeps_what_arrived(
    fake_server: FakeOpenAI,
) -> None:
    tokens: list[bytes | float | dict[str, Any]] = []
    for word in ["one ", "two ", "three ", "four ", "five ", "six "]:
        tokens += [chat_chunk({"content": word}), 0.15]
    reply = RawReply.events([*tokens, chat_chunk({}, "stop"), "[DONE]"])
    error = chat(fake_server, reply, reply_timeout=0.4).failed(IncompleteStreamError)
    assert "did not finish within 0.4 s (reply_timeout)" in str(error)
    assert error.partial is not None and error.partial.content.startswith("one two")
    assert "partial reply is kept" in str(error)


def test_a_body_held_open_after_done_is_not_waited_for(fake_server: FakeOpenAI) -> None:
    reply = RawReply.events([chat_chunk({"content": "x"}), "[DONE]", 10.0])
    started = time.perf_counter()
    completion = chat(fake_server, reply).ok
    assert (completion.content, completion.ended) == ("x", "done")
    assert time.perf_counter() - started < 5


# --------------------------------------------------------------------------- errors mid-stream (19)


def test_an_error_after_some_tokens_raises_with_the_partial(fake_server: FakeOpenAI) -> None:
    spec = MidStreamError(
        after_tokens=2,
        text=["One", " two", " three"],
        error={"message": "upstream failed", "type": "server_error"},
    )
    outcome = chat(fake_server, spec, max_retries=2)
    error = outcome.failed(APIStatusError)
    assert "upstream failed" in str(error)
    assert error.status_code is None
    assert error.partial is not None
    assert (error.partial.content, error.partial.ended) == ("One two", "error")
    assert len(chat_bodies(fake_server)) == 1  # body bytes were consumed: never retried


def test_openrouter_finish_reason_error_raises_with_the_partial(fake_server: FakeOpenAI) -> None:
    reply = RawReply.events([chat_chunk({"content": "Hal"}), chat_chunk({}, "error"), "[DONE]"])
    error = chat(fake_server, reply).failed(APIStatusError)
    assert error.partial is not None and error.partial.content == "Hal"


def test_an_error_as_the_very_first_event_raises(fake_server: FakeOpenAI) -> None:
    reply = RawReply.events([{"error": {"message": "overloaded", "code": 503}}, "[DONE]"])
    error = chat(fake_server, reply).failed(APIStatusError)
    assert "overloaded" in str(error)
    assert error.code == 503
    assert error.partial is not None and error.partial.content == ""


def test_tgi_style_error_text_mid_stream_raises(fake_server: FakeOpenAI) -> None:
    reply = RawReply.events(
        [
            chat_chunk({"content": "a"}),
            {"error": "Request failed during generation", "error_type": "generation"},
        ]
    )
    error = chat(fake_server, reply).failed(APIStatusError)
    assert "Request failed during generation" in str(error)


def test_an_event_error_frame_raises(fake_server: FakeOpenAI) -> None:
    reply = RawReply.events(
        [chat_chunk({"content": "a"}), b'event: error\ndata: {"message": "boom"}\n\n']
    )
    error = chat(fake_server, reply).failed(APIStatusError)
    assert "boom" in str(error)
    assert error.partial is not None and error.partial.content == "a"


@pytest.mark.parametrize("data", [b'"boom"', b"{}", b"boom"])
def test_an_event_error_frame_raises_whatever_its_payload(
    fake_server: FakeOpenAI, data: bytes
) -> None:
    reply = RawReply.events(
        [chat_chunk({"content": "a"}), b"event: error\ndata: " + data + b"\n\n"]
    )
    chat(fake_server, reply).failed(APIStatusError)


def test_an_old_llama_cpp_error_line_raises(fake_server: FakeOpenAI) -> None:
    reply = RawReply.events(
        [b'error: {"code": 500, "message": "slot unavailable", "type": "server_error"}\n\n']
    )
    error = chat(fake_server, reply).failed(APIStatusError)
    assert "slot unavailable" in str(error)


def test_a_rate_limit_reported_mid_stream_is_a_rate_limit_error(fake_server: FakeOpenAI) -> None:
    reply = RawReply.events([{"error": {"message": "slow down", "code": "rate_limit_exceeded"}}])
    chat(fake_server, reply).failed(RateLimitError)


# --------------------------------------------------------------------------- error bodies (18)

ERROR_BODIES: dict[str, tuple[int, Any, type[APIError], str, Any]] = {
    # name: (status, body, class, text that must be in str(error), code kept)
    "openai string code": (
        400,
        {
            "error": {
                "message": "Invalid value for 'temperature'.",
                "type": "invalid_request_error",
                "param": "temperature",
                "code": "invalid_value",
            }
        },
        BadRequestError,
        "Invalid value for 'temperature'.",
        "invalid_value",
    ),
    "openai int code": (
        400,
        {"error": {"message": "Model not loaded", "type": "BadRequestError", "code": 400}},
        BadRequestError,
        "Model not loaded",
        400,
    ),
    "flat vllm": (
        400,
        {
            "object": "error",
            "message": "Unknown model 'x'",
            "type": "NotFoundError",
            "param": None,
            "code": 404,
        },
        BadRequestError,
        "Unknown model 'x'",
        404,
    ),
    "tgi error text": (
        424,
        {"error": "Request failed during generation: Server error", "error_type": "generation"},
        BadRequestError,
        "Request failed during generation",
        None,
    ),
    "fastapi detail": (404, {"detail": "Not Found"}, BadRequestError, "Not Found", None),
    "fastapi validation list": (
        422,
        {
            "detail": [
                {
                    "loc": ["body", "messages", 0, "role"],
                    "msg": "field required",
                    "type": "value_error.missing",
                }
            ]
        },
        BadRequestError,
        "messages.0.role: field required",
        None,
    ),
    "plain text from a proxy": (
        502,
        "upstream connect error",
        ServerError,
        "upstream connect error",
        None,
    ),
    "unauthorized": (
        401,
        {"error": {"message": "Invalid API key", "code": "invalid_api_key"}},
        AuthenticationError,
        "Invalid API key",
        "invalid_api_key",
    ),
    "forbidden": (
        403,
        {"error": {"message": "No access to model"}},
        AuthenticationError,
        "No access to model",
        None,
    ),
    "payment required": (
        402,
        {"error": {"message": "Insufficient credits"}},
        BadRequestError,
        "Insufficient credits",
        None,
    ),
    "server error": (
        500,
        {"error": {"message": "CUDA out of memory", "type": "server_error"}},
        ServerError,
        "CUDA out of memory",
        None,
    ),
}


@pytest.mark.parametrize(
    ("status", "body", "kind", "text", "code"), ERROR_BODIES.values(), ids=ERROR_BODIES.keys()
)
def test_error_bodies_of_every_shape_become_a_readable_one_line_error(
    fake_server: FakeOpenAI, status: int, body: Any, kind: type[APIError], text: str, code: Any
) -> None:
    error = chat(fake_server, ErrorReply(status, body), max_retries=0).failed(kind)
    message = str(error)
    assert text in message
    assert "\n" not in message and "\n" not in error.message
    assert "{" not in message  # the message, not the JSON it came in
    assert str(status) in message
    assert error.status_code == status
    assert error.code == code
    assert len(message) < 600


def test_an_html_error_page_from_a_proxy_is_reduced_to_its_title(fake_server: FakeOpenAI) -> None:
    page = (
        "<!DOCTYPE html><html><head><title>503 Service Temporarily Unavailable</title>"
        "<style>body { width: 35em; margin: 0 auto; font-family: Tahoma; }</style>"
        "<script>var x = {a: 1};</script></head>\n<body>\n<center><h1>503 Service Temporarily "
        "Unavailable</h1></center>\n<hr><center>nginx</center>\n</body></html>"
    )
    reply = ErrorReply(503, page, {"content-type": "text/html"})
    error = chat(fake_server, reply, max_retries=0).failed(ServerError)
    message = str(error)
    assert "503 Service Temporarily Unavailable" in message
    assert "<" not in message and "{" not in message and "\n" not in message


def test_authentication_errors_name_the_environment_variable(fake_server: FakeOpenAI) -> None:
    opts = ChatSettings(base_url=fake_server.base_url, model="m").resolve(env={})
    error = chat(fake_server, ErrorReply(401, {"error": {"message": "no key"}}), opts=opts).failed(
        AuthenticationError
    )
    assert "TOKEN_FACTORY_API_KEY" in str(error)


def test_a_404_hints_at_the_base_url(fake_server: FakeOpenAI) -> None:
    error = chat(fake_server, ErrorReply(404, {"detail": "Not Found"})).failed(BadRequestError)
    assert "/v1" in str(error)


# --------------------------------------------------------------------------- context overflow (20)

CONTEXT_ERRORS: dict[str, tuple[int, Any]] = {
    "openai code": (
        400,
        {
            "error": {
                "message": "This model's maximum context length is 8192 tokens.",
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            }
        },
    ),
    "vllm flat message": (
        400,
        {
            "object": "error",
            "type": "BadRequestError",
            "param": None,
            "code": 400,
            "message": "This model's maximum context length is 4096 tokens. However, you requested "
            "5000 tokens (4000 in the messages, 1000 in the completion).",
        },
    ),
    "llama.cpp type": (
        400,
        {
            "error": {
                "code": 400,
                "message": "the request exceeds the available context size, try increasing it",
                "type": "exceed_context_size_error",
                "n_prompt_tokens": 5000,
                "n_ctx": 4096,
            }
        },
    ),
    "tgi 422": (
        422,
        {
            "error": "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 2048. "
            "Given: 2000 `inputs` tokens and 100 `max_new_tokens`",
            "error_type": "validation",
        },
    ),
    "a 5xx saying so": (
        500,
        {
            "error": {
                "message": "prompt is too long: 9000 tokens > 8192 maximum",
                "type": "server_error",
            }
        },
    ),
}


@pytest.mark.parametrize(("status", "body"), CONTEXT_ERRORS.values(), ids=CONTEXT_ERRORS.keys())
def test_context_overflow_is_a_context_length_error_never_retried(
    fake_server: FakeOpenAI, status: int, body: Any
) -> None:
    outcome = chat(fake_server, ErrorReply(status, body), TextReply("no"), max_retries=2)
    error = outcome.failed(ContextLengthError)
    assert "Trim the history" in str(error)
    assert error.status_code == status
    assert len(chat_bodies(fake_server)) == 1
    assert outcome.retries == [] and outcome.sleeps == []


def test_context_overflow_reported_mid_stream_is_a_context_length_error(
    fake_server: FakeOpenAI,
) -> None:
    reply = RawReply.events([{"error": {"message": "too long", "code": "context_length_exceeded"}}])
    chat(fake_server, reply).failed(ContextLengthError)


def test_llama_cpp_python_empty_stream_on_overflow_explains_itself(fake_server: FakeOpenAI) -> None:
    error = chat(fake_server, RawReply(200, {"content-type": "text/event-stream"}, [])).failed(
        EmptyStreamError
    )
    assert "context window" in str(error)
    assert error.partial is not None and error.partial.content == ""


# --------------------------------------------------------------------------- retries (21)


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503])
def test_retryable_statuses_are_retried(fake_server: FakeOpenAI, status: int) -> None:
    outcome = chat(fake_server, ErrorReply(status), TextReply("ok"), max_retries=2)
    assert outcome.ok.content == "ok"
    assert len(chat_bodies(fake_server)) == 2
    assert len(outcome.sleeps) == 1


def test_retries_stop_after_max_retries_with_the_last_error(fake_server: FakeOpenAI) -> None:
    outcome = chat(fake_server, *[ErrorReply(503)] * 4, max_retries=2)
    outcome.failed(ServerError)
    assert len(chat_bodies(fake_server)) == 3
    assert len(outcome.sleeps) == 2


def test_max_retries_zero_means_one_attempt(fake_server: FakeOpenAI) -> None:
    chat(fake_server, ErrorReply(503), TextReply("ok"), max_retries=0).failed(ServerError)
    assert len(chat_bodies(fake_server)) == 1


def test_a_connection_dropped_before_the_response_is_retried(fake_server: FakeOpenAI) -> None:
    outcome = chat(fake_server, Disconnect(before_headers=True), TextReply("ok"), max_retries=2)
    assert outcome.ok.content == "ok"
    assert len(outcome.sleeps) == 1


def test_a_refused_connection_is_retried_then_a_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    opts = ChatSettings(base_url=f"http://127.0.0.1:{port}/v1", api_key=SECRET).resolve(
        env={}, max_retries=2
    )
    sleeps: list[float] = []
    events: list[Event] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def main() -> None:
        client = new_client(sleep=sleep)
        try:
            await client.chat(opts, MESSAGES, ChunkAccumulator(), on_event=events.append)
        finally:
            await client.aclose()

    with pytest.raises(APIConnectionError) as caught:
        asyncio.run(main())
    assert len(sleeps) == 2
    assert [e.attempt for e in events if isinstance(e, Retrying)] == [1, 2]
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "Is the server running?" in str(caught.value)


def test_a_server_that_never_answers_times_out_and_is_retried(fake_server: FakeOpenAI) -> None:
    outcome = chat(fake_server, Hang(send_headers=False), TextReply("ok"), read_timeout=0.3)
    assert outcome.ok.content == "ok"
    assert len(outcome.sleeps) == 1


def test_a_timeout_on_the_last_attempt_is_a_timeout_error(fake_server: FakeOpenAI) -> None:
    error = chat(fake_server, Hang(send_headers=False), read_timeout=0.2, max_retries=0).failed(
        APITimeoutError
    )
    assert "read_timeout" in str(error)


def test_retry_after_ms_is_honoured(fake_server: FakeOpenAI) -> None:
    outcome = chat(
        fake_server, ErrorReply(429, headers={"retry-after-ms": "1250"}), TextReply("ok")
    )
    assert outcome.sleeps == [1.25]


def test_retry_after_seconds_is_honoured(fake_server: FakeOpenAI) -> None:
    outcome = chat(fake_server, ErrorReply(503, headers={"retry-after": "7"}), TextReply("ok"))
    assert outcome.sleeps == [7.0]


def test_retry_after_as_an_http_date_is_honoured(fake_server: FakeOpenAI) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    outcome = chat(fake_server, ErrorReply(503, headers={"retry-after": when}), TextReply("ok"))
    (delay,) = outcome.sleeps
    assert 27 <= delay <= 31


@pytest.mark.parametrize(
    "headers",
    [
        {"retry-after": "soon"},
        {"retry-after": "-3"},
        {"retry-after": "Mon, 99 Foo 2024 99:99:99 GMT"},
    ],
    ids=["not a number or date", "negative", "bad date"],
)
def test_unreasonable_retry_after_falls_back_to_exponential_backoff(
    fake_server: FakeOpenAI, headers: dict[str, str]
) -> None:
    outcome = chat(
        fake_server, *[ErrorReply(429, headers=headers)] * 3, TextReply("ok"), max_retries=3
    )
    assert outcome.ok.content == "ok"
    first, second, third = outcome.sleeps
    assert 0.375 <= first <= 0.5
    assert 0.75 <= second <= 1.0
    assert 1.5 <= third <= 2.0


@pytest.mark.parametrize(
    ("headers", "asked"),
    [({"retry-after": "1000"}, "1,000 s"), ({"retry-after-ms": "90000"}, "90 s")],
)
def test_a_wait_longer_than_max_retry_wait_is_reported_not_waited_for(
    fake_server: FakeOpenAI, headers: dict[str, str], asked: str
) -> None:
    outcome = chat(fake_server, ErrorReply(429, headers=headers), TextReply("ok"), max_retries=3)
    error = outcome.failed(RateLimitError)
    assert outcome.sleeps == []
    assert len(chat_bodies(fake_server)) == 1
    assert f"asks to wait {asked}" in str(error) and "max_retry_wait" in str(error)


def test_a_long_wait_within_max_retry_wait_is_honoured(fake_server: FakeOpenAI) -> None:
    outcome = chat(
        fake_server,
        ErrorReply(429, headers={"retry-after": "120"}),
        TextReply("ok"),
        max_retry_wait=300,
    )
    assert outcome.ok.content == "ok"
    assert outcome.sleeps == [120.0]


def test_backoff_is_capped_at_eight_seconds(fake_server: FakeOpenAI) -> None:
    outcome = chat(fake_server, *[ErrorReply(500)] * 7, TextReply("ok"), max_retries=7)
    assert outcome.ok.content == "ok"
    assert 6.0 <= outcome.sleeps[-1] <= 8.0
    assert max(outcome.sleeps) <= 8.0


def test_x_should_retry_true_retries_what_would_not_be(fake_server: FakeOpenAI) -> None:
    outcome = chat(
        fake_server, ErrorReply(400, headers={"x-should-retry": "true"}), TextReply("ok")
    )
    assert outcome.ok.content == "ok"


def test_x_should_retry_false_stops_what_would_be_retried(fake_server: FakeOpenAI) -> None:
    outcome = chat(
        fake_server, ErrorReply(503, headers={"x-should-retry": "false"}), TextReply("ok")
    )
    outcome.failed(ServerError)
    assert len(chat_bodies(fake_server)) == 1


def test_payment_required_is_never_retried(fake_server: FakeOpenAI) -> None:
    outcome = chat(fake_server, ErrorReply(402, headers={"retry-after": "1"}), TextReply("ok"))
    error = outcome.failed(BadRequestError)
    assert "billing" in str(error)
    assert len(chat_bodies(fake_server)) == 1


def test_a_429_for_insufficient_quota_is_never_retried(fake_server: FakeOpenAI) -> None:
    body = {
        "error": {
            "message": "You exceeded your current quota.",
            "type": "insufficient_quota",
            "code": "insufficient_quota",
        }
    }
    outcome = chat(fake_server, ErrorReply(429, body, {"retry-after": "1"}), TextReply("ok"))
    error = outcome.failed(RateLimitError)
    assert "quota" in str(error)
    assert len(chat_bodies(fake_server)) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_not_retried(fake_server: FakeOpenAI, status: int) -> None:
    chat(fake_server, ErrorReply(status), TextReply("ok")).failed(APIStatusError)
    assert len(chat_bodies(fake_server)) == 1


def test_a_stream_that_breaks_after_it_started_is_not_retried(fake_server: FakeOpenAI) -> None:
    outcome = chat(fake_server, Disconnect(after_tokens=1), TextReply("ok"), max_retries=2)
    outcome.failed(IncompleteStreamError)
    assert len(chat_bodies(fake_server)) == 1


def test_each_wait_is_reported_as_a_retrying_event(fake_server: FakeOpenAI) -> None:
    outcome = chat(
        fake_server,
        ErrorReply(503, {"error": {"message": "busy"}}, {"retry-after": "2"}),
        ErrorReply(429, {"error": {"message": "slow"}}, {"retry-after": "3"}),
        TextReply("ok"),
        max_retries=2,
    )
    assert outcome.ok.content == "ok"
    first, second = outcome.retries
    assert (first.attempt, first.max_attempts, first.delay) == (1, 2, 2.0)
    assert (second.attempt, second.max_attempts, second.delay) == (2, 2, 3.0)
    assert "busy" in first.reason and "slow" in second.reason
    assert outcome.sleeps == [2.0, 3.0]


# --------------------------------------------------------------------------- stream_options (9)


def test_include_usage_is_sent_only_when_streaming(fake_server: FakeOpenAI) -> None:
    chat(fake_server, TextReply("a"))
    chat(fake_server, TextReply("b"), stream=False)
    streamed, plain = chat_bodies(fake_server)
    assert streamed["stream_options"] == {"include_usage": True}
    assert "stream_options" not in plain


def test_include_usage_can_be_turned_off(fake_server: FakeOpenAI) -> None:
    chat(fake_server, TextReply("a"), include_usage=False)
    assert "stream_options" not in chat_bodies(fake_server)[0]


def test_a_server_that_rejects_stream_options_still_works_and_is_remembered(
    fake_server: FakeOpenAI,
) -> None:
    def strict(request: RecordedRequest) -> ResponseSpec:
        if "stream_options" in request.json:
            return ErrorReply(
                400,
                {
                    "object": "error",
                    "code": 400,
                    "type": "BadRequestError",
                    "message": "Unrecognized request argument: stream_options",
                },
            )
        return TextReply("fine")

    fake_server.default = Dynamic(strict)
    client = new_client()
    outcome = chat(fake_server, client=client, calls=2)
    assert outcome.ok.content == "fine"
    first, retry, second_call = chat_bodies(fake_server)
    assert "stream_options" in first
    assert "stream_options" not in retry and "stream_options" not in second_call
    assert fake_server.base_url in client.rejects_stream_options


def test_a_bad_request_unrelated_to_stream_options_is_not_retried_without_it(
    fake_server: FakeOpenAI,
) -> None:
    chat(fake_server, ErrorReply(400, {"error": {"message": "bad role"}}), TextReply("x")).failed(
        BadRequestError
    )
    assert len(chat_bodies(fake_server)) == 1


# --------------------------------------------------------------------------- the request body


def test_parameters_not_set_are_not_sent(fake_server: FakeOpenAI) -> None:
    chat(fake_server, TextReply("a"))
    (body,) = chat_bodies(fake_server)
    assert set(body) == {"messages", "model", "max_tokens", "stream", "stream_options"}
    assert body["max_tokens"] == 1024
    assert body["messages"] == MESSAGES


def test_parameters_set_are_sent_and_zero_is_sent_as_zero(fake_server: FakeOpenAI) -> None:
    chat(
        fake_server,
        TextReply("a"),
        temperature=0,
        top_p=1,
        seed=0,
        presence_penalty=0,
        stop=["END"],
        max_tokens=7,
    )
    (body,) = chat_bodies(fake_server)
    assert body["temperature"] == 0 and body["seed"] == 0 and body["presence_penalty"] == 0
    assert body["top_p"] == 1 and body["stop"] == ["END"] and body["max_tokens"] == 7
    assert "frequency_penalty" not in body


def test_tools_and_tool_choice_are_sent_only_when_given(fake_server: FakeOpenAI) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    chat(fake_server, ToolCallReply([("f", "{}")]), tools=tools, tool_choice="auto")
    chat(fake_server, TextReply("a"))
    with_tools, without = chat_bodies(fake_server)
    assert with_tools["tools"] == tools and with_tools["tool_choice"] == "auto"
    assert "tools" not in without and "tool_choice" not in without


@pytest.mark.parametrize(
    "bad",
    [
        {"temperature": 3},
        {"temperature": -0.1},
        {"top_p": 1.5},
        {"max_tokens": 0},
        {"temperature": "hot"},
        {"presence_penalty": 2.5},
        {"seed": 1.5},
    ],
    ids=lambda b: next(iter(b)),
)
def test_out_of_range_parameters_fail_before_any_request(
    fake_server: FakeOpenAI, bad: dict[str, Any]
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        options(fake_server, **bad)
    assert next(iter(bad)) in str(caught.value)
    assert fake_server.requests == []


# --------------------------------------------------------------------------- the API key


def test_the_api_key_is_sent_as_a_bearer_header(fake_server: FakeOpenAI) -> None:
    fake_server.api_key = SECRET
    assert chat(fake_server, TextReply("in")).ok.content == "in"
    assert fake_server.requests[0].headers["authorization"] == f"Bearer {SECRET}"


def test_no_authorization_header_without_a_key(fake_server: FakeOpenAI) -> None:
    opts = ChatSettings(base_url=fake_server.base_url, model="m").resolve(env={})
    chat(fake_server, TextReply("a"), opts=opts)
    assert "authorization" not in fake_server.requests[0].headers


def test_the_api_key_never_appears_in_errors_even_when_the_server_echoes_it(
    fake_server: FakeOpenAI,
) -> None:
    echo = {
        "error": {
            "message": f"Incorrect API key provided: {SECRET}.",
            "code": "invalid_api_key",
            "param": SECRET,
        }
    }
    outcomes = [
        chat(fake_server, ErrorReply(401, echo)),
        chat(fake_server, ErrorReply(400, f"bad key {SECRET}")),
        chat(fake_server, RawReply.events([{"error": {"message": f"key {SECRET} revoked"}}])),
        chat(fake_server, Disconnect(after_tokens=1)),
        chat(fake_server, Hang(send_headers=False), read_timeout=0.1, max_retries=0),
    ]
    for outcome in outcomes:
        error = outcome.failed()
        for text in (
            str(error),
            repr(error),
            repr(error.args),
            json.dumps(getattr(error, "body", None), default=str),
        ):
            assert SECRET not in text
        assert all(SECRET not in repr(e) for e in outcome.events)
    assert "***" in str(outcomes[0].error)


def test_the_api_key_is_not_in_the_repr_of_the_options(fake_server: FakeOpenAI) -> None:
    opts = options(fake_server)
    assert opts.api_key is not None and opts.api_key.reveal() == SECRET
    assert SECRET not in repr(opts)
    assert SECRET not in repr(ChatSettings(api_key=SECRET))


# --------------------------------------------------------------------------- connection reuse


def test_one_connection_is_reused_across_streamed_and_plain_calls(fake_server: FakeOpenAI) -> None:
    opened: list[object] = []
    track = fake_server._track

    def counting(conn: socket.socket, *, add: bool) -> None:
        if add:
            opened.append(conn)
        track(conn, add=add)

    fake_server._track = counting  # type: ignore[method-assign]
    client = Client()

    async def main() -> None:
        try:
            for stream in (True, True, False, True):
                opts = options(fake_server, stream=stream)
                await client.chat(opts, MESSAGES, ChunkAccumulator())
            await client.list_models(options(fake_server))
            assert len(client._pools) == 1
        finally:
            await client.aclose()

    asyncio.run(main())
    assert len(fake_server.chat_requests) == 4
    assert len(opened) == 1


def test_a_plain_http_pool_needs_no_tls_and_no_pool_follows_redirects(
    fake_server: FakeOpenAI,
) -> None:
    client = Client()

    async def main() -> None:
        try:
            plain = client._pool("http://127.0.0.1:1/v1")
            secure = client._pool("https://example.invalid/v1")
            assert plain is not secure
            assert not plain.follow_redirects and not secure.follow_redirects
        finally:
            await client.aclose()

    asyncio.run(main())


def test_one_pool_serves_every_call_on_a_loop(fake_server: FakeOpenAI) -> None:
    client = Client()

    async def main() -> None:
        try:
            await client.chat(options(fake_server), MESSAGES, ChunkAccumulator())
            pool = client._pool(fake_server.base_url)
            await client.chat(options(fake_server), MESSAGES, ChunkAccumulator())
            assert client._pool(fake_server.base_url) is pool
            assert len(client._pools) == 1
        finally:
            await client.aclose()

    asyncio.run(main())


def test_several_streams_run_concurrently_on_one_client(fake_server: FakeOpenAI) -> None:
    # The server answers only once all four requests are in: serialized calls would time out.
    everyone = threading.Barrier(4, timeout=5)

    def together(request: RecordedRequest) -> ResponseSpec:
        everyone.wait()
        return TextReply(["a", "b", "c"])

    fake_server.default = Dynamic(together)
    client = new_client()

    async def main() -> list[Completion]:
        try:
            return await asyncio.gather(
                *(client.chat(options(fake_server), MESSAGES, ChunkAccumulator()) for _ in range(4))
            )
        finally:
            await client.aclose()

    results = asyncio.run(main())
    assert [r.content for r in results] == ["abc"] * 4


# --------------------------------------------------------------------------- /models (22)


def models(fake_server: FakeOpenAI, **settings: Any) -> list[ModelInfo]:
    async def main() -> list[ModelInfo]:
        client = new_client()
        try:
            return await client.list_models(options(fake_server, **settings))
        finally:
            await client.aclose()

    return asyncio.run(main())


def test_models_are_listed() -> None:
    with FakeOpenAI(models=["a", "b"]) as server:
        assert [m.id for m in models(server)] == ["a", "b"]
        assert server.requests[0].path == "/v1/models"
        assert server.requests[0].headers["authorization"] == f"Bearer {SECRET}"


def test_models_data_null_is_an_empty_list() -> None:
    with FakeOpenAI(models=None) as server:
        assert models(server) == []


def test_model_extra_fields_give_the_context_length() -> None:
    listing: list[dict[str, Any]] = [
        {"id": "vllm", "object": "model", "max_model_len": 32768, "owned_by": "vllm"},
        {"id": "llamacpp", "object": "model", "meta": {"n_ctx": 4096, "n_params": 1}},
        {"id": "groq", "object": "model", "context_window": 131072},
        {"id": "plain", "object": "model", "owned_by": 7},
    ]
    with FakeOpenAI(models=listing) as server:
        assert models(server) == [
            ModelInfo("vllm", "vllm", 32768),
            ModelInfo("llamacpp", None, 4096),
            ModelInfo("groq", None, 131072),
            ModelInfo("plain", None, None),
        ]


def test_models_missing_is_a_bad_request_error_with_a_hint() -> None:
    with FakeOpenAI(models=ErrorReply(404, {"detail": "Not Found"})) as server:
        with pytest.raises(BadRequestError) as caught:
            models(server)
        assert caught.value.status_code == 404
        assert len(server.requests) == 1


def test_models_needing_a_key_is_an_authentication_error() -> None:
    with (
        FakeOpenAI(models=ErrorReply(401, {"error": {"message": "key needed"}})) as server,
        pytest.raises(AuthenticationError),
    ):
        models(server)


def test_models_answering_garbage_is_an_empty_list() -> None:
    reply = RawReply(200, {"content-type": "text/html"}, [b"<html>hi</html>"], framing="length")
    with FakeOpenAI(models=reply) as server:
        assert models(server) == []


def test_models_retries_like_chat() -> None:
    with FakeOpenAI(models=ErrorReply(503)) as server:

        async def sleep(seconds: float) -> None:
            pass

        async def main() -> None:
            client = new_client(sleep=sleep)
            try:
                await client.list_models(options(server, max_retries=2))
            finally:
                await client.aclose()

        with pytest.raises(ServerError):
            asyncio.run(main())
        assert len(server.requests) == 3


# --------------------------------------------------------------------------- misc


def test_no_base_url_is_a_connection_error_before_any_request() -> None:
    opts = ChatSettings().resolve(env={})

    async def main() -> None:
        await Client().chat(opts, MESSAGES, ChunkAccumulator())

    with pytest.raises(APIConnectionError, match="No base URL"):
        asyncio.run(main())


def test_the_caller_keeps_the_accumulator_when_the_stream_breaks(fake_server: FakeOpenAI) -> None:
    outcome = chat(fake_server, Disconnect(after_tokens=2, text=["a", "b", "c"]))
    outcome.failed(IncompleteStreamError)
    assert outcome.accumulator.content == "ab"
    assert outcome.accumulator.has_output


def test_a_usage_chunk_after_finish_is_read(fake_server: FakeOpenAI) -> None:
    usage = {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}
    completion = chat(fake_server, TextReply(["a", "b"], usage=usage)).ok
    assert completion.usage == Usage(11, 2, 13)


def test_usage_is_none_when_the_server_sends_none(fake_server: FakeOpenAI) -> None:
    assert chat(fake_server, TextReply("a", usage=None)).ok.usage is None


def test_a_tool_call_stream_in_llama_cpp_python_style(fake_server: FakeOpenAI) -> None:
    spec = ToolCallReply(
        [("get_weather", {"city": "Paris"})], ids=["call_1"], chunk_style="llamacpp"
    )
    completion = chat(fake_server, spec).ok
    assert [(c.id, c.name, c.parsed_arguments()) for c in completion.tool_calls] == [
        ("call_1", "get_weather", {"city": "Paris"})
    ]


def test_options_are_not_mutated_by_a_call(fake_server: FakeOpenAI) -> None:
    opts = options(fake_server)
    before = replace(opts)
    chat(fake_server, TextReply("a"), opts=opts)
    assert opts == before


def test_models_as_a_bare_list_or_without_data_are_read() -> None:
    bare = RawReply(
        200, {"content-type": "application/json"}, [b'[{"id": "solo"}]'], framing="length"
    )
    with FakeOpenAI(models=bare) as server:
        assert [m.id for m in models(server)] == ["solo"]
    empty = RawReply(
        200, {"content-type": "application/json"}, [b'{"object": "list"}'], framing="length"
    )
    with FakeOpenAI(models=empty) as server:
        assert models(server) == []


# --------------------------------------------------------------------------- error bodies, pure


def test_an_html_page_is_summed_up_by_its_title() -> None:
    page = (
        "<html><head><title>example.com | 524: A timeout occurred</title><style>.cf{color:red}"
        "</style></head><body><div>Cloudflare Ray ID: 8a1b &bull; Performance &amp; security"
        "</div></body></html>"
    )
    assert parse_error_body(page).message == "example.com | 524: A timeout occurred"


def test_an_html_page_without_a_title_keeps_its_visible_text_only() -> None:
    page = "<html><body><script>var a = 1;</script><h1>Bad Gateway</h1> &amp; more</body></html>"
    assert parse_error_body(page).message == "Bad Gateway & more"


def test_an_empty_error_body_says_so() -> None:
    assert parse_error_body(b"").message == "(empty body)"


def test_long_error_messages_are_cut_to_one_short_line() -> None:
    info = parse_error_body({"error": {"message": "word\n" * 500}})
    assert "\n" not in info.message
    assert len(info.message) <= 300 and info.message.endswith("…")


@pytest.mark.parametrize("field", ["code", "type"])
@pytest.mark.parametrize("value", ["context_length_exceeded", "exceed_context_size_error"])
def test_context_length_is_recognised_by_code_or_type_alone(field: str, value: str) -> None:
    info = ErrorInfo(message="request rejected", **{field: value})
    assert is_context_length(info, 400)
    assert not is_context_length(ErrorInfo(message="request rejected"), 400)
