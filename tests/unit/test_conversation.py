from __future__ import annotations

import json
from pathlib import Path

from tf_magics.conversation import Conversation
from tf_magics.types import Completion, Message, ToolCall, ToolResult, Usage


def _reply(text: str, usage: Usage | None = None, **kw: object) -> Completion:
    return Completion(content=text, usage=usage, ended="done", finish_reason="stop", **kw)  # type: ignore[arg-type]


def _two_turns() -> Conversation:
    conversation = Conversation("Be brief.")
    conversation.add_user("Q1")
    conversation.add_assistant(_reply("A1", Usage(10, 2, 12)))
    conversation.add_user("Q2")
    conversation.add_assistant(_reply("A2", Usage(20, 3, 23)))
    return conversation


def test_system_message_stays_at_index_zero_whenever_it_is_set() -> None:
    conversation = Conversation()
    conversation.add_user("hi")
    conversation.system = "New rules."
    assert conversation.to_wire()[0] == {"role": "system", "content": "New rules."}
    conversation.system = "Changed."
    assert [m["role"] for m in conversation.to_wire()] == ["system", "user"]
    conversation.system = None
    assert [m["role"] for m in conversation.to_wire()] == ["user"]


def test_full_history_alternates_and_is_resent() -> None:
    wire = _two_turns().to_wire()
    assert [m["role"] for m in wire] == ["system", "user", "assistant", "user", "assistant"]
    assert wire[2] == {"role": "assistant", "content": "A1"}


def test_tool_calls_are_sent_with_empty_string_content_not_null() -> None:
    conversation = Conversation()
    conversation.add_user("weather?")
    call = ToolCall("call_1", "get_weather", '{"city": "Paris"}')
    conversation.add_assistant(Completion(content="", tool_calls=[call], ended="done"))
    conversation.add_tool_result(ToolResult(call, "sunny"))
    wire = conversation.to_wire()
    assert wire[1]["content"] == ""
    assert wire[1]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert wire[2] == {
        "role": "tool",
        "content": "sunny",
        "tool_call_id": "call_1",
    }


def test_unanswered_tool_calls_get_a_result_in_what_is_sent() -> None:
    conversation = Conversation()
    conversation.add_user("two calls")
    calls = [ToolCall("a", "f", "{}"), ToolCall("b", "g", "{}")]
    conversation.add_assistant(Completion(tool_calls=calls, ended="done"))
    conversation.add_tool_result(ToolResult(calls[0], "ok"))
    wire = conversation.to_wire()
    assert [m.get("tool_call_id") for m in wire if m["role"] == "tool"] == ["a", "b"]
    assert "Not run" in wire[-1]["content"]
    # And the next user message answers them for real in the history.
    conversation.add_user("next")
    roles = [m.role for m in conversation.messages]
    assert roles == ["user", "assistant", "tool", "tool", "user"]


def test_partial_reply_is_kept_marked_and_without_its_cut_tool_calls() -> None:
    conversation = Conversation()
    conversation.add_user("long question")
    partial = Completion(
        content="Half an ans", tool_calls=[ToolCall("x", "f", '{"a": ')], ended="interrupted"
    )
    message = conversation.add_assistant(partial, note="interrupted by the user")
    assert message.partial and message.content == "Half an ans" and not message.tool_calls
    assert conversation.to_wire()[-1] == {"role": "assistant", "content": "Half an ans"}


def test_reasoning_is_never_sent_back() -> None:
    conversation = Conversation()
    conversation.add_user("think")
    conversation.add_assistant(_reply("42", reasoning="long thoughts"))
    assert conversation.to_wire()[-1] == {"role": "assistant", "content": "42"}
    assert conversation.messages[-1].reasoning == "long thoughts"


def test_undo_removes_the_last_whole_turn() -> None:
    conversation = _two_turns()
    turn = conversation.undo()
    assert turn is not None and turn.user is not None and turn.user.content == "Q2"
    assert [m.content for m in conversation.messages] == ["Be brief.", "Q1", "A1"]


def test_fork_is_independent() -> None:
    conversation = _two_turns()
    twin = conversation.fork()
    twin.add_user("only in the fork")
    twin.system = "Other."
    assert len(conversation.messages) == 5 and conversation.system == "Be brief."


