"""Chunk shapes (WIRE items 7-16): what real servers stream, folded into one Completion."""

from __future__ import annotations

import dataclasses
import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tf_magics.client.chunks import ChunkAccumulator, completion_from_response
from tf_magics.client.think_tags import ThinkTagSplitter
from tf_magics.events import ContentDelta, Event, ReasoningDelta, ToolCallDelta
from tf_magics.types import Completion, Ending, Usage


def chunk(
    delta: dict[str, Any] | None = None,
    finish: str | None = None,
    *,
    index: int | None = 0,
    **top: Any,
) -> dict[str, Any]:
    choice: dict[str, Any] = {"delta": {} if delta is None else delta, "finish_reason": finish}
    if index is not None:
        choice["index"] = index
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [choice],
        **top,
    }


def fold(*chunks: Any, ended: Ending = "done") -> Completion:
    accumulator = ChunkAccumulator()
    for item in chunks:
        accumulator.feed(json.loads(item) if isinstance(item, str) else item)
    return accumulator.completion(ended=ended)


def events_of(*chunks: Any) -> list[Event]:
    accumulator = ChunkAccumulator()
    events: list[Event] = []
    for item in chunks:
        events += accumulator.feed(item)
    return events


def tool(
    index: int | None = 0,
    id: str | None = None,
    name: str | None = None,
    arguments: Any = None,
    **extra: Any,
) -> dict[str, Any]:
    """One ``tool_calls`` entry; keys left as None are omitted."""
    entry: dict[str, Any] = dict(extra)
    if index is not None:
        entry["index"] = index
    if id is not None:
        entry["id"] = id
        entry.setdefault("type", "function")
    function: dict[str, Any] = {}
    if name is not None:
        function["name"] = name
    if arguments is not None:
        function["arguments"] = arguments
    entry["function"] = function
    return entry


def calls(completion: Completion) -> list[tuple[str, str, Any]]:
    return [(c.id, c.name, c.parsed_arguments()) for c in completion.tool_calls]


# --------------------------------------------------------------------------- first chunks (7)

FIRST_CHUNKS = {
    "openai": '{"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt","choices":'
    '[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,'
    '"finish_reason":null}]}',
    "llama.cpp content null": '{"choices":[{"finish_reason":null,"index":0,"delta":{"role":'
    '"assistant","content":null}}],"created":1,"id":"c","model":"gpt","object":'
    '"chat.completion.chunk"}',
    "llama-cpp-python role only": '{"id": "c", "model": "gpt", "created": 1, "object": '
    '"chat.completion.chunk", "choices": [{"index": 0, "delta": {"role": "assistant"}, '
    '"logprobs": null, "finish_reason": null}]}',
    "sglang all null": '{"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt",'
    '"choices":[{"index":0,"delta":{"role":"assistant","content":null,"reasoning_content":null,'
    '"tool_calls":null},"logprobs":null,"finish_reason":null,"matched_stop":null}],"usage":null}',
    "azure filter results": '{"choices":[],"created":0,"id":"","model":"","object":"",'
    '"prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]}',
}


@pytest.mark.parametrize("first", FIRST_CHUNKS.values(), ids=FIRST_CHUNKS.keys())
def test_every_first_chunk_shape_adds_nothing_and_breaks_nothing(first: str) -> None:
    completion = fold(
        first,
        chunk({"content": "Hi"}, model="gpt"),
        chunk({"content": " there"}, model="gpt"),
        chunk({}, "stop", model="gpt"),
    )
    assert completion.content == "Hi there"
    assert completion.reasoning == ""
    assert completion.tool_calls == []
    assert completion.finish_reason == "stop"
    assert completion.model == "gpt"


def test_a_first_chunk_alone_gives_an_empty_reply_not_a_none() -> None:
    completion = fold(FIRST_CHUNKS["llama.cpp content null"])
    assert completion.content == ""
    assert completion.tool_calls == []


def test_llama_cpp_python_final_empty_delta_ends_the_reply() -> None:
    completion = fold(chunk({"role": "assistant"}), chunk({"content": "Red."}), chunk({}, "stop"))
    assert (completion.content, completion.finish_reason) == ("Red.", "stop")


