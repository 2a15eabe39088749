"""The recording file: lines appended, read back, skipped when unreadable, pruned and cleared."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tf_magics.cache import Entry, RecordingFile, recording_file
from tf_magics.cache.entry import read_entry
from tf_magics.cache.store import problems_line
from tf_magics.events import ContentDelta, ReasoningDelta, ToolCallDelta
from tf_magics.types import Completion, ToolCall, Usage

RECORDED_AT = 1_748_770_212.0  # 2025-06-01T09:30:12Z


def entry(question: str, answer: str, *, occurrence: int = 1, model: str = "m1") -> Entry:
    return Entry(
        request={"messages": [{"role": "user", "content": question}], "model": model},
        occurrence=occurrence,
        events=((0.25, ContentDelta(answer[:3])), (0.5, ContentDelta(answer[3:]))),
        completion=Completion(
            content=answer,
            finish_reason="stop",
            model=model,
            usage=Usage(prompt_tokens=5, completion_tokens=2, total_tokens=7),
            ended="done",
        ),
        elapsed=0.6,
        recorded_at=RECORDED_AT,
        server="local",
        model_note="tiny local demo model",
    )


def test_an_entry_is_one_sorted_line_and_reads_back_the_same() -> None:
    original = Entry(
        request={"messages": [{"role": "user", "content": "Weather?"}], "temperature": 0.0},
        occurrence=2,
        events=(
            (0.1, ReasoningDelta("Let me check.")),
            (0.2, ToolCallDelta(0, "call_9", "weather", '{"city":')),
            (0.3, ToolCallDelta(0, None, "weather", '"Paris"}')),
        ),
        completion=Completion(
            reasoning="Let me check.",
            tool_calls=[ToolCall("call_9", "weather", '{"city":"Paris"}')],
            finish_reason="tool_calls",
            ended="finished",
        ),
        elapsed=0.31,
        recorded_at=RECORDED_AT,
    )
    line = original.to_line()
    assert "\n" not in line
    data = json.loads(line)
    assert list(data) == sorted(data)
    assert data["recorded_at"] == "2025-06-01T09:30:12Z"
    again = read_entry(line)
    assert again == original
    assert again.key == original.key


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("{not json", "it is not JSON"),
        ("[1, 2]", "the line is not an object"),
        ('{"format": "something else"}', "not a tf_magics recording"),
        ('{"format": "tf_magics.recording", "version": 9}', "another version"),
    ],
)
def test_a_line_that_is_not_an_entry_names_its_problem(line: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        read_entry(line)


def test_every_field_of_a_hand_edited_line_is_checked() -> None:
    good = json.loads(entry("Hi?", "Hello!").to_line())
    edits: list[tuple[str, Any, str]] = [
        ("occurrence", 0, "occurrence must be at least 1"),
        ("occurrence", "1", "occurrence is missing or not a whole number"),
        ("events", [{"t": 0.1, "tool_call": {"index": "0"}}], r"events\[0\].tool_call.index"),
        ("events", [{"t": "soon", "content": "x"}], r"events\[0\].t"),
        ("completion", {"content": "x", "ended": "incomplete"}, "not a finished reply"),
        ("recorded_at", "yesterday", "not a time like"),
        ("request", {"messages": "hello"}, "request.messages"),
    ]
    for field, value, problem in edits:
        with pytest.raises(ValueError, match=problem):
            read_entry(json.dumps({**good, field: value}))


def test_appended_entries_are_found_by_key_model_and_occurrence(tmp_path: Path) -> None:
    file = RecordingFile(tmp_path / "lesson.tf_magics.jsonl")
    first, second = entry("Hi?", "Hello!"), entry("Hi?", "Hey there!", occurrence=2)
    file.append(first)
    file.append(second)
    assert len((tmp_path / "lesson.tf_magics.jsonl").read_text().splitlines()) == 2
    fresh = RecordingFile(file.path)  # another kernel reads the file
    assert fresh.find(first.key, None, 1, wrap=False) == first
    assert fresh.find(first.key, "m1", 2, wrap=False) == second
    assert fresh.find(first.key, "m2", 1, wrap=False) is None  # a model the request names
    assert fresh.find(first.key, None, 3, wrap=False) is None
    # Replay mode: a request sent once more than recorded replays the recorded ones in turn.
    assert fresh.find(first.key, None, 3, wrap=True) == first
    assert fresh.find(first.key, None, 4, wrap=True) == second


def test_a_later_line_replaces_an_earlier_recording_of_the_same_request(tmp_path: Path) -> None:
    file = RecordingFile(tmp_path / "r.jsonl")
    file.append(entry("Hi?", "Old answer"))
    file.append(entry("Hi?", "New answer"))
    found = RecordingFile(file.path).find(entry("Hi?", "").key, None, 1, wrap=False)
    assert found is not None and found.completion.content == "New answer"


def test_occurrences_count_answered_requests_only(tmp_path: Path) -> None:
    file = RecordingFile(tmp_path / "r.jsonl")
    assert file.take_occurrence("k") == 1
    assert file.take_occurrence("k") == 1  # a failed attempt does not count
    file.commit_occurrence("k")
    assert file.take_occurrence("k") == 2


def test_unreadable_lines_are_skipped_and_reported_once(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    good = entry("Hi?", "Hello!")
    path.write_text(
        "{cut off\n" + good.to_line() + "\n\n" + '{"format": "tf_magics.recording"}\n',
        encoding="utf-8",
    )
    file = RecordingFile(path)
    problems = file.refresh()
    assert problems == [
        "line 1: it is not JSON",
        "line 4: it was written by another version (version None)",
    ]
    assert file.refresh() == []  # nothing changed: not read again, not reported again
    assert file.entries == [good]
    assert file.summary().problems == tuple(problems)


def test_a_file_changed_by_another_kernel_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    mine, theirs = RecordingFile(path), RecordingFile(path)
    mine.append(entry("Hi?", "Hello!"))
    assert len(theirs.entries) == 1
    theirs.append(entry("Bye?", "Goodbye!"))
    assert [e.completion.content for e in mine.entries] == ["Hello!", "Goodbye!"]


def test_a_line_without_its_newline_is_not_glued_to_the_next(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(entry("Hi?", "Hello!").to_line(), encoding="utf-8")  # edited, no newline
    file = RecordingFile(path)
    file.append(entry("Bye?", "Goodbye!"))
    assert [e.completion.content for e in RecordingFile(path).entries] == ["Hello!", "Goodbye!"]


def test_prune_keeps_what_this_kernel_used(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    for question in ("One?", "Two?", "Three?"):
        RecordingFile(path).append(entry(question, "answer"))
    RecordingFile(path).append(entry("Two?", "newer answer"))
    with path.open("a", encoding="utf-8") as sink:
        sink.write("garbage\n")
    file = RecordingFile(path)
    with pytest.raises(ValueError, match="no request of this kernel"):
        file.prune()
    two = file.find(entry("Two?", "").key, None, 1, wrap=False)
    assert two is not None
    file.mark_used(two)
    assert file.prune() == (1, 4)  # kept "Two?" (its newer line); removed 3 entries, 1 bad line
    (kept,) = RecordingFile(path).entries
    assert kept.completion.content == "newer answer"
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was renamed over the old one


def test_clear_deletes_the_file_and_forgets_the_counts(tmp_path: Path) -> None:
    file = RecordingFile(tmp_path / "r.jsonl")
    file.append(entry("Hi?", "Hello!"))
    file.commit_occurrence("k")
    assert file.clear() == 1
    assert not file.path.exists()
    assert file.take_occurrence("k") == 1
    assert file.summary().exists is False


def test_summary_counts_entries_by_model(tmp_path: Path) -> None:
    file = RecordingFile(tmp_path / "r.jsonl")
    file.append(entry("A?", "a", model="m1"))
    file.append(entry("B?", "b", model="m2"))
    file.append(entry("C?", "c", model="m1"))
    summary = RecordingFile(file.path).summary()
    assert summary.entries == 3 and summary.by_model == {"m1": 2, "m2": 1}
    assert summary.size == file.path.stat().st_size and summary.used == 0


def test_one_object_per_path(tmp_path: Path) -> None:
    assert recording_file(tmp_path / "r.jsonl") is recording_file(tmp_path / "." / "r.jsonl")


def test_a_file_that_cannot_be_read_is_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.mkdir()  # a folder where the file should be: reading fails with an OSError
    file = RecordingFile(path)
    assert file.refresh() == ["the file cannot be read (Is a directory)"]
    assert file.find("any", None, 1, wrap=True) is None
    assert problems_line(file.problems, path) == (
        "The recording r.jsonl: the file cannot be read (Is a directory); nothing can be "
        "replayed from it."
    )
