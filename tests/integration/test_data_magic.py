"""``%%chat --schema`` and ``%%chat --map`` in a real IPython shell, against the scripted server."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from tf_testing.fake_openai import Dynamic, ErrorReply, FakeOpenAI, RecordedRequest, TextReply

SETUP = """
from dataclasses import dataclass
from typing import Literal

@dataclass
class Verdict:
    label: Literal["pos", "neg"]
    confidence: float
"""


def run(ip: Any, source: str) -> Any:
    return ip.run_cell(source, store_history=False)


def _verdict_of(request: RecordedRequest) -> TextReply:
    text = request.json["messages"][-1]["content"]
    label = "neg" if "bad" in text else "pos"
    return TextReply(json.dumps({"label": label, "confidence": 0.5}))


def test_schema_flag_sends_the_schema_and_o_gets_the_object(
    ip: Any, fake_server: FakeOpenAI
) -> None:
    assert run(ip, SETUP).success
    fake_server.enqueue(TextReply('{"label": "pos", "confidence": 0.75}'))
    result = run(ip, "%%chat --schema Verdict -o verdict\nThe kettle is great.")
    assert result.success, result.error_in_exec
    value = ip.user_ns["verdict"]
    assert type(value).__name__ == "Verdict" and value.label == "pos" and value.confidence == 0.75
    sent = fake_server.chat_requests[-1]["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["name"] == "Verdict"


def test_schema_flag_takes_list_of_a_class_and_a_dict(ip: Any, fake_server: FakeOpenAI) -> None:
    assert run(ip, SETUP).success
    fake_server.enqueue(TextReply('{"items": [{"label": "neg", "confidence": 0.1}]}'))
    assert run(ip, "%%chat --schema list[Verdict] -o many\nList them.").success
    assert [v.label for v in ip.user_ns["many"]] == ["neg"]
    ip.user_ns["shape"] = {"type": "object", "properties": {"n": {"type": "integer"}}}
    fake_server.enqueue(TextReply('{"n": 4}'))
    assert run(ip, "%%chat --schema shape -o n\nHow many?").success
    assert ip.user_ns["n"] == {"n": 4}


def test_a_schema_that_does_not_fit_fails_the_cell_with_one_line(
    ip: Any, fake_server: FakeOpenAI
) -> None:
    assert run(ip, SETUP).success
    fake_server.enqueue(TextReply('{"label": "meh"}'), TextReply('{"label": "meh!"}'))
    result = run(ip, "%%chat --schema Verdict -o never_set\nSo?")
    error = result.error_in_exec
    assert type(error).__name__ == "StructuredOutputError"
    assert len(error._render_traceback_()) == 1
    assert "never_set" not in ip.user_ns


def test_unknown_schema_names_are_usage_errors(ip: Any, fake_server: FakeOpenAI) -> None:
    result = run(ip, "%%chat --schema Nope\nx")
    assert "no variable named 'Nope'" in str(result.error_in_exec)
    ip.user_ns["number"] = 3
    result = run(ip, "%%chat --schema number\nx")
    assert "schema must be a class" in str(result.error_in_exec)
    assert fake_server.chat_requests == []


def test_map_cell_is_a_template_and_o_gets_the_frame(ip: Any, fake_server: FakeOpenAI) -> None:
    assert run(ip, SETUP).success
    fake_server.default = Dynamic(_verdict_of)
    ip.user_ns["reviews"] = pd.DataFrame({"text": ["good tea", "bad kettle", "fine cup"]})
    result = run(
        ip,
        "%%chat --map reviews --schema Verdict --concurrency 2 -o labelled -t 0\n"
        "Is this review positive? {text}",
    )
    assert result.success, result.error_in_exec
    labelled = ip.user_ns["labelled"]
    assert labelled["label"].tolist() == ["pos", "neg", "pos"]
    assert labelled["error"].tolist() == [None, None, None]
    prompts = sorted(r["messages"][-1]["content"] for r in fake_server.chat_requests)
    assert prompts[0] == "Is this review positive? bad kettle"
    assert all(r["temperature"] == 0 for r in fake_server.chat_requests)
    assert result.result is None  # stored in -o, not shown


def test_map_without_o_shows_the_result_and_uses_the_conversation_system_prompt(
    ip: Any, fake_server: FakeOpenAI
) -> None:
    ip.user_ns["words"] = ["a", "b"]
    result = run(ip, '%%chat --map words -s "Answer in one word."\nSay {text}')
    assert result.success, result.error_in_exec
    assert result.result == ["Hello from fake-model."] * 2
    for request in fake_server.chat_requests:
        assert request["messages"][0] == {"role": "system", "content": "Answer in one word."}
    assert run(ip, "%chat history").success  # the history was neither sent nor changed


def test_map_failures_are_recorded_and_raise_stops_with_the_rows_done(
    ip: Any, fake_server: FakeOpenAI
) -> None:
    def answer(request: RecordedRequest) -> Any:
        if "2" in request.json["messages"][-1]["content"]:
            return ErrorReply(400, {"error": {"message": "no twos"}})
        return TextReply("ok")

    fake_server.default = Dynamic(answer)
    ip.user_ns["numbers"] = [str(n) for n in range(5)]
    assert run(ip, "%%chat --map numbers -o out\nN {text}").success
    out = ip.user_ns["out"]
    assert [bool(x) for x in out] == [True, True, False, True, True]
    assert out[2].kind == "BadRequestError"
    result = run(ip, "%%chat --map numbers --on-error raise --concurrency 1 -o out2\nN {text}")
    error = result.error_in_exec
    assert type(error).__name__ == "MapError" and "The rows done are in out2." in str(error)
    assert ip.user_ns["out2"][:2] == ["ok", "ok"]


def test_map_flags_that_do_not_apply_and_missing_data(ip: Any, fake_server: FakeOpenAI) -> None:
    ip.user_ns["rows"] = ["a"]
    result = run(ip, "%%chat --map rows --tools print\n{text}")
    assert "--tools does not apply" in str(result.error_in_exec)
    result = run(ip, "%%chat --map rows -i\n{text}")
    assert "-i does not apply" in str(result.error_in_exec)
    result = run(ip, "%%chat --map nothing\n{text}")
    assert "no variable named 'nothing'" in str(result.error_in_exec)
    ip.user_ns["frame"] = pd.DataFrame({"a": [1]})
    result = run(ip, "%%chat --map frame\nUse {b}")
    assert "no column 'b'" in str(result.error_in_exec)
    result = run(ip, "%%chat --map rows --concurrency 0\n{text}")
    assert "between 1 and 256" in str(result.error_in_exec)
    assert fake_server.chat_requests == []


def test_tf_magics_map_uses_the_notebooks_chat(ip: Any, fake_server: FakeOpenAI) -> None:
    assert run(ip, '%%chat -s "Be terse."\nhello').success
    fake_server.clear()
    result = run(ip, "import tf_magics\nout = tf_magics.map('Echo {text}', ['x', 'y'])")
    assert result.success, result.error_in_exec
    assert ip.user_ns["out"] == ["Hello from fake-model."] * 2
    for request in fake_server.chat_requests:
        assert request["messages"][0]["content"] == "Be terse."
        assert request["model"] == "fake-model"