def test_a_role_repeated_in_every_chunk_is_harmless() -> None:
    # TGI
    completion = fold(
        chunk({"role": "assistant", "content": "a"}),
        chunk({"role": "assistant", "content": "b"}),
        chunk({"role": "assistant", "content": ""}, "eos_token"),
    )
    assert completion.content == "ab"


def test_an_empty_string_content_is_nothing_and_zero_like_text_is_kept() -> None:
    # No truthiness: "0" is content.
    completion = fold(chunk({"content": ""}), chunk({"content": "0"}), chunk({"content": None}))
    assert completion.content == "0"


def test_choices_are_keyed_by_index_and_a_second_choice_is_ignored() -> None:
    completion = fold(
        chunk({"content": "other"}, index=1),
        chunk({"content": "mine"}, index=0),
        chunk({"content": " too"}, index=1),
        chunk({}, "length", index=1),
        chunk({}, "stop", index=0),
    )
    assert completion.content == "mine"
    assert completion.finish_reason == "stop"


def test_a_choice_without_index_is_choice_zero() -> None:
    assert fold(chunk({"content": "x"}, index=None)).content == "x"


def test_the_choice_with_index_zero_is_used_even_when_it_is_not_first_in_the_list() -> None:
    both = chunk({"content": "second"}, index=1)
    both["choices"].append({"index": 0, "delta": {"content": "first"}, "finish_reason": None})
    assert fold(both).content == "first"


# --------------------------------------------------------------------------- finish reasons (8)


def test_finish_reason_on_its_own_empty_chunk() -> None:
    completion = fold(chunk({"content": "done"}), chunk({}, "stop"))
    assert (completion.content, completion.finish_reason) == ("done", "stop")


def test_finish_reason_on_the_last_content_chunk_keeps_that_content() -> None:
    completion = fold(chunk({"content": "al"}), chunk({"content": "most"}, "length"))
    assert (completion.content, completion.finish_reason) == ("almost", "length")


def test_finish_reason_with_the_last_tool_fragment_keeps_that_fragment() -> None:
    completion = fold(
        chunk({"tool_calls": [tool(0, "call_1", "f", '{"a"')]}),
        chunk({"tool_calls": [tool(0, arguments=": 1}")]}, "tool_calls"),
    )
    assert calls(completion) == [("call_1", "f", {"a": 1})]
    assert completion.finish_reason == "tool_calls"


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("tool_calls", "tool_calls"),
        ("content_filter", "content_filter"),
        ("function_call", "tool_calls"),
        ("eos", "stop"),
        ("eos_token", "stop"),
        ("stop_sequence", "stop"),
        ("abort", "error"),
        ("error", "error"),
        ("something_new", "other"),
    ],
)
def test_each_finish_reason_is_kept_raw_and_normalized(raw: str, normalized: str) -> None:
    completion = fold(chunk({"content": "x"}), chunk({}, raw))
    assert completion.finish_reason == raw
    assert completion.finish_kind == normalized


def test_an_empty_finish_reason_means_not_said() -> None:
    completion = fold(chunk({"content": "x"}, ""))
    assert completion.finish_reason is None
    assert completion.finish_kind is None


def test_a_trailing_empty_finish_reason_does_not_erase_the_real_one() -> None:
    completion = fold(chunk({"content": "x"}, "stop"), chunk({}, ""), chunk({}, None))
    assert completion.finish_reason == "stop"


def test_a_reply_without_any_finish_reason_has_none() -> None:
    completion = fold(chunk({"content": "x"}))
    assert completion.finish_reason is None
    assert completion.finish_kind is None


# --------------------------------------------------------------------------- usage (9)


def test_usage_in_a_final_chunk_with_no_choices_is_kept() -> None:
    completion = fold(
        chunk({"content": "x"}, usage=None),
        chunk({}, "stop", usage=None),
        {"id": "c", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}},
    )
    assert completion.usage == Usage(5, 2, 7)


