#!/usr/bin/env bash
# The whole test suite: formatting, lint, types, the import layers, then pytest (units, a real IPython shell, real
# kernels, the real llama.cpp model server and JupyterLab in headless Chromium).
# Missing optional parts (the [local] extra, Chromium) fail the run instead of being skipped;
# set TF_MAGICS_REQUIRE_ALL=0 to skip them on a partial setup.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
export TF_MAGICS_REQUIRE_ALL="${TF_MAGICS_REQUIRE_ALL:-1}"

"$PY" -m ruff format --check .
"$PY" -m ruff check .
"$PY" -m mypy
# The import layers (contracts in pyproject.toml), with import-linter.
"$PY" -c "from importlinter.cli import lint_imports_command; lint_imports_command()" --no-cache
"$PY" -m pytest "$@"
