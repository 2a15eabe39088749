"""Record and replay with the real local model, by the default path (no base URL configured).

The local model server is started only when a request is really sent: in auto mode a notebook
whose requests are all recorded runs again without starting it, and the recording replays with
the server stopped and unable to start again.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tf_magics import Chat
from tf_magics.cache import recording_file
from tf_magics.local import local_server_running, stop_local_server
from tf_testing.model_server import require_local_extra

pytestmark = [pytest.mark.model, pytest.mark.timeout(240)]


@pytest.fixture
def no_local_server() -> Iterator[None]:
    require_local_extra()
    stop_local_server()
    yield
    stop_local_server()


def get_temperature(city: str) -> float:
    """Current temperature in a city, in degrees Celsius."""
    return {"Paris": 18.5, "Rome": 24.0}.get(city.strip().title(), 15.0)


def _chat(recording: Path, mode: str) -> Chat:
    return Chat(
        cache=mode,
        cache_file=str(recording),
        tools=[get_temperature],
        temperature=0,
        max_tokens=24,
    )


def test_the_local_model_records_and_replays_by_the_default_path(
    no_local_server: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recording = tmp_path / "lesson.tf_magics.jsonl"
    chat = _chat(recording, "auto")
    paris = chat.ask("Temperature in Paris?", tool_choice="get_temperature")
    assert local_server_running()  # nothing was recorded: the model answered
    rome = chat.ask("And in Rome?", tool_choice="get_temperature")
    assert len(rome.tool_results) == 1  # the tiny model picks the city: its result is what it is
    assert len(recording.read_text(encoding="utf-8").splitlines()) == 4  # two tool rounds each

    stop_local_server()
    recording_file(recording).rewind()  # as a new kernel would
    rerun = _chat(recording, "auto")
    assert rerun.ask("Temperature in Paris?", tool_choice="get_temperature").text == paris.text
    assert rerun.ask("And in Rome?", tool_choice="get_temperature").text == rome.text
    assert not local_server_running()  # everything was recorded: the model was not started

    monkeypatch.setenv("TF_MAGICS_LOCAL_MODEL", str(tmp_path / "no-model-here.gguf"))
    recording_file(recording).rewind()
    student = _chat(recording, "replay")
    assert student.ask("Temperature in Paris?", tool_choice="get_temperature").text == paris.text
    again = student.ask("And in Rome?", tool_choice="get_temperature")
    assert again.text == rome.text
    assert [r.content for r in again.tool_results] == [r.content for r in rome.tool_results]
    assert again.replayed is not None and again.replayed.server == "local"
    assert again.replayed.model_note is not None and "demo model" in again.replayed.model_note
    assert not local_server_running()
