"""Where the recording and the conversations live: beside the notebook, else the working folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tf_magics.cache import locate, notebook_path, register_notebook_path, unregister_notebook_path


def test_beside_the_notebook_jupyterlab_names(tmp_path: Path) -> None:
    notebook = tmp_path / "course" / "01-intro.ipynb"
    location = locate(env={"JPY_SESSION_NAME": str(notebook)})
    assert location.recording == tmp_path / "course" / "01-intro.tf_magics.jsonl"
    assert location.conversations == tmp_path / "course" / "01-intro.tf_magics.conversations.json"
    assert location.known and location.why == "beside the notebook 01-intro.ipynb"


def test_a_relative_session_name_is_found_in_the_kernels_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the kernel runs in the notebook's folder
    found = notebook_path({"JPY_SESSION_NAME": "lessons/02-tools.ipynb"})
    assert found == tmp_path / "02-tools.ipynb"


def test_a_console_or_no_name_falls_back_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for env in ({}, {"JPY_SESSION_NAME": "Console 1"}, {"JPY_SESSION_NAME": ""}):
        location = locate(env=env)
        assert location.recording == tmp_path / "tf_magics.jsonl"
        assert location.conversations == tmp_path / "tf_magics.tf_magics.conversations.json"
        assert not location.known and "working directory" in location.why


def test_a_registered_provider_wins_over_the_environment(tmp_path: Path) -> None:
    vscode = str(tmp_path / "analysis.ipynb")

    def provider() -> str | None:
        return vscode

    register_notebook_path(provider)
    try:
        location = locate(env={"JPY_SESSION_NAME": str(tmp_path / "other.ipynb")})
    finally:
        unregister_notebook_path(provider)
    assert location.recording == tmp_path / "analysis.tf_magics.jsonl"
    assert notebook_path({}) is None  # unregistered: it no longer counts


def test_an_explicit_file_wins_and_the_environment_wins_over_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"JPY_SESSION_NAME": str(tmp_path / "lesson.ipynb")}
    by_setting = locate("recordings/lesson.tf_magics.jsonl", env)
    assert by_setting.recording == tmp_path / "recordings" / "lesson.tf_magics.jsonl"
    assert by_setting.conversations == (
        tmp_path / "recordings" / "lesson.tf_magics.conversations.json"
    )
    assert by_setting.known and by_setting.why == "set by ChatSettings.cache_file"
    by_env = locate("ignored.jsonl", {**env, "TF_MAGICS_CACHE_FILE": str(tmp_path / "ci.jsonl")})
    assert by_env.recording == tmp_path / "ci.jsonl"
    assert by_env.conversations == tmp_path / "ci.tf_magics.conversations.json"
    assert by_env.why == "set by TF_MAGICS_CACHE_FILE"
