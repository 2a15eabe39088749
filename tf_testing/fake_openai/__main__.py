"""``python -m tf_testing.fake_openai``: see :mod:`tf_testing.fake_openai.cli`."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
