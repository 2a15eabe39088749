"""Where the suite finds the repository's files, wherever in ``tests/`` a test module sits."""

from __future__ import annotations

from pathlib import Path

#: The repository's root (``pyproject.toml``, ``tf_magics/``, ``notebooks/``, ``binder/``...).
REPO_ROOT = Path(__file__).resolve().parents[1]

#: Byte-exact exchanges with a real llama-cpp-python server (``tests/wire/``; see the README there).
WIRE = REPO_ROOT / "tests" / "wire" / "llama-cpp-python"
