"""SSE framing (WIRE items 1-5): bytes from the network in, events out, however the reads fall."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tf_magics.client.chunks import ChunkAccumulator
from tf_magics.client.sse import SSEDecoder, SSEEvent
from tf_magics.types import Completion


def decode(*reads: bytes) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for read in reads:
        events += decoder.feed(read)
    return events + decoder.flush()


def datas(*reads: bytes) -> list[str]:
    return [event.data for event in decode(*reads)]


def every_split(data: bytes) -> list[tuple[bytes, bytes]]:
    return [(data[:i], data[i:]) for i in range(len(data) + 1)]


# --------------------------------------------------------------------------- line endings (1)


def test_lines_may_end_in_lf_crlf_or_a_bare_cr() -> None:
    body = b"data: lf\n\ndata: crlf\r\n\r\ndata: cr\r\rdata: mixed\n\r\n"
    assert datas(body) == ["lf", "crlf", "cr", "mixed"]


def test_a_cr_ending_one_read_and_its_lf_starting_the_next_are_one_line_break() -> None:
    # Read as two breaks, the LF would be an empty line that dispatches "a" on its own.
    assert datas(b"data: a\r", b"\ndata: b\r\n\r\n") == ["a\nb"]


def test_an_empty_read_between_a_cr_and_its_lf_changes_nothing() -> None:
    assert datas(b"data: a\r", b"", b"\ndata: b\r\n\r\n") == ["a\nb"]


def test_a_bare_cr_line_ending_is_not_held_back_waiting_for_an_lf() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r\r") == [SSEEvent("a")]


def test_a_multibyte_character_cut_by_a_read_boundary_survives() -> None:
    payload = {"text": "héllo → 🎉 日本"}
    body = b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n"
    for head, tail in every_split(body):
        events = decode(head, tail)
        assert [json.loads(e.data) for e in events] == [payload], (head, tail)


def test_a_multibyte_character_fed_one_byte_at_a_time_survives() -> None:
    body = "data: 🎉é\n\n".encode()
    assert datas(*(body[i : i + 1] for i in range(len(body)))) == ["🎉é"]


def test_unicode_line_separators_inside_json_do_not_split_the_line() -> None:
    # str.splitlines() would cut at U+2028, U+2029 and U+0085, all legal raw inside JSON strings.
    payload = {"content": "one\u2028two\u2029three\x85four"}
    body = b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n"
    assert [json.loads(d) for d in datas(body)] == [payload]


def test_a_byte_order_mark_at_the_start_of_the_stream_is_dropped() -> None:
    assert datas(b"\xef\xbb", b"\xbfdata: x\n\n") == ["x"]
    assert datas(b"\xef\xbb\xbf\ndata: y\n\n") == ["y"]


# --------------------------------------------------------------------------- fields (2)


def test_data_without_a_space_after_the_colon_is_legal() -> None:
    assert datas(b'data:{"a":1}\n\n') == ['{"a":1}']


def test_only_one_space_after_the_colon_is_removed() -> None:
    assert datas(b"data:  indented\n\n") == [" indented"]


def test_several_data_lines_are_joined_with_a_newline() -> None:
    assert datas(b"data: first\ndata: second\ndata:\n\n") == ["first\nsecond\n"]


def test_event_id_and_retry_lines_are_read() -> None:
    (event,) = decode(b"event: delta\nid: 42\nretry: 1500\ndata: x\n\n")
    assert event == SSEEvent(data="x", event="delta", id="42", retry=1500)


def test_the_event_name_applies_to_one_event_only() -> None:
    events = decode(b"event: special\ndata: a\n\ndata: b\n\n")
    assert [e.event for e in events] == ["special", "message"]


def test_the_last_event_id_carries_over_to_later_events() -> None:
    events = decode(b"id: 7\ndata: a\n\ndata: b\n\n")
    assert [e.id for e in events] == ["7", "7"]


def test_a_retry_that_is_not_ascii_digits_is_ignored() -> None:
    (event,) = decode("retry: ²\nretry: 1e3\ndata: x\n\n".encode())
    assert event.retry is None


def test_unknown_fields_are_ignored() -> None:
    assert datas(b"foo: bar\ndata: x\n\n") == ["x"]


# --------------------------------------------------------------------------- comments (3)


def test_comments_are_ignored_wherever_they_arrive() -> None:
    body = (
        b": OPENROUTER PROCESSING\n\n"
        b":\n"
        b"data: a\n"
        b": keep-alive in the middle of an event\n"
        b"data: b\n\n"
        b": ping\n\n"
    )
    decoder = SSEDecoder()
    events = decoder.feed(body) + decoder.flush()
    assert [e.data for e in events] == ["a\nb"]
    assert decoder.comments == 4


def test_comments_before_the_first_data_are_counted_as_signs_of_life() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b": ping\n\n") == []
    assert decoder.comments == 1
    assert decoder.lines == 2


def test_an_empty_body_has_no_lines() -> None:
    decoder = SSEDecoder()
    assert decoder.flush() == []
    assert decoder.lines == 0


# --------------------------------------------------------------------------- errors (4)


def test_an_event_error_frame_is_named_error() -> None:
    (event,) = decode(b'event: error\ndata: {"message": "boom"}\n\n')
    assert event.event == "error"
    assert json.loads(event.data) == {"message": "boom"}


def test_an_old_llama_cpp_error_line_becomes_an_error_event() -> None:
    (event,) = decode(b'error: {"code": 500, "message": "boom", "type": "server_error"}\n\n')
    assert event.event == "error"
    assert json.loads(event.data)["message"] == "boom"


# --------------------------------------------------------------------------- the end (5)


def test_done_without_a_trailing_blank_line_is_delivered_at_the_end() -> None:
    assert datas(b"data: a\n\ndata: [DONE]") == ["a", "[DONE]"]
    assert datas(b"data: a\n\ndata: [DONE]\n") == ["a", "[DONE]"]


def test_an_event_is_not_dispatched_before_its_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.feed(b"\n") == [SSEEvent("a")]


# --------------------------------------------------------------------------- any split (property)

_texts = st.text(
    alphabet=st.characters(exclude_categories=["Cs"]), max_size=12
)  # surrogates cannot be encoded
_endings = st.sampled_from([b"\n", b"\r\n", b"\r"])


@st.composite
def _streams(draw: st.DrawFn) -> tuple[bytes, list[dict[str, Any]]]:
    """A chat stream in wire bytes, with mixed line endings and comments; and its chunks."""
    pieces = draw(st.lists(_texts, max_size=6))
    chunks: list[dict[str, Any]] = [
        {"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant"}}]}
    ]
    chunks += [
        {"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"content": p}}]}
        for p in pieces
    ]
    chunks.append({"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    chunks.append({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}})
    body = b""
    for chunk in chunks:
        end = draw(_endings)
        if draw(st.booleans()):
            body += b": ping" + end
        text = json.dumps(chunk, ensure_ascii=draw(st.booleans()))
        body += b"data:" + draw(st.sampled_from([b"", b" "])) + text.encode() + end + end
    body += b"data: [DONE]" + draw(st.sampled_from([b"", b"\n", b"\n\n", b"\r\n\r\n"]))
    return body, chunks


def _reads(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def _fold(events: list[SSEEvent]) -> Completion:
    accumulator = ChunkAccumulator()
    for event in events:
        if event.data != "[DONE]":
            accumulator.feed(json.loads(event.data))
    return accumulator.completion(ended="done")


@settings(max_examples=200, deadline=None)
@given(stream=_streams(), cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=40))
def test_any_split_of_a_stream_into_reads_gives_the_same_events_and_completion(
    stream: tuple[bytes, list[dict[str, Any]]], cuts: list[int]
) -> None:
    body, chunks = stream
    whole = decode(body)
    split = decode(*_reads(body, cuts))
    assert split == whole
    assert [json.loads(e.data) for e in whole[:-1]] == chunks
    assert whole[-1].data == "[DONE]"
    completion = _fold(split)
    assert completion == _fold(whole)
    direct = ChunkAccumulator()
    for item in chunks:
        direct.feed(item)
    assert completion == direct.completion(ended="done")  # framing adds and loses nothing
    assert completion.usage is not None and completion.usage.total_tokens == 7


@settings(max_examples=100, deadline=None)
@given(stream=_streams())
def test_a_stream_fed_one_byte_at_a_time_gives_the_same_events(
    stream: tuple[bytes, list[dict[str, Any]]],
) -> None:
    body, _ = stream
    assert decode(*(body[i : i + 1] for i in range(len(body)))) == decode(body)


# --------------------------------------------------------------------------- feed_json fast path

_FRAMES = [
    b'data: {"choices": [{"delta": {"content": "plain"}}]}\n\n',
    b'data: {"choices":[{"delta":{"content":"caf\xc3\xa9 \xe2\x86\x92 \\u00e9"}}]}\n\n',
    b'data: {"n": 1}  \n\n',  # trailing spaces: json.loads accepts them
    b'data:{"no": "space"}\n\n',
    b'data: {"a": 1}{"b": 2}\n\n',  # two values: not JSON
    b'data: {"broken": \n\n',
    b'data: {"s": "unterminated\n\n',
    b"data: 42\n\n",
    b"data: not json\n\n",
    b'data: {"multi":\ndata: "line"}\n\n',
    b": keep-alive\n\n",
    b'event: error\ndata: {"error": {"message": "x"}}\n\n',
    b'id: 7\ndata: {"with": "id"}\n\n',
    b'data: {"crlf": true}\r\n\r\n',
    b'data: {"bad": "\xff"}\n\n',  # invalid UTF-8: replaced, line by line
    b'data: {"blank": "after"}\n\n\n',
    b"data: [DONE]\n\n",
]


def _as_decoded(events: list[SSEEvent]) -> list[tuple[str, Any]]:
    """What the client takes from each event: the name, and the JSON or else the raw data."""
    out: list[tuple[str, Any]] = []
    for event in events:
        try:
            out.append((event.event, json.loads(event.data)))
        except ValueError:
            out.append((event.event, event.data))
    return out


def decode_json(*reads: bytes) -> tuple[list[tuple[str, Any]], int]:
    decoder = SSEDecoder()
    out: list[tuple[str, Any]] = []
    fast = 0
    for read in reads:
        payloads = list(decoder.feed_json(read))
        fast += len(payloads)
        out += [("message", payload) for payload in payloads]
        out += _as_decoded(decoder.take_events())
    return out + _as_decoded(decoder.flush()), fast


@settings(max_examples=300, deadline=None)
@given(
    frames=st.lists(st.sampled_from(_FRAMES), max_size=12),
    bom=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=800), max_size=12),
)
def test_feed_json_gives_what_feed_and_json_loads_give_however_the_reads_fall(
    frames: list[bytes], bom: bool, cuts: list[int]
) -> None:
    body = (b"\xef\xbb\xbf" if bom else b"") + b"".join(frames)
    expected = _as_decoded(decode(body))
    assert decode_json(*_reads(body, cuts))[0] == expected
    assert decode_json(body)[0] == expected


def test_feed_json_decodes_a_read_of_plain_events_in_one_pass() -> None:
    chunks = [{"choices": [{"delta": {"content": f"token {i} ✓"}}]} for i in range(50)]
    body = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks)
    decoder = SSEDecoder()
    payloads = decoder.feed_json(body + b'data: [DONE]\n\ndata: {"after')
    assert next(payloads) == chunks[0]  # decoded one at a time
    with pytest.raises(RuntimeError, match="to the end"):
        decoder.take_events()
    assert [chunks[0], *payloads] == chunks
    assert decoder.take_events() == [SSEEvent("[DONE]")]
    assert decoder.lines == 102
    # The unfinished event waits for the rest of its line.
    assert list(decoder.feed_json(b'": 1}\n\n')) == [{"after": 1}]
    assert decoder.take_events() == []