def test_usage_in_every_chunk_keeps_the_last_one() -> None:
    # vLLM with continuous_usage_stats
    completion = fold(
        chunk({"content": "a"}, usage={"prompt_tokens": 5, "completion_tokens": 1}),
        chunk({"content": "b"}, usage={"prompt_tokens": 5, "completion_tokens": 2}),
        chunk({}, "stop", usage={"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}),
    )
    assert completion.usage == Usage(5, 3, 8)


def test_groq_usage_under_x_groq_is_read() -> None:
    completion = fold(
        chunk({"content": "a"}, x_groq={"id": "req_1"}),
        chunk(
            {},
            "stop",
            x_groq={
                "id": "req_1",
                "usage": {
                    "prompt_tokens": 9,
                    "completion_tokens": 1,
                    "total_tokens": 10,
                    "queue_time": 0.01,
                },
            },
        ),
    )
    assert completion.usage == Usage(9, 1, 10)


def test_a_malformed_x_groq_field_is_ignored() -> None:
    assert fold(chunk({"content": "a"}, x_groq="weird")).content == "a"


def test_a_trailing_usage_null_does_not_erase_the_usage() -> None:
    completion = fold(
        {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}},
        chunk({}, None, usage=None),
        {"choices": [], "usage": {}},
    )
    assert completion.usage == Usage(5, 2, 7)


def test_no_usage_reported_is_none_not_zero() -> None:
    assert fold(chunk({"content": "a"}), chunk({}, "stop")).usage is None


def test_reasoning_tokens_are_read_from_completion_tokens_details() -> None:
    usage = {
        "prompt_tokens": 5,
        "completion_tokens": 50,
        "completion_tokens_details": {"reasoning_tokens": 40},
    }
    assert fold({"choices": [], "usage": usage}).usage == Usage(5, 50, 55, 40)


# --------------------------------------------------------------------------- reasoning (10)


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_fields_are_kept_apart_from_the_answer(field: str) -> None:
    completion = fold(
        chunk({field: "Let me "}),
        chunk({field: "think."}),
        chunk({"content": "42"}),
        chunk({}, "stop"),
    )
    assert completion.reasoning == "Let me think."
    assert completion.content == "42"


def test_reasoning_sent_under_both_names_is_not_doubled() -> None:
    # vLLM during the rename sends the same text as reasoning_content and reasoning.
    completion = fold(
        chunk({"reasoning_content": "Hmm.", "reasoning": "Hmm."}),
        chunk({"content": "Yes", "reasoning_content": None, "reasoning": None}),
    )
    assert completion.reasoning == "Hmm."
    assert completion.content == "Yes"


def test_reasoning_deltas_are_reported_as_reasoning_events() -> None:
    events = events_of(chunk({"reasoning": "a"}), chunk({"content": "b"}))
    assert events == [ReasoningDelta("a"), ContentDelta("b")]


def test_inline_think_tags_split_across_chunks_are_separated() -> None:
    pieces = ["<th", "ink>", "I sh", "ould greet.</th", "ink>", "\n\n", "Hello", "!"]
    completion = fold(*(chunk({"content": p}) for p in pieces))
    assert completion.reasoning == "I should greet."
    assert completion.content == "Hello!"


def test_reasoning_without_the_opening_tag_is_recognised_at_the_closing_tag() -> None:
    # The chat template put "<think>" in the prompt.
    splitter = ThinkTagSplitter()
    for piece in ["Thinking ", "hard.", "</think>", " Answer."]:
        splitter.feed(piece)
    splitter.flush()
    assert (splitter.reasoning, splitter.content) == ("Thinking hard.", "Answer.")
    assert splitter.relabelled


def test_a_literal_think_tag_later_in_an_answer_is_text() -> None:
    completion = fold(
        chunk({"content": "Wrap it in "}),
        chunk({"content": "<think>"}),
        chunk({"content": " tags; close with </think>."}),
    )
    assert completion.content == "Wrap it in <think> tags; close with </think>."
    assert completion.reasoning == ""


def test_a_lone_angle_bracket_at_the_end_is_not_lost() -> None:
    completion = fold(chunk({"content": "a <"}))
    assert completion.content == "a <"


def test_reasoning_that_ate_the_whole_budget_leaves_no_content_and_length() -> None:
    completion = fold(
        chunk({"content": "<think>"}),
        chunk({"content": "so much to consider"}),
        chunk({"content": "</thi"}, "length"),
    )
    assert completion.content == ""
    assert completion.reasoning == "so much to consider</thi"
    assert completion.finish_kind == "length"


def test_reasoning_field_eating_the_budget_is_visible_as_such() -> None:
    completion = fold(chunk({"reasoning_content": "long thoughts"}), chunk({}, "length"))
    assert (completion.content, completion.reasoning, completion.finish_kind) == (
        "",
        "long thoughts",
        "length",
    )


_think_pieces = st.lists(
    st.sampled_from(
        ["<think>", "</think>", "<", "think", ">", "</", "\n", " ", "\n\n", "ab", "Answer", "x<"]
    ),
    max_size=10,
)


@settings(max_examples=300, deadline=None)
@given(pieces=_think_pieces, cuts=st.lists(st.integers(min_value=0, max_value=80), max_size=8))
def test_any_split_of_the_content_into_chunks_separates_think_tags_the_same_way(
    pieces: list[str], cuts: list[int]
) -> None:
    text = "".join(pieces)
    whole = ThinkTagSplitter()
    whole.feed(text)
    whole.flush()
    split = ThinkTagSplitter()
    bounds = [0, *sorted({min(c, len(text)) for c in cuts}), len(text)]
    for a, b in itertools.pairwise(bounds):
        split.feed(text[a:b])
    split.flush()
    assert (split.content, split.reasoning) == (whole.content, whole.reasoning)


@settings(max_examples=200, deadline=None)
@given(pieces=_think_pieces)
def test_released_pieces_add_up_to_the_final_text_unless_relabelled(pieces: list[str]) -> None:
    splitter = ThinkTagSplitter()
    answer, thought = "", ""
    for piece in pieces:
        a, t = splitter.feed(piece)
        answer, thought = answer + a, thought + t
    a, t = splitter.flush()
    if not splitter.relabelled:
        assert (answer + a, thought + t) == (splitter.content, splitter.reasoning)


# --------------------------------------------------------------------------- extra fields (11)


def test_extra_fields_are_ignored() -> None:
    completion = fold(
        chunk(
            {"content": "a", "obfuscation": "xyz"},
            timings={"predicted_ms": 1},
            provider="Together",
            system_fingerprint="fp",
        ),
        {
            **chunk({}, "stop"),
            "choices": [
                {
                    "index": 0,
                    "delta": {},
                    "finish_reason": "stop",
                    "stop_reason": 128009,
                    "matched_stop": 2,
                    "logprobs": None,
                }
            ],
        },
    )
    assert (completion.content, completion.finish_reason) == ("a", "stop")


def test_an_empty_id_or_model_is_not_taken_for_a_value() -> None:
    completion = fold(
        {"id": "", "model": "", "choices": [{"index": 0, "delta": {"content": "a"}}]},
        {"id": "real-id", "model": "real-model", "choices": []},
    )
    assert (completion.id, completion.model) == ("real-id", "real-model")


def test_no_model_at_all_is_none() -> None:
    assert fold({"choices": [{"index": 0, "delta": {"content": "a"}}]}).model is None


def test_the_model_the_server_names_is_the_one_shown() -> None:
    completion = fold(chunk({"content": "a"}, model="llama-3.1-8b-instruct-q4"))
    assert completion.model == "llama-3.1-8b-instruct-q4"


@pytest.mark.parametrize("created", [0, 1712345678.25, None, "yesterday"])
def test_created_of_any_type_is_harmless(created: Any) -> None:
    assert fold(chunk({"content": "a"}, created=created)).content == "a"


def test_logprobs_null_or_present_is_harmless() -> None:
    with_logprobs = chunk({"content": "a"})
    with_logprobs["choices"][0]["logprobs"] = {"content": [{"token": "a", "logprob": -0.1}]}
    assert fold(with_logprobs, chunk({"content": "b"})).content == "ab"


def test_non_dict_chunks_and_choices_are_ignored() -> None:
    completion = fold(
        "[]", '"text"', {"choices": "nope"}, {"choices": [None, 3]}, chunk({"content": "ok"})
    )
    assert completion.content == "ok"


# --------------------------------------------------------------------------- tool calls (12-16)


def test_usual_tool_call_shape_is_assembled() -> None:
    completion = fold(
        chunk({"role": "assistant", "content": None}),
        chunk({"tool_calls": [tool(0, "call_a", "get_weather", "")]}),
        chunk({"tool_calls": [tool(0, arguments='{"ci')]}),
        chunk({"tool_calls": [tool(0, arguments='ty": "Paris"}')]}),
        chunk({}, "tool_calls"),
    )
    assert calls(completion) == [("call_a", "get_weather", {"city": "Paris"})]
    assert completion.content == ""


def test_two_parallel_calls_keep_their_own_arguments() -> None:
    completion = fold(
        chunk({"tool_calls": [tool(0, "call_a", "f", "")]}),
        chunk({"tool_calls": [tool(0, arguments='{"x": 1}')]}),
        chunk({"tool_calls": [tool(1, "call_b", "g", "")]}),
        chunk({"tool_calls": [tool(1, arguments='{"y": 2}')]}),
    )
    assert calls(completion) == [("call_a", "f", {"x": 1}), ("call_b", "g", {"y": 2})]


def test_repeated_id_type_and_name_in_every_delta_are_not_concatenated() -> None:
    # llama-cpp-python: every delta repeats id, type and name, plus a legacy function_call copy.
    fragments = ['{"city"', ': "Par', 'is"}', ""]
    completion = fold(
        chunk({"role": "assistant", "content": None, "function_call": None, "tool_calls": None}),
        *(
            chunk(
                {
                    "role": None,
                    "content": None,
                    "function_call": {"name": "get_weather", "arguments": f},
                    "tool_calls": [tool(0, "call_x", "get_weather", f)],
                }
            )
            for f in fragments
        ),
        chunk(
            {"role": None, "content": None, "function_call": None, "tool_calls": None}, "tool_calls"
        ),
    )
    assert calls(completion) == [("call_x", "get_weather", {"city": "Paris"})]


def test_a_new_id_on_every_fragment_with_an_empty_name_stays_one_call() -> None:
    # LM Studio
    completion = fold(
        chunk({"tool_calls": [tool(0, "id_1", "get_weather", "")]}),
        chunk({"tool_calls": [tool(0, "id_2", "", '{"city":')]}),
        chunk({"tool_calls": [tool(0, "id_3", "", '"Oslo"}')]}),
    )
    assert calls(completion) == [("id_1", "get_weather", {"city": "Oslo"})]


def test_a_fragment_with_a_new_index_but_no_name_continues_the_last_call() -> None:
    completion = fold(
        chunk({"tool_calls": [tool(0, "id_1", "f", '{"a":')]}),
        chunk({"tool_calls": [tool(5, "id_2", "", " 1}")]}),
    )
    assert calls(completion) == [("id_1", "f", {"a": 1})]


def test_calls_without_index_are_told_apart_by_their_names() -> None:
    # Gemini, old Ollama: no "index" key at all.
    completion = fold(
        chunk({"tool_calls": [tool(None, "c1", "get_weather", '{"city": "Paris"}')]}),
        chunk({"tool_calls": [tool(None, "c2", "get_time", '{"tz": "CET"}')]}),
    )
    assert calls(completion) == [
        ("c1", "get_weather", {"city": "Paris"}),
        ("c2", "get_time", {"tz": "CET"}),
    ]


def test_unnamed_fragments_without_index_continue_the_last_call() -> None:
    completion = fold(
        chunk({"tool_calls": [tool(None, "c1", "f", '{"a"')]}),
        chunk({"tool_calls": [tool(None, arguments=": 2}")]}),
    )
    assert calls(completion) == [("c1", "f", {"a": 2})]


def test_two_calls_to_the_same_function_without_index_or_id_stay_two_calls() -> None:
    completion = fold(
        chunk({"tool_calls": [tool(None, name="get_weather", arguments='{"city": "Paris"}')]}),
        chunk({"tool_calls": [tool(None, name="get_weather", arguments='{"city": "Rome"}')]}),
    )
    assert [(c.name, c.parsed_arguments()) for c in completion.tool_calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Rome"}),
    ]


def test_a_name_repeated_without_index_or_id_before_the_arguments_end_is_one_call() -> None:
    completion = fold(
        chunk({"tool_calls": [tool(None, name="f", arguments='{"a":')]}),
        chunk({"tool_calls": [tool(None, name="f", arguments=" 1}")]}),
        chunk({"tool_calls": [tool(None, name="f", arguments="")]}),
    )
    assert [(c.name, c.arguments) for c in completion.tool_calls] == [("f", '{"a": 1}')]


def test_a_name_repeated_with_blank_fragments_after_the_arguments_is_one_call() -> None:
    # TGI-like: the name on every delta, no id, stray fragments after the closing brace.
    completion = fold(
        chunk({"tool_calls": [tool(0, name="f", arguments='{"a": 1')]}),
        chunk({"tool_calls": [tool(0, name="f", arguments="}")]}),
        chunk({"tool_calls": [tool(0, name="f", arguments=" ")]}),
        chunk({"tool_calls": [tool(0, name="f", arguments="")]}, "tool_calls"),
    )
    assert [(c.name, c.parsed_arguments()) for c in completion.tool_calls] == [("f", {"a": 1})]


def test_the_same_function_again_under_one_index_without_ids_is_a_second_call() -> None:
    completion = fold(
        chunk({"tool_calls": [tool(0, name="f", arguments='{"a": 1}')]}),
        chunk({"tool_calls": [tool(0, name="f", arguments='{"a": 2}')]}),
    )
    assert [c.parsed_arguments() for c in completion.tool_calls] == [{"a": 1}, {"a": 2}]


def test_parallel_calls_all_under_index_zero_are_told_apart_by_their_ids() -> None:
    # Ollama and LiteLLM stream every parallel call with index 0 (ollama/ollama#15457).
    completion = fold(
        chunk({"tool_calls": [tool(0, "call_a", "read", '{"path": "a.rs"}')]}),
        chunk({"tool_calls": [tool(0, "call_b", "read", "")]}),
        chunk({"tool_calls": [tool(0, arguments='{"path": ')]}),
        chunk({"tool_calls": [tool(0, arguments='"b.rs"}')]}),
    )
    assert calls(completion) == [
        ("call_a", "read", {"path": "a.rs"}),
        ("call_b", "read", {"path": "b.rs"}),
    ]


def test_tool_calls_starting_at_index_one_after_text() -> None:
    completion = fold(
        chunk({"content": "Let me check."}),
        chunk({"tool_calls": [tool(1, "call_1", "lookup", "")]}),
        chunk({"tool_calls": [tool(1, arguments='{"q": "x"}')]}),
        chunk({}, "tool_calls"),
    )
    assert completion.content == "Let me check."
    assert calls(completion) == [("call_1", "lookup", {"q": "x"})]


def test_one_index_twice_in_one_chunk_is_one_call() -> None:
    completion = fold(
        chunk({"tool_calls": [tool(0, "call_1", "f", ""), tool(0, arguments='{"n": 3}')]}),
    )
    assert calls(completion) == [("call_1", "f", {"n": 3})]


def test_two_calls_with_one_index_in_one_chunk_stay_two_calls() -> None:
    completion = fold(
        chunk(
            {"tool_calls": [tool(0, "call_1", "f", '{"n": 1}'), tool(0, "call_2", "f", '{"n": 2}')]}
        ),
    )
    assert calls(completion) == [("call_1", "f", {"n": 1}), ("call_2", "f", {"n": 2})]


def test_the_whole_call_in_one_delta() -> None:
    # Ollama
    completion = fold(
        chunk(
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [tool(0, "call_9", "add", '{"a": 1, "b": 2}')],
            }
        ),
        chunk({"content": ""}, "stop"),
    )
    assert calls(completion) == [("call_9", "add", {"a": 1, "b": 2})]


