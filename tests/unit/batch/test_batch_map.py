"""``map(..., batch=True)`` and the batch jobs of a chat, against a scripted Batch API server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from tf_magics import Chat
from tf_magics.batch import JobStore
from tf_magics.budget import kernel_ledger
from tf_magics.errors import BatchError, BatchUnsupportedError, BudgetExceededError
from tf_testing.fake_openai import Dynamic, FakeBatches, FakeOpenAI, RecordedRequest, TextReply

pd = pytest.importorskip("pandas")


@dataclass
class Verdict:
    label: Literal["pos", "neg"]
    row: int


def _number(body: dict[str, Any]) -> int:
    return int(body["messages"][-1]["content"].rsplit(" ", 1)[-1])


def _verdict_completion(body: dict[str, Any]) -> dict[str, Any]:
    n = _number(body)
    text = json.dumps({"label": "neg" if n % 2 else "pos", "row": n})
    return _completion(body, text)


def _completion(body: dict[str, Any], text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-b",
        "object": "chat.completion",
        "model": body.get("model"),
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def _echo(body: dict[str, Any]) -> dict[str, Any]:
    return _completion(body, f"echo: {body['messages'][-1]['content']}")


@pytest.fixture
def batches() -> FakeBatches:
    return FakeBatches(respond=_echo)


@pytest.fixture
def server(batches: FakeBatches) -> Iterator[FakeOpenAI]:
    def interactive(request: RecordedRequest) -> TextReply:
        return TextReply(f"echo: {request.json['messages'][-1]['content']}")

    with FakeOpenAI(batches=batches, default=Dynamic(interactive)) as fake:
        yield fake


@pytest.fixture
def chat(server: FakeOpenAI, tmp_path: Path) -> Chat:
    return Chat(
        base_url=server.base_url,
        model="fake-model",
        batch_dir=str(tmp_path / "jobs"),
        batch_poll=0.01,
        confirm_map_rows=0,
    )


def _frame(count: int) -> Any:
    return pd.DataFrame(
        {"text": [f"review {n}" for n in range(count)]}, index=range(100, 100 + count)
    )


# -- the same frame as the interactive map -----------------------------------------------------


def test_a_batch_map_returns_the_interactive_frame_using_only_files_and_batches(
    chat: Chat, server: FakeOpenAI
) -> None:
    frame = _frame(7)
    interactive = chat.map("Judge {text}", frame)
    server.reset()
    batched = chat.map("Judge {text}", frame, batch=True)
    pd.testing.assert_frame_equal(batched, interactive)
    assert batched["reply"].tolist()[2] == "echo: Judge review 2"
    assert list(batched.index) == list(range(100, 107))
    assert all(r.path.startswith(("/v1/files", "/v1/batches")) for r in server.requests)
    assert not server.chat_requests
    summary = chat.last_map
    assert summary is not None and summary.batch and summary.done == 7 and summary.failed == 0
    assert summary.tokens == 7 * 15


def test_each_line_is_the_request_the_interactive_path_sends(
    chat: Chat, server: FakeOpenAI, batches: FakeBatches
) -> None:
    chat.system = "You judge reviews."
    batches.respond = _verdict_completion
    chat.map("Judge {text}", _frame(2), schema=Verdict, batch=True, temperature=0.25)
    (upload,) = [content for purpose, _, content in batches.files.values() if purpose == "batch"]
    line = json.loads(upload.splitlines()[0])
    assert line["custom_id"] == "row-0" and line["url"] == "/v1/chat/completions"
    body = line["body"]
    assert body["messages"] == [
        {"role": "system", "content": "You judge reviews."},
        {"role": "user", "content": "Judge review 0"},
    ]
    assert body["temperature"] == 0.25 and body["model"] == "fake-model"
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["name"] == "Verdict"
    assert "stream" not in body


def test_structured_rows_become_instances_and_bad_lines_become_row_errors(
    chat: Chat, batches: FakeBatches
) -> None:
    def respond(body: dict[str, Any]) -> dict[str, Any]:
        if _number(body) == 3:
            return _completion(body, "not json at all")
        return _verdict_completion(body)

    batches.respond = respond
    batches.fail = {"row-5": (400, "the prompt was flagged")}
    result = chat.map("Judge {text}", _frame(7), schema=Verdict, batch=True)
    assert result.columns.tolist() == ["text", "label", "row", "error"]
    assert result.loc[101, "label"] == "neg" and result.loc[102, "row"] == 2
    assert result.loc[103, "error"].startswith("StructuredOutputError")
    assert result.loc[105, "error"] == "BatchError: 400: the prompt was flagged"
    assert result["error"].isna().sum() == 5
    assert chat.last_map is not None and chat.last_map.failed == 2


def test_identical_prompts_are_sent_once_and_lists_come_back_in_order(
    chat: Chat, batches: FakeBatches
) -> None:
    texts = ["a", "b", "a", "c", "b"]
    result = chat.map("Say {text}", texts, batch=True)
    assert result == ["echo: Say a", "echo: Say b", "echo: Say a", "echo: Say c", "echo: Say b"]
    (upload,) = [c for purpose, _, c in batches.files.values() if purpose == "batch"]
    assert len(upload.splitlines()) == 3


def test_a_large_map_is_split_into_batches_and_merged_in_order(
    chat: Chat, batches: FakeBatches
) -> None:
    chat.settings.batch_max_requests = 3
    result = chat.map("Judge {text}", _frame(8), batch=True)
    assert len(batches.batches) == 3
    assert result["reply"].tolist() == [f"echo: Judge review {n}" for n in range(8)]
    (job,) = chat.batches()
    assert len(job.batch_ids) == 3 and job.state == "collected" and job.rows == 8


def test_an_expired_batch_keeps_its_answers_and_marks_the_rest(
    chat: Chat, batches: FakeBatches
) -> None:
    batches.expire, batches.answered_before_expiry = True, 2
    result = chat.map("Judge {text}", _frame(4), batch=True)
    assert result["reply"].tolist()[:2] == ["echo: Judge review 0", "echo: Judge review 1"]
    assert result["error"].tolist()[2] == "BatchError: batch_expired: not run: expired"
    assert chat.last_map is not None and "expired" in " ".join(chat.last_map.notes)


def test_a_batch_that_fails_validation_marks_every_row(chat: Chat, batches: FakeBatches) -> None:
    batches.invalid = "line 1: unknown model"
    result = chat.map("Judge {text}", _frame(2), batch=True)
    assert (
        result["error"].tolist()
        == ["BatchError: not run: the batch failed (line 1: unknown model)"] * 2
    )


# -- failures before and during submission ---------------------------------------------------------


def test_a_server_without_the_batch_api_gets_one_line_and_nothing_is_kept(
    tmp_path: Path,
) -> None:
    with FakeOpenAI() as server:
        chat = Chat(
            base_url=server.base_url, model="m", batch_dir=str(tmp_path), confirm_map_rows=0
        )
        with pytest.raises(BatchUnsupportedError, match="has no Batch API") as caught:
            chat.map("Say {text}", ["a"], batch=True)
    assert "without --batch" in str(caught.value.hint)
    assert list(tmp_path.iterdir()) == []
    assert kernel_ledger().spent_tokens == 0


def test_a_refused_second_batch_cancels_the_first(chat: Chat, batches: FakeBatches) -> None:
    chat.settings.batch_max_requests = 2
    batches.refuse_after = 1
    with pytest.raises(Exception, match="Too many batches"):
        chat.map("Say {text}", ["a", "b", "c"], batch=True)
    (first,) = batches.batches.values()
    assert first.status in ("cancelling", "cancelled")
    (job,) = chat.batches()
    assert job.state == "abandoned" and job.batch_ids == [first.id]


# -- jobs that outlive the kernel ------------------------------------------------------------------


def _submit_unfinished(chat: Chat, batches: FakeBatches, data: Any, **kwargs: Any) -> str:
    """Submit a job whose batches do not finish, and stop waiting (as Ctrl-C would)."""
    batches.steps_per_status = 10**9

    async def submit_then_cancel() -> None:
        task = asyncio.ensure_future(chat.amap("Judge {text}", data, batch=True, **kwargs))
        while not batches.batches:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(submit_then_cancel())
    (job,) = chat.batches()
    assert job.state == "submitted"
    return job.id


def _finish(batches: FakeBatches) -> None:
    batches.steps_per_status = 1
    for batch in batches.batches.values():
        batch.polls = 0


def test_a_job_is_collected_by_id_from_a_new_chat_after_a_restart(
    chat: Chat, server: FakeOpenAI, batches: FakeBatches, tmp_path: Path
) -> None:
    batches.respond = _verdict_completion
    frame = _frame(5)
    job_id = _submit_unfinished(chat, batches, frame, schema=Verdict)
    # A new kernel: nothing in memory but the files beside the notebook.
    fresh = Chat(base_url=server.base_url, model="fake-model", batch_dir=str(tmp_path / "jobs"))
    with pytest.raises(BatchError, match=r"is not finished: 0 of 5 requests done \(validating"):
        fresh.collect(job_id)
    status = fresh.batch_status(job_id)
    assert status.total == 5 and not status.final
    _finish(batches)
    while not fresh.batch_status(job_id).final:
        pass
    bare = fresh.collect(job_id)
    assert bare.columns.tolist() == ["label", "row", "error"]
    assert bare.index.tolist() == list(range(100, 105))
    assert bare.loc[103].tolist() == ["neg", 3, None]
    first_batch = next(iter(batches.batches))  # a provider batch id finds its job too
    whole = fresh.collect(first_batch, frame, schema=Verdict)
    assert whole.columns.tolist() == ["text", "label", "row", "error"]
    assert isinstance(whole.loc[100, "label"], str) and whole.loc[104, "row"] == 4
    assert fresh.last_map is not None and fresh.last_map.done == 5
    (job,) = fresh.batches()
    assert job.state == "collected"


def test_collecting_with_other_data_is_refused(chat: Chat, batches: FakeBatches) -> None:
    job_id = _submit_unfinished(chat, batches, _frame(3))
    _finish(batches)
    while not chat.batch_status(job_id).final:
        pass
    with pytest.raises(BatchError, match="has 3 rows, the data given has 4"):
        chat.collect(job_id, _frame(4))
    shifted = _frame(3)
    shifted.index = [1, 2, 3]
    with pytest.raises(BatchError, match="row labels differ"):
        chat.collect(job_id, shifted)
    with pytest.raises(BatchError, match="No batch job 'job-nope'"):
        chat.collect("job-nope")


def test_a_cancelled_job_gives_what_was_done(chat: Chat, batches: FakeBatches) -> None:
    job_id = _submit_unfinished(chat, batches, _frame(3))
    progress = chat.cancel_batch(job_id)
    assert progress.statuses == ("cancelling",)
    _finish(batches)
    while not chat.batch_status(job_id).final:
        pass
    result = chat.collect(job_id)
    assert result["error"].tolist() == ["BatchError: batch_cancelled: not run: cancelled"] * 3


# -- the bill --------------------------------------------------------------------------------------


def test_a_batch_is_priced_at_its_discount_and_charged_when_collected(
    chat: Chat, batches: FakeBatches
) -> None:
    chat.settings.prices = {"fake-model": [2.0, 4.0]}
    chat.map("Say {text}", ["a", "b"], batch=True)
    summary = chat.last_map
    assert summary is not None
    # 2 lines x (10 prompt + 5 completion) tokens at half of $2 / $4 per million.
    assert summary.cost == pytest.approx((20 * 1.0 + 10 * 2.0) / 1e6)
    assert "$0.00004" in summary.line() and "Batch API" in summary.line()
    assert kernel_ledger().spent_money == pytest.approx(summary.cost)
    (job,) = chat.batches()
    assert job.prices == [1.0, 2.0]


def test_a_job_whose_worst_case_passes_the_cap_is_not_sent(chat: Chat, server: FakeOpenAI) -> None:
    chat.settings.budget_tokens = 1_000
    with pytest.raises(BudgetExceededError, match="Not sent"):
        chat.map("Say {text}", ["a", "b"], batch=True, max_tokens=600)
    assert server.requests == []
    assert chat.batches() == []


def test_the_jobs_file_never_holds_the_key(server: FakeOpenAI, tmp_path: Path) -> None:
    secret = "sk-batch-file-secret-0123456789"
    chat = Chat(
        base_url=server.base_url,
        model="fake-model",
        api_key=secret,
        batch_dir=str(tmp_path),
        batch_poll=0.01,
        confirm_map_rows=0,
    )
    chat.map("Say {text}", ["a"], batch=True)
    for path in tmp_path.iterdir():
        assert secret not in path.read_text()
    assert JobStore(tmp_path).jobs()[0].state == "collected"