def test_clear_keeps_the_system_prompt_unless_asked() -> None:
    conversation = _two_turns()
    conversation.clear()
    assert [m.role for m in conversation.messages] == ["system"]
    conversation.clear(keep_system=False)
    assert conversation.messages == []


def test_usage_per_turn_sums_tool_rounds_and_cumulative() -> None:
    conversation = Conversation()
    conversation.add_user("q")
    call = ToolCall("c", "f", "{}")
    conversation.add_assistant(Completion(tool_calls=[call], usage=Usage(5, 1, 6), ended="done"))
    conversation.add_tool_result(ToolResult(call, "r"))
    conversation.add_assistant(_reply("done", Usage(9, 2, 11)))
    assert conversation.usage_by_turn() == [Usage(14, 3, 17)]
    assert conversation.usage == Usage(14, 3, 17)


def test_token_estimate_uses_the_server_usage_when_known() -> None:
    conversation = _two_turns()
    assert conversation.estimate_tokens() == 23  # prompt 20 + completion 3 of the last reply
    conversation.add_user("x" * 400)
    assert conversation.estimate_tokens() == 23 + 4 + 100


def test_trim_drops_whole_oldest_turns_and_never_the_system_prompt() -> None:
    conversation = Conversation("sys")
    for n in range(5):
        conversation.add_user(f"Q{n}")
        call = ToolCall(f"c{n}", "f", "{}")
        conversation.add_assistant(Completion(tool_calls=[call], ended="done"))
        conversation.add_tool_result(ToolResult(call, "r"))
        conversation.add_assistant(_reply(f"A{n}"))
    report = conversation.trim(max_turns=2)
    assert report.dropped_turns == 3 and report.dropped_messages == 12
    assert "Dropped the oldest 3 turns" in str(report)
    roles = [m.role for m in conversation.messages]
    assert roles[0] == "system" and roles[1] == "user"
    assert conversation.messages[1].content == "Q3"
    assert not conversation.pending_tool_calls()


def test_trim_by_tokens_keeps_the_newest_turn() -> None:
    conversation = Conversation("sys")
    for n in range(4):
        conversation.add_user("word " * 200 + str(n))
        conversation.add_assistant(_reply("ok"))
    report = conversation.trim(max_tokens=300)
    assert report
    assert conversation.messages[1].content.endswith("3")
    assert not conversation.trim(max_tokens=10)  # cannot drop the last turn: nothing to do


def test_json_round_trip_is_lossless(tmp_path: Path) -> None:
    conversation = _two_turns()
    call = ToolCall("c", "f", '{"x": 1}')
    conversation.add_user("tools")
    conversation.add_assistant(Completion(tool_calls=[call], ended="done", reasoning="hm"))
    conversation.add_tool_result(ToolResult(call, "err", status="error"))
    conversation.add_assistant(Completion(content="partial", ended="interrupted"), note="cut")
    path = conversation.save(tmp_path / "c.json")
    loaded = Conversation.load(path)
    assert [m.to_dict() for m in loaded.messages] == [m.to_dict() for m in conversation.messages]
    assert loaded.to_wire() == conversation.to_wire()
    assert json.loads(path.read_text())["format"] == "tf_magics.conversation"


def test_an_openai_messages_list_can_be_imported() -> None:
    loaded = Conversation.from_dict(
        [
            {"role": "system", "content": "s"},
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        ]
    )
    assert loaded.system == "s" and loaded.messages[1].content == "hi"


def test_markdown_export_shows_roles_tools_and_partial_marks() -> None:
    conversation = Conversation("sys")
    conversation.add_user("Q ```code```")
    call = ToolCall("c", "lookup", '{"q": 1}')
    conversation.add_assistant(Completion(tool_calls=[call], ended="done"))
    conversation.add_tool_result(ToolResult(call, "result text"))
    conversation.add_assistant(Completion(content="Answer", ended="interrupted"))
    text = conversation.to_markdown()
    for expected in ("## System", "## User", "Tool call `lookup`", "result text", "(partial)"):
        assert expected in text


def test_message_from_dict_rejects_unknown_roles() -> None:
    import pytest

    with pytest.raises(ValueError, match="role"):
        Message.from_dict({"role": "wizard", "content": "x"})