def test_tool_calls_sent_as_an_object_instead_of_a_list() -> None:
    completion = fold(
        chunk({"tool_calls": tool(0, "call_1", "f", '{"k":')}),
        chunk({"tool_calls": tool(0, arguments=' "v"}')}),
    )
    assert calls(completion) == [("call_1", "f", {"k": "v"})]


def test_arguments_sent_as_an_object_become_json_text() -> None:
    # Old TGI
    completion = fold(
        chunk({"tool_calls": [tool(0, "0", "get_weather", {"city": "Paris", "days": 2})]}),
    )
    (call,) = completion.tool_calls
    assert call.parsed_arguments() == {"city": "Paris", "days": 2}
    assert json.loads(call.arguments) == {"city": "Paris", "days": 2}


def test_a_call_without_type_is_still_a_call() -> None:
    entry = {"index": 0, "id": "c", "function": {"name": "f", "arguments": "{}"}}
    assert calls(fold(chunk({"tool_calls": [entry]}))) == [("c", "f", {})]


def test_truncated_arguments_are_kept_raw() -> None:
    completion = fold(
        chunk({"tool_calls": [tool(0, "c", "write", '{"text": "a long')]}),
        chunk({}, "length"),
    )
    (call,) = completion.tool_calls
    assert call.arguments == '{"text": "a long'
    with pytest.raises(ValueError, match="Unterminated string"):
        call.parsed_arguments()


