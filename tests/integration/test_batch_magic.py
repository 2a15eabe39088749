"""``%chat batch`` and the map flags in a real IPython shell, against the scripted Batch API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError

from tf_magics.notebook.magics import ChatMagics
from tf_testing.fake_openai import FakeBatches, FakeOpenAI


def run(ip: Any, source: str) -> Any:
    return ip.run_cell(source, store_history=False)


@pytest.fixture
def batch_ip(ip: Any, fake_server: FakeOpenAI, tmp_path: Path) -> Any:
    fake_server.batches = FakeBatches()
    ip.run_line_magic("config", f"ChatSettings.batch_dir = {str(tmp_path)!r}")
    ip.run_line_magic("config", "ChatSettings.batch_poll = 0.01")
    ip.run_line_magic("config", "ChatSettings.model = 'fake-model'")
    return ip


def test_the_cell_help_renders_every_flag(ip: Any) -> None:
    magics = ip.magics_manager.registry["ChatMagics"]
    assert isinstance(magics, ChatMagics)
    text = magics.chat.parser.format_help()
    assert "--batch" in text and "--map DATA" in text and "%chat batch" in text


def test_map_flags_without_map_are_refused_in_one_line(ip: Any, fake_server: FakeOpenAI) -> None:
    result = run(ip, "%%chat --batch --concurrency 4\nhello")
    assert isinstance(result.error_in_exec, UsageError)
    assert "--batch, --concurrency only apply with --map DATA" in str(result.error_in_exec)
    assert fake_server.requests == []


def test_batch_commands_list_status_collect_and_cancel(
    batch_ip: Any, fake_server: FakeOpenAI
) -> None:
    assert run(batch_ip, "%chat batch list").success
    assert run(batch_ip, "texts = ['a', 'b', 'c']").success
    result = run(batch_ip, "%%chat --map texts --batch -o said\nSay {text}")
    assert result.success, result.error_in_exec
    assert batch_ip.user_ns["said"] == ["echo: Say a", "echo: Say b", "echo: Say c"]
    (job,) = _jobs(batch_ip)
    status = run(batch_ip, f"%chat batch status {job.id}")
    assert status.success
    again = run(batch_ip, f"%chat batch collect {job.batch_ids[0]} -o again")
    assert again.success and batch_ip.user_ns["again"] == batch_ip.user_ns["said"]
    missing = run(batch_ip, "%chat batch status")
    assert isinstance(missing.error_in_exec, UsageError)
    assert "name the job" in str(missing.error_in_exec)
    unknown = run(batch_ip, "%chat batch collect job-nope")
    assert "No batch job 'job-nope'" in str(unknown.error_in_exec)


def _jobs(ip: Any) -> list[Any]:
    from tf_magics.notebook.session import session_for

    session = session_for(ip)
    assert session is not None
    return session.chat(None).batches()
