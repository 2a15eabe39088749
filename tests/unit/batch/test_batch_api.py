"""The Batch API on the wire: files, batches, their statuses, and reading the results back."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tf_magics import ChatSettings
from tf_magics.batch.files import BatchLimits, request_files
from tf_magics.batch.jobs import BatchJob, JobStore
from tf_magics.batch.results import read_results
from tf_magics.client import RequestOptions
from tf_magics.client.batches import (
    cancel_batch,
    create_batch,
    download_file,
    get_batch,
    upload_batch_file,
)
from tf_magics.client.http import Client
from tf_magics.errors import BatchUnsupportedError
from tf_testing.fake_openai import FakeBatches, FakeOpenAI


@pytest.fixture
def batches() -> FakeBatches:
    return FakeBatches()


@pytest.fixture
def server(batches: FakeBatches) -> Iterator[FakeOpenAI]:
    with FakeOpenAI(batches=batches) as fake:
        yield fake


def _options(server: FakeOpenAI, api_key: str | None = None) -> RequestOptions:
    settings = ChatSettings(base_url=server.base_url, model="fake-model", max_tokens=50)
    return settings.resolve(api_key=api_key)


def _body(text: str) -> dict[str, Any]:
    return {"model": "fake-model", "messages": [{"role": "user", "content": text}]}


def _requests(count: int) -> bytes:
    lines = request_files(((f"row-{i}", _body(f"q{i}")) for i in range(count)), BatchLimits())
    return b"\n".join(next(lines)) + b"\n"


async def _submit(client: Client, options: RequestOptions, content: bytes) -> str:
    file_id = await upload_batch_file(client, options, "requests.jsonl", content)
    return (await create_batch(client, options, file_id, metadata={"job": "j1"})).id


def test_a_batch_is_uploaded_created_followed_and_read(server: FakeOpenAI) -> None:
    options = _options(server)

    async def scenario() -> tuple[list[str], list[tuple[str, Any]]]:
        async with Client() as client:
            batch_id = await _submit(client, options, _requests(3))
            statuses = []
            while True:
                info = await get_batch(client, options, batch_id)
                statuses.append(info.status)
                if info.finished:
                    break
            assert info.total == 3 and info.completed == 3 and info.failed == 0
            assert info.output_file_id is not None and info.error_file_id is None
            content = await download_file(client, options, info.output_file_id)
            return statuses, list(read_results(content, []))

    statuses, results = asyncio.run(scenario())
    assert statuses == ["in_progress", "finalizing", "completed"]
    assert [custom_id for custom_id, _ in results] == ["row-0", "row-1", "row-2"]
    completion = results[1][1].completion
    assert completion is not None and completion.content == "echo: q1"
    assert completion.usage is not None and completion.usage.completion_tokens == 5
    upload, create = server.requests[0], server.requests[1]
    assert upload.path == "/v1/files" and upload.headers["content-type"].startswith("multipart/")
    assert b'name="purpose"\r\n\r\nbatch' in upload.body
    assert create.json == {
        "input_file_id": "file-0",
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        "metadata": {"job": "j1"},
    }
    # The key never travels in a body, and the uploaded lines are what a chat request would be.
    line = json.loads(server.batches.files["file-0"][2].splitlines()[0])  # type: ignore[union-attr]
    assert line == {
        "custom_id": "row-0",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": _body("q0"),
    }


def test_failed_lines_land_in_the_error_file_with_their_message(
    server: FakeOpenAI, batches: FakeBatches
) -> None:
    batches.fail = {"row-1": (400, "the prompt was flagged")}
    options = _options(server)

    async def scenario() -> dict[str, Any]:
        async with Client() as client:
            batch_id = await _submit(client, options, _requests(3))
            info = await get_batch(client, options, batch_id)
            while not info.finished:
                info = await get_batch(client, options, batch_id)
            assert info.completed == 2 and info.failed == 1 and info.error_file_id
            errors = await download_file(client, options, info.error_file_id)
            return dict(read_results(errors, []))

    outcomes = asyncio.run(scenario())
    assert list(outcomes) == ["row-1"]
    assert outcomes["row-1"].completion is None
    assert outcomes["row-1"].error == "400: the prompt was flagged"


def test_an_expired_batch_keeps_what_was_answered(server: FakeOpenAI, batches: FakeBatches) -> None:
    batches.expire, batches.answered_before_expiry = True, 2
    options = _options(server)

    async def scenario() -> tuple[str, dict[str, Any]]:
        async with Client() as client:
            batch_id = await _submit(client, options, _requests(4))
            info = await get_batch(client, options, batch_id)
            while not info.finished:
                info = await get_batch(client, options, batch_id)
            assert info.output_file_id and info.error_file_id
            out = await download_file(client, options, info.output_file_id)
            err = await download_file(client, options, info.error_file_id)
            return info.status, {**dict(read_results(out, [])), **dict(read_results(err, []))}

    status, outcomes = asyncio.run(scenario())
    assert status == "expired"
    assert [o.completion is not None for o in outcomes.values()] == [True, True, False, False]
    assert outcomes["row-3"].error == "batch_expired: not run: expired"


def test_a_cancelled_batch_goes_through_cancelling(server: FakeOpenAI) -> None:
    options = _options(server)

    async def scenario() -> list[str]:
        async with Client() as client:
            batch_id = await _submit(client, options, _requests(2))
            seen = [(await cancel_batch(client, options, batch_id)).status]
            seen.append((await get_batch(client, options, batch_id)).status)
            return seen

    assert asyncio.run(scenario()) == ["cancelling", "cancelled"]


def test_a_server_without_the_batch_api_gets_one_clear_line() -> None:
    with FakeOpenAI() as server:

        async def scenario() -> None:
            async with Client() as client:
                await upload_batch_file(client, _options(server), "r.jsonl", b"{}\n")

        with pytest.raises(BatchUnsupportedError) as caught:
            asyncio.run(scenario())
    assert "has no Batch API" in str(caught.value)
    assert "without --batch" in (caught.value.hint or "")
    assert caught.value.status_code == 404


def test_the_key_goes_in_the_header_and_nowhere_else() -> None:
    secret = "sk-batch-secret-0123456789"
    with FakeOpenAI(batches=FakeBatches(), api_key=secret) as server:
        options = _options(server, api_key=secret)

        async def scenario() -> None:
            async with Client() as client:
                await _submit(client, options, _requests(1))

        asyncio.run(scenario())
        for request in server.requests:
            assert request.headers["authorization"] == f"Bearer {secret}"
            assert secret.encode() not in request.body


# -- request files --------------------------------------------------------------------------------


@given(
    sizes=st.lists(st.integers(min_value=0, max_value=300), min_size=0, max_size=60),
    max_requests=st.integers(min_value=1, max_value=10),
    max_bytes=st.integers(min_value=500, max_value=3_000),
)
def test_request_files_keep_every_line_in_order_within_both_limits(
    sizes: list[int], max_requests: int, max_bytes: int
) -> None:
    limits = BatchLimits(max_requests=max_requests, max_bytes=max_bytes)
    items = [(f"row-{i}", _body("x" * size)) for i, size in enumerate(sizes)]
    files = list(request_files(items, limits))
    lines = [json.loads(line) for file in files for line in file]
    assert [line["custom_id"] for line in lines] == [c for c, _ in items]
    for file in files:
        assert 0 < len(file) <= max_requests
        assert sum(len(line) + 1 for line in file) <= max_bytes
    # A file is only cut when the next line would not fit.
    for file, following in itertools.pairwise(files):
        fits_bytes = sum(len(x) + 1 for x in file) + len(following[0]) + 1 <= max_bytes
        assert len(file) == max_requests or not fits_bytes


def test_a_request_too_big_for_any_file_is_refused_with_its_id() -> None:
    with pytest.raises(ValueError, match="row-0 alone"):
        list(request_files([("row-0", _body("x" * 5_000))], BatchLimits(max_bytes=1_000)))


def test_streaming_fields_are_not_sent_in_a_batch() -> None:
    body = {**_body("q"), "stream": True, "stream_options": {"include_usage": True}}
    (file,) = request_files([("row-0", body)], BatchLimits())
    assert "stream" not in json.loads(file[0])["body"]


# -- results --------------------------------------------------------------------------------------


def test_results_tolerate_blank_broken_and_anonymous_lines() -> None:
    content = b"\n".join(
        [
            b"",
            b"not json",
            b'{"response": {"status_code": 200, "body": {}}}',
            b'{"custom_id": "row-2", "response": null, "error": null}',
            b'{"custom_id": "row-3", "response": {"status_code": 500, "body": "boom"}}',
        ]
    )
    outcomes = dict(read_results(content, []))
    assert outcomes["row-2"].error == "the batch gave no reply for this request"
    assert outcomes["row-3"].error is not None and outcomes["row-3"].error.startswith("500")


def test_a_key_echoed_in_an_error_line_is_redacted() -> None:
    secret = "sk-echoed-secret-0123456789"
    line = {
        "custom_id": "row-0",
        "response": {"status_code": 401, "body": {"error": {"message": f"bad key {secret}"}}},
    }
    ((_, outcome),) = read_results(json.dumps(line).encode(), [secret])
    assert outcome.error is not None and secret not in outcome.error


# -- the jobs file ---------------------------------------------------------------------------------


def test_jobs_are_saved_atomically_and_found_by_either_id(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "sub")
    assert store.jobs() == []
    job = BatchJob(
        id="job-1", batch_ids=["batch-a", "batch-b"], base_url="http://x/v1", model="m", rows=3
    )
    store.save(job)
    job.state = "collected"
    store.save(job)
    store.save(
        BatchJob(id="job-2", batch_ids=["batch-c"], base_url="http://x/v1", model="m", rows=1)
    )
    assert [j.id for j in store.jobs()] == ["job-1", "job-2"]
    found = store.find("batch-b")
    assert found is not None and found.id == "job-1" and found.state == "collected"
    assert store.find("nope") is None
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["jobs.json"]
    assert "key" not in store.path.read_text().lower()


def test_an_unreadable_jobs_file_reads_as_empty(tmp_path: Path) -> None:
    (tmp_path / "jobs.json").write_text("{not json")
    assert JobStore(tmp_path).jobs() == []
    assert JobStore(tmp_path).layout("job-1") is None