def test_invalid_json_arguments_are_kept_raw() -> None:
    (call,) = fold(chunk({"tool_calls": [tool(0, "c", "f", "{city: Paris}")]})).tool_calls
    assert call.arguments == "{city: Paris}"
    with pytest.raises(ValueError, match="property name"):
        call.parsed_arguments()


def test_empty_arguments_mean_an_empty_object() -> None:
    (call,) = fold(chunk({"tool_calls": [tool(0, "c", "now", "")]})).tool_calls
    assert call.arguments == ""
    assert call.parsed_arguments() == {}


def test_a_call_without_an_id_gets_one() -> None:
    (call,) = fold(chunk({"tool_calls": [tool(0, name="f", arguments="{}")]})).tool_calls
    assert call.id.startswith("call_")


@pytest.mark.parametrize("finish", ["stop", None, "tool_calls", "eos"])
def test_tools_are_detected_by_the_list_whatever_the_finish_reason_says(
    finish: str | None,
) -> None:
    completion = fold(chunk({"tool_calls": [tool(0, "c", "f", "{}")]}), chunk({}, finish))
    assert len(completion.tool_calls) == 1


def test_a_tool_calls_finish_reason_without_calls_means_no_tools() -> None:
    assert fold(chunk({"content": "hi"}), chunk({}, "tool_calls")).tool_calls == []


