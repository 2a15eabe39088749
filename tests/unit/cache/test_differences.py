"""The one line that says why replay mode cannot answer: what differs from the closest recording."""

from __future__ import annotations

from typing import Any

from tf_magics.cache.differences import closest, describe_differences


def _request(*messages: tuple[str, str], **fields: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "messages": [{"role": role, "content": content} for role, content in messages],
        "max_tokens": 40,
    }
    request.update(fields)
    return request


RECORDED = _request(
    ("system", "You are a pirate."),
    ("user", "Name a famous scientist."),
    ("assistant", "Marie Curie, matey."),
    ("user", "What is she known for?"),
    temperature=0.0,
)


def _differences(request: dict[str, Any], *, model_given: bool = False) -> list[str]:
    return describe_differences(request, RECORDED, model_given=model_given)


def test_a_changed_system_prompt() -> None:
    changed = _request(*[(m["role"], m["content"]) for m in RECORDED["messages"]], temperature=0.0)
    changed["messages"][0]["content"] = "You are a poet."
    assert _differences(changed) == ["the system prompt changed"]
    added = {**RECORDED, "messages": RECORDED["messages"][1:]}
    assert describe_differences(RECORDED, added, model_given=False) == ["a system prompt was added"]
    assert describe_differences(added, RECORDED, model_given=False) == [
        "the system prompt was removed"
    ]


def test_a_changed_temperature_says_both_values() -> None:
    assert _differences({**RECORDED, "temperature": 0.7}) == ["temperature 0.7 vs 0"]
    unset = {k: v for k, v in RECORDED.items() if k != "temperature"}
    assert _differences(unset) == ["temperature not set vs 0"]


def test_a_changed_question_shows_where_the_texts_part() -> None:
    messages = [dict(m) for m in RECORDED["messages"]]
    messages[3]["content"] = "What is he known for?"
    (line,) = _differences({**RECORDED, "messages": messages})
    assert line == (
        "message 3 (user) differs: 'What is he known for?' vs recorded 'What is she known for?'"
    )
    # A long message is shown from a little before where the two part.
    long = "Here is the table of revenue per product, in euros: latte 2,130; espresso 1,402."
    messages[3]["content"] = long.replace("2,130", "2,131")
    recorded = {
        **RECORDED,
        "messages": [*RECORDED["messages"][:3], {"role": "user", "content": long}],
    }
    (line,) = describe_differences({**RECORDED, "messages": messages}, recorded, model_given=False)
    assert "'…: latte 2,131; espresso 1,402.' vs recorded '…: latte 2,130; espresso 1,402.'" in line


def test_a_new_question_was_never_recorded() -> None:
    messages = [*RECORDED["messages"], {"role": "assistant", "content": "Radium."}]
    messages.append({"role": "user", "content": "And her husband?"})
    (line,) = _differences({**RECORDED, "messages": messages})
    assert line == "message 4 (assistant) was never recorded: 'Radium.'"


def test_a_tool_that_returns_something_else_is_named() -> None:
    def turn(result: str) -> dict[str, Any]:
        return {
            "messages": [
                {"role": "user", "content": "Temperature in Paris?"},
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_temperature", "arguments": "{}"},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": result},
            ]
        }

    (line,) = describe_differences(turn("17.0"), turn("18.5"), model_given=False)
    assert line == (
        "the result of tool get_temperature differs: '17.0' vs recorded '18.5' "
        "(the tool returned something else)"
    )


def test_tools_offered_and_withdrawn() -> None:
    def tools(*names: str) -> dict[str, Any]:
        return {**RECORDED, "tools": [{"type": "function", "function": {"name": n}} for n in names]}

    assert describe_differences(tools("a", "b"), tools("a"), model_given=False) == [
        "the tools changed: b offered"
    ]
    assert describe_differences(tools("a"), tools("a", "c"), model_given=False) == [
        "the tools changed: c no longer offered"
    ]


def test_the_model_counts_only_when_the_request_names_it() -> None:
    recorded = {**RECORDED, "model": "smollm2"}
    named = {**RECORDED, "model": "gpt-4o"}
    assert describe_differences(named, recorded, model_given=True) == [
        "model 'gpt-4o' vs recorded 'smollm2'"
    ]
    assert describe_differences(RECORDED, recorded, model_given=False) == []


def test_at_most_three_differences() -> None:
    changed = {**RECORDED, "temperature": 1.0, "max_tokens": 10, "seed": 1, "top_p": 0.5}
    assert len(_differences(changed)) == 3


def test_the_closest_recording_is_the_one_with_most_in_common() -> None:
    other_question = _request(("user", "Capital of France?"))
    same_but_temperature = {**RECORDED, "temperature": 1.0}
    shorter = {**RECORDED, "messages": RECORDED["messages"][:2]}
    found = closest(RECORDED, [other_question, same_but_temperature, shorter])
    assert found is same_but_temperature
    assert closest(RECORDED, []) is None
