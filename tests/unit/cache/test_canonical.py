"""The key of a request: what decides the reply, and nothing that only concerns the transport."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tf_magics.cache import canonical_request, request_key
from tf_magics.cache.canonical import encode


def _body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?"},
        ],
        "model": "m1",
        "max_tokens": 40,
        "temperature": 0.0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    body.update(changes)
    return body


def _with_tools(first_id: str, second_id: str) -> dict[str, Any]:
    call = {"type": "function", "function": {"name": "weather", "arguments": '{"city": "Paris"}'}}
    return _body(
        messages=[
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "assistant", "content": "", "tool_calls": [{**call, "id": first_id}]},
            {"role": "tool", "tool_call_id": first_id, "content": "18"},
            {"role": "assistant", "content": "", "tool_calls": [{**call, "id": second_id}]},
            {"role": "tool", "tool_call_id": second_id, "content": "24"},
        ]
    )


def test_transport_fields_are_not_part_of_the_request() -> None:
    request = canonical_request(_body())
    assert "stream" not in request and "stream_options" not in request
    assert request_key(request) == request_key(canonical_request(_body(stream=False)))
    assert request_key(request) == request_key(canonical_request(_body(stream_options=None)))


def test_what_decides_the_reply_changes_the_key() -> None:
    key = request_key(canonical_request(_body()))
    for change in (
        {"temperature": 0.7},
        {"max_tokens": 41},
        {"seed": 3},
        {"tools": [{"type": "function", "function": {"name": "f"}}]},
        {"tool_choice": "required"},
        {"response_format": {"type": "json_object"}},
        {"top_k": 5},  # a provider field from extra_body
        {"messages": [{"role": "user", "content": "Weather in Rome?"}]},
    ):
        assert request_key(canonical_request(_body(**change))) != key, change


def test_the_model_is_kept_beside_the_key_not_in_it() -> None:
    first = canonical_request(_body(model="m1"))
    second = canonical_request(_body(model="m2"))
    unnamed = canonical_request(_body(model=None))
    assert first["model"] == "m1" and "model" not in unnamed
    assert request_key(first) == request_key(second) == request_key(unnamed)


def test_tool_call_ids_are_numbered_by_position() -> None:
    request = canonical_request(_with_tools("call_a8f3", "call_77x"))
    messages = request["messages"]
    assert messages[1]["tool_calls"][0]["id"] == "call_1"
    assert messages[2]["tool_call_id"] == "call_1"
    assert messages[3]["tool_calls"][0]["id"] == "call_2"
    assert messages[4]["tool_call_id"] == "call_2"
    # Another server's random ids, or one that reuses "call_0" every round: the same request.
    assert request_key(request) == request_key(canonical_request(_with_tools("x", "y")))
    assert request_key(request) == request_key(canonical_request(_with_tools("call_0", "call_0")))


def test_the_body_is_left_alone() -> None:
    body = _with_tools("call_a8f3", "call_77x")
    before = json.dumps(body, sort_keys=True)
    canonical_request(body)
    assert json.dumps(body, sort_keys=True) == before


def test_encoding_is_stable_and_keeps_text_as_it_is() -> None:
    assert encode({"b": 1, "a": "é"}) == '{"a":"é","b":1}'


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)


@given(st.dictionaries(st.text(min_size=1, max_size=8), json_values, max_size=6))
def test_key_order_never_matters(extra: dict[str, Any]) -> None:
    body = {**_body(), **{f"x_{k}": v for k, v in extra.items()}}
    reordered = dict(reversed(list(body.items())))
    assert request_key(canonical_request(body)) == request_key(canonical_request(reordered))