def test_a_legacy_function_call_alone_becomes_a_tool_call() -> None:
    completion = fold(
        chunk({"function_call": {"name": "get_weather", "arguments": ""}}),
        chunk({"function_call": {"arguments": '{"city": "Lima"}'}}),
        chunk({}, "function_call"),
    )
    assert [(c.name, c.parsed_arguments()) for c in completion.tool_calls] == [
        ("get_weather", {"city": "Lima"})
    ]
    assert completion.finish_kind == "tool_calls"


def test_tool_call_deltas_are_reported_with_the_fragment_just_received() -> None:
    events = events_of(
        chunk({"tool_calls": [tool(0, "c", "f", "")]}),
        chunk({"tool_calls": [tool(0, arguments='{"a": 1}')]}),
    )
    assert events == [
        ToolCallDelta(index=0, id="c", name="f", arguments=""),
        ToolCallDelta(index=0, id="c", name="f", arguments='{"a": 1}'),
    ]


# --------------------------------------------------------------------------- non-streamed bodies


def test_a_non_streamed_body_with_several_tool_calls() -> None:
    body = {
        "id": "x",
        "model": "m",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "a",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        },
                        {
                            "id": "b",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        },
                    ],
                },
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
    }
    completion, error = completion_from_response(body)
    assert error is None
    assert [c.id for c in completion.tool_calls] == ["a", "b"]
    assert completion.usage == Usage(1, 2, 3)
    assert completion.ended == "complete"


