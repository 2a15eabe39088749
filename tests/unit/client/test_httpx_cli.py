"""httpx is imported without its command-line client, which still works when it is called."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests.paths import REPO_ROOT

needs_cli = pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in ("click", "rich", "pygments")),
    reason="httpx's CLI needs click, rich and pygments (httpx[cli])",
)


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


@needs_cli
def test_the_client_does_not_import_httpx_command_line_tools() -> None:
    code = (
        "import sys\n"
        "import tf_magics.client.http\n"
        "import httpx\n"
        "assert httpx.Client is not None\n"
        "print(sorted({'click', 'rich', 'pygments'} & set(sys.modules)))\n"
    )
    assert _run(code) == "[]"


@needs_cli
def test_httpx_command_still_runs_when_called() -> None:
    code = (
        "import sys\n"
        "import tf_magics.client.http\n"
        "import httpx\n"
        "try:\n"
        "    httpx.main(['--help'])\n"
        "except SystemExit as exit:\n"
        "    print('exit', exit.code)\n"
        "print(type(sys.modules['httpx._main']).__name__, httpx._main.__name__)\n"
    )
    out = _run(code)
    assert "Usage: httpx" in out  # the real command's help
    assert out.endswith("exit 0\nmodule httpx._main")


@needs_cli
def test_a_name_from_the_cli_module_loads_it() -> None:
    code = (
        "import tf_magics.client.http\n"
        "from httpx._main import print_help\n"
        "print(print_help.__module__)\n"
    )
    assert _run(code) == "httpx._main"


def test_httpx_imported_first_is_left_alone() -> None:
    code = (
        "import sys\n"
        "import httpx\n"
        "import tf_magics.client.http\n"
        "print(type(sys.modules['httpx._main']).__name__)\n"
    )
    assert _run(code) == "module"


def test_without_the_cli_packages_a_probe_gets_an_attribute_error() -> None:
    code = (
        "import sys\n"
        "sys.modules['click'] = None  # as if click were not installed\n"
        "import tf_magics.client.http\n"
        "import httpx\n"
        "print(getattr(sys.modules['httpx._main'], 'print_help', 'absent'))\n"
        "print(httpx.Client.__name__)\n"
    )
    assert _run(code) == "absent\nClient"
