"""The scripted loopback server behaves as the other test layers rely on it to."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.paths import REPO_ROOT, WIRE
from tf_testing.fake_openai import (
    DEFAULT_TEXT,
    Disconnect,
    Dynamic,
    ErrorReply,
    FakeOpenAI,
    Hang,
    MidStreamError,
    RawReply,
    RecordedRequest,
    ReplayCapture,
    TextReply,
    ToolCallReply,
    chat_chunk,
    split_tokens,
    sse,
)
from tf_testing.markdown_text import make_markdown_tokens

MESSAGES = [{"role": "user", "content": "Say hello to the tests"}]


@pytest.fixture
def client(fake_server: FakeOpenAI) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake_server.base_url, timeout=5) as http:
        yield http


def chat(client: httpx.Client, stream: bool = True, **extra: Any) -> httpx.Response:
    return client.post(
        "/chat/completions", json={"model": "m", "messages": MESSAGES, "stream": stream, **extra}
    )


def events(text: str) -> list[Any]:
    """The data payloads of an SSE body: JSON objects, or the raw string (``[DONE]``)."""
    out: list[Any] = []
    for block in text.split("\n\n"):
        if block.startswith("data: "):
            data = block[len("data: ") :]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def content_of(payloads: list[Any], key: str = "content") -> str:
    return "".join(
        choice["delta"].get(key) or ""
        for p in payloads
        if isinstance(p, dict)
        for choice in p.get("choices", [])
    )


# --------------------------------------------------------------------------- basics


def test_base_url_points_at_loopback_v1(fake_server: FakeOpenAI) -> None:
    assert fake_server.base_url == f"http://127.0.0.1:{fake_server.port}/v1"


def test_close_frees_the_port_and_is_idempotent() -> None:
    fake = FakeOpenAI().start()
    port = fake.port
    fake.close()
    fake.close()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_default_reply_streams_when_asked(client: httpx.Client) -> None:
    payloads = events(chat(client).text)
    assert payloads[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert content_of(payloads) == DEFAULT_TEXT
    assert payloads[-2]["choices"][0]["finish_reason"] == "stop"
    assert payloads[-1] == "[DONE]"
    assert all(p["object"] == "chat.completion.chunk" for p in payloads[:-1])


def test_default_reply_is_a_json_completion_without_stream(client: httpx.Client) -> None:
    response = chat(client, stream=False)
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": DEFAULT_TEXT}
    assert body["usage"]["completion_tokens"] == len(split_tokens(DEFAULT_TEXT))


def test_stream_response_is_chunked_event_stream(client: httpx.Client) -> None:
    response = chat(client)
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["transfer-encoding"] == "chunked"


def test_models_default_and_configured(fake_server: FakeOpenAI, client: httpx.Client) -> None:
    assert [m["id"] for m in client.get("/models").json()["data"]] == ["fake-model"]
    fake_server.models = ["a", {"id": "b", "max_model_len": 4096}]
    assert client.get("/models").json()["data"][1] == {"id": "b", "max_model_len": 4096}
    fake_server.models = None
    assert client.get("/models").json() == {"object": "list", "data": None}
    fake_server.models = ErrorReply(404, {"detail": "Not Found"})
    assert client.get("/models").status_code == 404


def test_unknown_route_is_a_json_404(client: httpx.Client) -> None:
    response = client.post("/completions", json={})
    assert response.status_code == 404
    assert "Unknown route" in response.json()["error"]["message"]


def test_api_key_is_enforced_when_set() -> None:
    with FakeOpenAI(api_key="sk-test") as fake, httpx.Client(base_url=fake.base_url) as http:
        assert chat(http).status_code == 401
        ok = http.get("/models", headers={"authorization": "Bearer sk-test"})
        assert ok.status_code == 200


def test_a_text_only_model_refuses_images_like_openai_and_keeps_the_queue() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}
    with_image = [{"role": "user", "content": [image, {"type": "text", "text": "what?"}]}]
    with FakeOpenAI(vision=False) as fake, httpx.Client(base_url=fake.base_url) as http:
        fake.enqueue(TextReply("kept for later"))
        refused = http.post("/chat/completions", json={"messages": with_image})
        assert refused.status_code == 400
        error = refused.json()["error"]
        assert "image_url is only supported by certain models" in error["message"]
        assert error["type"] == "invalid_request_error"
        text_only = http.post("/chat/completions", json={"messages": MESSAGES})
        assert text_only.json()["choices"][0]["message"]["content"] == "kept for later"
    with FakeOpenAI() as fake, httpx.Client(base_url=fake.base_url) as http:
        assert http.post("/chat/completions", json={"messages": with_image}).status_code == 200
        fake.vision = False
        assert http.post("/chat/completions", json={"messages": with_image}).status_code == 400
        fake.reset()
        assert fake.vision is True


# --------------------------------------------------------------------------- recording


def test_requests_are_recorded_with_lowercase_headers(
    fake_server: FakeOpenAI, client: httpx.Client
) -> None:
    chat(client, temperature=0)
    client.get("/models", headers={"X-Custom": "Yes"})
    first, second = fake_server.requests
    assert (first.method, first.path) == ("POST", "/v1/chat/completions")
    assert first.headers["content-type"] == "application/json"
    assert json.loads(first.body) == first.json
    assert first.json["temperature"] == 0
    assert second.headers["x-custom"] == "Yes"
    assert fake_server.chat_requests == [first.json]
    fake_server.clear()
    assert fake_server.requests == []


def test_recording_is_thread_safe(fake_server: FakeOpenAI) -> None:
    def worker() -> None:
        with httpx.Client(base_url=fake_server.base_url) as http:
            for _ in range(5):
                chat(http)

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(fake_server.chat_requests) == 50


def test_invalid_json_body_is_a_400_and_keeps_the_queue(
    fake_server: FakeOpenAI, client: httpx.Client
) -> None:
    fake_server.enqueue(TextReply("kept"))
    response = client.post("/chat/completions", content=b"{nope")
    assert response.status_code == 400
    assert fake_server.requests[0].json is None
    assert fake_server.pending == 1


# --------------------------------------------------------------------------- scripting


def test_queue_is_fifo_then_default(fake_server: FakeOpenAI, client: httpx.Client) -> None:
    fake_server.enqueue(TextReply("one"), TextReply("two"))
    assert [content_of(events(chat(client).text)) for _ in range(3)] == ["one", "two", DEFAULT_TEXT]


def test_explicit_pieces_are_sent_one_per_delta(
    fake_server: FakeOpenAI, client: httpx.Client
) -> None:
    fake_server.enqueue(TextReply(["Hé", "llo", " 🎉"]))
    payloads = events(chat(client).text)
    assert [p["choices"][0]["delta"].get("content") for p in payloads[1:4]] == ["Hé", "llo", " 🎉"]


def test_usage_chunk_only_with_include_usage(fake_server: FakeOpenAI, client: httpx.Client) -> None:
    plain = events(chat(client).text)
    assert all("usage" not in p for p in plain[:-1])
    asked = events(chat(client, stream_options={"include_usage": True}).text)
    final = asked[-2]
    assert final["choices"] == []
    assert final["usage"]["completion_tokens"] == 3
    assert all(p["usage"] is None for p in asked[:-2])


def test_explicit_usage_and_no_usage(fake_server: FakeOpenAI, client: httpx.Client) -> None:
    fake_server.enqueue(TextReply("x", usage={"prompt_tokens": 7, "completion_tokens": 1}))
    fake_server.enqueue(TextReply("x", usage=None))
    assert chat(client, stream=False).json()["usage"] == {
        "prompt_tokens": 7,
        "completion_tokens": 1,
    }
    assert "usage" not in chat(client, stream=False).json()


def test_reasoning_comes_before_content(fake_server: FakeOpenAI, client: httpx.Client) -> None:
    fake_server.enqueue(TextReply("Answer.", reasoning="Let me think."))
    fake_server.enqueue(TextReply("Answer.", reasoning="Hm.", reasoning_field="reasoning"))
    payloads = events(chat(client).text)
    assert content_of(payloads, "reasoning_content") == "Let me think."
    kinds = [next(iter(p["choices"][0]["delta"])) for p in payloads[1:-2]]
    assert kinds == ["reasoning_content"] * 3 + ["content"]
    message = chat(client, stream=False).json()["choices"][0]["message"]
    assert message["reasoning"] == "Hm."


def test_finish_variants(fake_server: FakeOpenAI, client: httpx.Client) -> None:
    fake_server.enqueue(TextReply("a b", finish_reason="length", finish_on_last_chunk=True))
    fake_server.enqueue(TextReply("a b", finish_reason=None, send_done=False, role_chunk=False))
    inline = events(chat(client).text)
    assert inline[-2]["choices"][0] == {
        "index": 0,
        "delta": {"content": " b"},
        "logprobs": None,
        "finish_reason": "length",
    }
    bare = events(chat(client).text)
    assert [p["choices"][0]["delta"] for p in bare] == [{"content": "a"}, {"content": " b"}]


def test_model_none_echoes_the_request(fake_server: FakeOpenAI, client: httpx.Client) -> None:
    fake_server.enqueue(TextReply("x", model=None))
    assert events(chat(client).text)[0]["model"] == "m"


def test_llamacpp_style_matches_the_capture_shape(
    fake_server: FakeOpenAI, client: httpx.Client
) -> None:
    fake_server.enqueue(TextReply("Hi", chunk_style="llamacpp"))
    text = chat(client, stream_options={"include_usage": True}).text
    captured = events(ReplayCapture(WIRE / "stream-text.response.http").body.decode())
    ours = events(text)
    assert [list(p) for p in ours[:-1]] == [list(p) for p in captured[: len(ours) - 1]]
    assert ours[0]["choices"][0]["delta"] == {"role": "assistant"}
    assert ours[-2]["choices"][0] == captured[-2]["choices"][0]
    assert '"object": "chat.completion.chunk"' in text  # json.dumps spacing, as captured


def test_tool_calls_stream_in_fragments(fake_server: FakeOpenAI, client: httpx.Client) -> None:
    arguments = '{"city": "Paris", "unit": "celsius"}'
    fake_server.enqueue(ToolCallReply([("get_weather", arguments)], fragments=4, ids=["call_1"]))
    payloads = events(chat(client).text)
    deltas = [p["choices"][0]["delta"] for p in payloads[:-1]]
    calls = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    assert calls[0] == {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert all(set(c) == {"index", "function"} for c in calls[1:])
    assert "".join(c["function"]["arguments"] for c in calls) == arguments
    assert len(calls) == 5
    assert payloads[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_tool_calls_can_repeat_id_and_name(fake_server: FakeOpenAI, client: httpx.Client) -> None:
    fake_server.enqueue(
        ToolCallReply(
            [("a", "{}"), ("b", {"x": 1})], repeat_id_and_name=True, content_before="Calling."
        )
    )
    deltas = [p["choices"][0]["delta"] for p in events(chat(client).text)[:-1]]
    calls = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    assert all({"id", "type"} <= set(c) and c["function"]["name"] for c in calls)
    assert {c["index"] for c in calls} == {0, 1}
    assert "".join(d.get("content") or "" for d in deltas) == "Calling."


def test_tool_calls_without_stream(fake_server: FakeOpenAI, client: httpx.Client) -> None:
    fake_server.enqueue(ToolCallReply([("f", '{"a": 1}')], ids=["call_9"]))
    choice = chat(client, stream=False).json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"] == [
        {"id": "call_9", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    ]


def test_llamacpp_tool_stream_has_nulls_and_legacy_copy(
    fake_server: FakeOpenAI, client: httpx.Client
) -> None:
    fake_server.enqueue(ToolCallReply([("get_weather", "{}")], chunk_style="llamacpp"))
    deltas = [p["choices"][0]["delta"] for p in events(chat(client).text)[:-1]]
    assert deltas[0] == {
        "role": "assistant",
        "content": None,
        "function_call": None,
        "tool_calls": None,
    }
    assert all(d["function_call"]["name"] == "get_weather" for d in deltas[1:-1])
    assert deltas[-2]["tool_calls"][0]["function"]["arguments"] == ""
    assert deltas[-1] == {"role": None, "content": None, "function_call": None, "tool_calls": None}


def test_error_reply_status_headers_and_bodies(
    fake_server: FakeOpenAI, client: httpx.Client
) -> None:
    error = {"error": {"message": "Rate limited", "code": "rate_limit_exceeded"}}
    fake_server.enqueue(ErrorReply(429, error, {"Retry-After-Ms": "20", "retry-after": "1"}))
    fake_server.enqueue(ErrorReply(502, "<html>Bad gateway</html>"))
    limited = chat(client)
    assert limited.status_code == 429
    assert limited.json() == error
    assert (limited.headers["retry-after-ms"], limited.headers["retry-after"]) == ("20", "1")
    proxy = chat(client)
    assert proxy.status_code == 502
    assert proxy.headers["content-type"].startswith("text/plain")
    assert proxy.text == "<html>Bad gateway</html>"


def test_raw_reply_writes_exact_bytes_with_pauses(
    fake_server: FakeOpenAI, client: httpx.Client
) -> None:
    fake_server.enqueue(
        RawReply(200, {"x-test": "1"}, [b'data: {"a":', 0.05, b"1}\r", 0.05, b"\n\r\n"])
    )
    reads: list[tuple[float, bytes]] = []
    start = time.perf_counter()
    with client.stream("POST", "/chat/completions", json={"messages": []}) as response:
        assert "content-type" not in response.headers
        for chunk in response.iter_raw():
            reads.append((time.perf_counter() - start, chunk))
    assert b"".join(c for _, c in reads) == b'data: {"a":1}\r\n\r\n'
    assert [c for _, c in reads] == [b'data: {"a":', b"1}\r", b"\n\r\n"]
    assert reads[-1][0] >= 0.09


def test_raw_reply_events_helper_and_close_framing(
    fake_server: FakeOpenAI, client: httpx.Client
) -> None:
    fake_server.enqueue(RawReply.events([chat_chunk({"content": "x"}), "[DONE]"]))
    fake_server.enqueue(
        RawReply(200, {"content-type": "application/json"}, [b"{}"], framing="close")
    )
    assert chat(client).content == sse(chat_chunk({"content": "x"})) + b"data: [DONE]\n\n"
    closing = chat(client)
    assert closing.headers["connection"] == "close"
    assert closing.json() == {}


def test_mid_stream_error_then_done(fake_server: FakeOpenAI, client: httpx.Client) -> None:
    fake_server.enqueue(
        MidStreamError(after_tokens=2, error={"message": "boom", "type": "server_error"})
    )
    fake_server.enqueue(MidStreamError(error={"message": "boom"}))
    payloads = events(chat(client).text)
    assert content_of(payloads) == "Partial answer"
    assert payloads[-2] == {"error": {"message": "boom", "type": "server_error"}}
    assert payloads[-1] == "[DONE]"
    assert chat(client, stream=False).json() == {"error": {"message": "boom"}}


def test_disconnect_cuts_the_stream_without_noise(
    fake_server: FakeOpenAI, client: httpx.Client, capfd: pytest.CaptureFixture[str]
) -> None:
    fake_server.enqueue(Disconnect(after_tokens=2))
    received: list[bytes] = []
    with client.stream("POST", "/chat/completions", json={"stream": True}) as response:
        assert response.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
            received.extend(response.iter_raw())
    payloads = events(b"".join(received).decode())
    assert content_of(payloads) == "Partial answer"
    assert b"[DONE]" not in b"".join(received)
    assert chat(client).status_code == 200  # the server carries on
    assert capfd.readouterr().err == ""


def test_disconnect_before_headers_and_mid_body(
    fake_server: FakeOpenAI, client: httpx.Client
) -> None:
    fake_server.enqueue(Disconnect(before_headers=True), Disconnect())
    with pytest.raises(httpx.RemoteProtocolError, match="without sending"):
        chat(client)
    with pytest.raises(httpx.RemoteProtocolError):
        chat(client, stream=False)


def test_client_hanging_up_mid_stream_is_quiet(
    fake_server: FakeOpenAI, client: httpx.Client, capfd: pytest.CaptureFixture[str]
) -> None:
    fake_server.enqueue(TextReply(["x"] * 1000, tokens_per_second=200))
    with client.stream("POST", "/chat/completions", json={"stream": True, "messages": []}) as r:
        next(r.iter_raw())
    time.sleep(0.05)
    assert chat(client).status_code == 200
    assert capfd.readouterr().err == ""


def test_hang_times_out_the_client_and_close_is_quick(fake_server: FakeOpenAI) -> None:
    fake_server.enqueue(Hang(), Hang(send_headers=False))
    with httpx.Client(base_url=fake_server.base_url, timeout=0.2) as http:
        with http.stream("POST", "/chat/completions", json={"stream": True}) as response:
            assert response.status_code == 200
            with pytest.raises(httpx.ReadTimeout):
                response.read()
        with pytest.raises(httpx.ReadTimeout):
            chat(http)
    start = time.perf_counter()
    fake_server.close()
    assert time.perf_counter() - start < 1.0


def test_hang_ends_after_its_seconds(fake_server: FakeOpenAI, client: httpx.Client) -> None:
    fake_server.enqueue(Hang(0.1))
    with pytest.raises(httpx.RemoteProtocolError):
        chat(client)


def test_dynamic_answers_from_the_request(fake_server: FakeOpenAI, client: httpx.Client) -> None:
    def answer(request: RecordedRequest) -> TextReply:
        return TextReply(f"You said {len(request.json['messages'])} messages.")

    fake_server.default = Dynamic(answer)
    assert content_of(events(chat(client).text)) == "You said 1 messages."


def test_dynamic_failure_is_a_500_and_recorded() -> None:
    with FakeOpenAI() as fake, httpx.Client(base_url=fake.base_url) as http:
        fake.enqueue(Dynamic(lambda request: 1 / 0))  # type: ignore[arg-type,return-value]
        response = chat(http)
        assert response.status_code == 500
        assert "ZeroDivisionError" in response.json()["error"]["message"]
        assert isinstance(fake.errors[0], ZeroDivisionError)


def test_reset_restores_everything(fake_server: FakeOpenAI, client: httpx.Client) -> None:
    fake_server.enqueue(TextReply("a"))
    fake_server.models = None
    fake_server.default = TextReply("b")
    chat(client)
    fake_server.reset()
    assert (fake_server.pending, fake_server.requests) == (0, [])
    assert client.get("/models").json()["data"][0]["id"] == "fake-model"
    assert content_of(events(chat(client).text)) == DEFAULT_TEXT


def test_wait_for_requests(fake_server: FakeOpenAI, client: httpx.Client) -> None:
    threading.Timer(0.05, lambda: chat(client)).start()
    assert len(fake_server.wait_for_requests(1, timeout=2)) == 1
    with pytest.raises(TimeoutError):
        fake_server.wait_for_requests(5, timeout=0.05)


# --------------------------------------------------------------------------- replay


def test_replay_stream_text_is_byte_identical(
    fake_server: FakeOpenAI, client: httpx.Client
) -> None:
    capture = ReplayCapture(WIRE / "stream-text.response.http")
    fake_server.enqueue(
        capture, ReplayCapture(WIRE / "stream-text.response.http", split_events=True)
    )
    for _ in range(2):
        response = chat(client)
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert response.headers["transfer-encoding"] == "chunked"
        assert response.content == capture.body
    assert capture.body.endswith(b"data: [DONE]\n\n")


def test_replay_empty_stream_and_stale_content_length(
    fake_server: FakeOpenAI, client: httpx.Client
) -> None:
    fake_server.enqueue(ReplayCapture(WIRE / "error-context-overflow.response.http"))
    error = ReplayCapture(WIRE / "error-bad-param.response.http")
    fake_server.enqueue(error)
    empty = chat(client)
    assert (empty.status_code, empty.content) == (200, b"")
    assert empty.headers["content-type"].startswith("text/event-stream")
    failed = chat(client)
    assert failed.status_code == 500
    assert failed.headers["content-length"] == str(len(error.body))
    assert failed.json()["error"]["type"] == "internal_server_error"


# --------------------------------------------------------------------------- timing


def test_rate_pacing_and_first_token_delay(fake_server: FakeOpenAI, client: httpx.Client) -> None:
    fake_server.enqueue(TextReply(["t"] * 21, tokens_per_second=100, first_token_delay=0.1))
    arrivals: list[float] = []
    start = time.perf_counter()
    with client.stream("POST", "/chat/completions", json={"stream": True}) as response:
        headers_at = time.perf_counter() - start
        for line in response.iter_lines():
            if '"content":"t"' in line:
                arrivals.append(time.perf_counter() - start)
    assert headers_at < 0.08  # headers go out before the first-token delay
    assert 0.09 <= arrivals[0] < 0.2
    assert 0.18 <= arrivals[-1] - arrivals[0] < 0.35  # 20 intervals at 100 tokens/s
    assert len(arrivals) == 21


def test_non_stream_waits_for_the_whole_reply(
    fake_server: FakeOpenAI, client: httpx.Client
) -> None:
    fake_server.enqueue(TextReply(["t"] * 10, tokens_per_second=100))
    start = time.perf_counter()
    chat(client, stream=False)
    assert 0.09 <= time.perf_counter() - start < 0.3


def test_unpaced_long_stream_is_fast_and_complete(
    fake_server: FakeOpenAI, client: httpx.Client
) -> None:
    tokens = make_markdown_tokens(8000)
    fake_server.enqueue(TextReply(tokens))
    start = time.perf_counter()
    with client.stream("POST", "/chat/completions", json={"stream": True}) as response:
        body = response.read()
    assert time.perf_counter() - start < 1.0
    payloads = events(body.decode())
    assert content_of(payloads) == "".join(tokens)
    assert len(payloads) == 8000 + 3


def test_many_concurrent_paced_streams(fake_server: FakeOpenAI) -> None:
    fake_server.default = TextReply(["x"] * 20, tokens_per_second=100)
    results: list[str] = []
    limits = httpx.Limits(max_connections=40)
    with httpx.Client(base_url=fake_server.base_url, timeout=5, limits=limits) as http:

        def worker() -> None:
            results.append(content_of(events(chat(http).text)))

        threads = [threading.Thread(target=worker) for _ in range(40)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert results == ["x" * 20] * 40
    assert time.perf_counter() - start < 1.5  # concurrent, not 40 x 0.2 s


# --------------------------------------------------------------------------- in flight, 429s


def _concurrent_chats(fake_server: FakeOpenAI, count: int) -> list[httpx.Response]:
    """``count`` non-streamed requests sent at once, each on its own connection."""
    responses: list[httpx.Response] = []
    lock = threading.Lock()
    limits = httpx.Limits(max_connections=count)
    with httpx.Client(base_url=fake_server.base_url, timeout=10, limits=limits) as http:

        def worker() -> None:
            response = chat(http, stream=False)
            with lock:
                responses.append(response)

        threads = [threading.Thread(target=worker) for _ in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return responses


def test_peak_in_flight_counts_requests_answered_at_once(fake_server: FakeOpenAI) -> None:
    fake_server.default = TextReply("ok", first_token_delay=0.3)
    assert (fake_server.in_flight, fake_server.peak_in_flight) == (0, 0)
    responses = _concurrent_chats(fake_server, 6)
    assert [r.status_code for r in responses] == [200] * 6
    assert fake_server.peak_in_flight == 6  # all six were held for 0.3 s together
    assert fake_server.in_flight == 0
    fake_server.reset_counters()
    assert fake_server.peak_in_flight == 0
    with httpx.Client(base_url=fake_server.base_url, timeout=5) as http:
        chat(http, stream=False)
    assert fake_server.peak_in_flight == 1


def test_requests_above_the_in_flight_limit_get_429(fake_server: FakeOpenAI) -> None:
    fake_server.default = TextReply("ok", first_token_delay=0.4)
    fake_server.max_in_flight = 3
    fake_server.enqueue(TextReply("queued", first_token_delay=0.4))
    responses = _concurrent_chats(fake_server, 5)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 200, 200, 429, 429]
    refused = [r for r in responses if r.status_code == 429]
    assert refused[0].json()["error"]["code"] == "rate_limit_exceeded"
    assert fake_server.rejected == 2
    # The refusals did not use the queue: the one queued reply went to an accepted request.
    assert fake_server.pending == 0
    answered = [r.json()["choices"][0]["message"]["content"] for r in responses if r.is_success]
    assert sorted(answered) == [
        "ok",
        "ok",
        "queued",
    ]


def test_the_over_limit_answer_can_ask_to_wait(fake_server: FakeOpenAI) -> None:
    fake_server.default = TextReply("ok", first_token_delay=0.3)
    fake_server.max_in_flight = 1
    fake_server.over_limit = ErrorReply(
        429, {"error": {"message": "wait"}}, {"retry-after-ms": "5"}
    )
    responses = _concurrent_chats(fake_server, 2)
    (refused,) = [r for r in responses if r.status_code == 429]
    assert refused.headers["retry-after-ms"] == "5"


def test_a_request_is_no_longer_counted_once_its_reply_has_arrived(
    fake_server: FakeOpenAI, client: httpx.Client
) -> None:
    # A client that sends the next request as soon as a reply ends must never find the previous
    # one still counted (the count drops before the last bytes are written).
    fake_server.max_in_flight = 1
    for _ in range(30):
        assert chat(client, stream=False).status_code == 200
        assert chat(client).status_code == 200
    assert fake_server.rejected == 0 and fake_server.peak_in_flight == 1


def test_a_client_that_hangs_up_leaves_nothing_in_flight(fake_server: FakeOpenAI) -> None:
    fake_server.default = Hang(seconds=30)
    with (
        httpx.Client(base_url=fake_server.base_url, timeout=5) as http,
        http.stream("POST", "/chat/completions", json={"stream": True}) as response,
    ):
        assert response.status_code == 200
        assert fake_server.in_flight == 1
    fake_server.wait_until_idle(timeout=5)
    assert fake_server.in_flight == 0


# --------------------------------------------------------------------------- helpers


def test_split_tokens_round_trips() -> None:
    text = "  Hello,  world!\n\nNew  paragraph \n"
    assert "".join(split_tokens(text)) == text
    assert split_tokens("Hello from fake-model.") == ["Hello", " from", " fake-model."]


def test_command_line_server_takes_a_latency_and_an_in_flight_limit() -> None:
    command = [
        sys.executable,
        "-m",
        "tf_testing.fake_openai",
        "--first-token-delay",
        "0.3",
        "--max-in-flight",
        "1",
    ]
    with subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            base_url = process.stdout.readline().strip()
            limits = httpx.Limits(max_connections=2)
            with httpx.Client(base_url=base_url, timeout=5, limits=limits) as http:
                statuses: list[int] = []
                threads = [
                    threading.Thread(target=lambda: statuses.append(chat(http).status_code))
                    for _ in range(2)
                ]
                began = time.perf_counter()
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                took = time.perf_counter() - began
            assert sorted(statuses) == [200, 429]
            assert took >= 0.3
        finally:
            process.terminate()
            assert process.wait(timeout=5) == 0


def test_command_line_server_prints_its_url_and_serves() -> None:
    command = [sys.executable, "-m", "tf_testing.fake_openai", "--tokens", "50", "--rate", "1000"]
    # As a context manager, Popen closes the stdout pipe when done (no unclosed file left behind).
    with subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            base_url = process.stdout.readline().strip()
            assert base_url.startswith("http://127.0.0.1:")
            assert base_url.endswith("/v1")
            with httpx.Client(base_url=base_url, timeout=5) as http:
                payloads = events(chat(http).text)
            assert content_of(payloads) == "".join(make_markdown_tokens(50))
        finally:
            process.terminate()
            assert process.wait(timeout=5) == 0