def test_a_non_streamed_body_keeps_reasoning_apart() -> None:
    body = {
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {
                    "role": "assistant",
                    "content": "<think>hm</think>\n\n4",
                    "reasoning_content": None,
                },
            }
        ]
    }
    completion, _ = completion_from_response(body)
    assert (completion.content, completion.reasoning) == ("4", "hm")


def test_a_non_streamed_error_body_is_returned_as_the_error() -> None:
    _, error = completion_from_response({"error": {"message": "bad", "code": 500}})
    assert error == {"message": "bad", "code": 500}


def test_an_error_object_in_a_chunk_is_recorded() -> None:
    accumulator = ChunkAccumulator()
    accumulator.feed(chunk({"content": "par"}))
    accumulator.feed({"error": "overloaded"})
    assert accumulator.error == {"message": "overloaded"}
    assert accumulator.completion(ended="error").content == "par"


def test_a_legacy_function_call_name_ending_in_a_colon_is_cleaned() -> None:
    # llama-cpp-python's legacy copy is named "get_weather:"; alone, it must still call get_weather.
    body = {
        "choices": [
            {
                "index": 0,
                "finish_reason": "function_call",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "function_call": {"name": "get_weather:", "arguments": '{ "city": "Paris" }'},
                },
            }
        ]
    }
    completion, _ = completion_from_response(body)
    assert [(c.name, c.parsed_arguments()) for c in completion.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]


# --------------------------------------------------------------------------- feed_many

_many_chunks = st.lists(
    st.one_of(
        st.sampled_from(["<think>", "</think>", "plan", "Answer ", "\n", "<"]).map(
            lambda text: chunk({"content": text})
        ),
        st.just(chunk({"role": "assistant", "content": ""})),
        st.just(chunk({"reasoning_content": "why "})),
        st.just(chunk({"tool_calls": [{"index": 0, "id": "t", "function": {"name": "f"}}]})),
        st.just(chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]})),
        st.just(chunk({}, "stop")),
        st.just({"choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 3}}),
        st.just({"error": {"message": "overloaded"}}),
        st.just(chunk({"content": "after"}, "error")),
        st.just(["not", "a", "chunk"]),
    ),
    max_size=14,
)


@settings(max_examples=300, deadline=None)
@given(chunks=_many_chunks)
def test_feed_many_assembles_what_feed_one_by_one_does(chunks: list[Any]) -> None:
    one = ChunkAccumulator()
    released: list[Event] = []
    for item in chunks:
        released += one.feed(item)
        if one.error is not None or one.finish_reason == "error":
            break  # where the client stops reading
    many = ChunkAccumulator()
    batch = many.feed_many(chunks)

    def same_ids(completion: Completion) -> Completion:
        # A call the server sent without an id gets a random one.
        calls = [
            c if c.id == "t" else dataclasses.replace(c, id="made") for c in completion.tool_calls
        ]
        return dataclasses.replace(completion, tool_calls=calls)

    assert same_ids(many.completion(ended="done")) == same_ids(one.completion(ended="done"))
    assert (many.error, many.chunks) == (one.error, one.chunks)

    def text(events: list[Event], kind: type[ContentDelta | ReasoningDelta]) -> str:
        return "".join(
            e.text
            for e in events
            if isinstance(e, (ContentDelta, ReasoningDelta)) and type(e) is kind
        )

    if not one._think.relabelled:
        for kind in (ContentDelta, ReasoningDelta):
            assert text(batch, kind) == text(released, kind)
    assert [(e.index, e.name, e.arguments) for e in batch if isinstance(e, ToolCallDelta)] == [
        (e.index, e.name, e.arguments) for e in released if isinstance(e, ToolCallDelta)
    ]
