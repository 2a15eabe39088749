"""httpx without its command-line client: the CLI loads when it is used, not with httpx.

``import httpx`` also imports ``httpx._main``, the ``httpx`` command's code, which imports click,
rich and pygments whenever they are installed (they are in most Jupyter environments). That was
half of the first ``%%chat``'s import time here, 40-60 ms of 100-130, for a command a notebook
never runs (upstream: encode/httpx#3547). :func:`defer` puts a stand-in for ``httpx._main`` in
``sys.modules`` before httpx is first imported; the stand-in loads the real module the moment
anything uses it (``httpx.main()``, ``from httpx._main import ...``), so the CLI still works.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__all__ = ["defer"]

_NAME = "httpx._main"


class _DeferredCli(types.ModuleType):
    """Stands in for ``httpx._main`` until something uses it, then is the real module."""

    def __init__(self) -> None:
        super().__init__(_NAME)

        def main(*args: Any, **kwargs: Any) -> Any:
            """Run the real ``httpx`` command (loaded now)."""
            return self.load().main(*args, **kwargs)

        # A plain function: httpx's __init__ sets ``__module__`` on what it imports.
        self.main = main

    def load(self) -> types.ModuleType:
        """The real ``httpx._main``, imported now if it is not yet."""
        if sys.modules.get(_NAME) is self:
            del sys.modules[_NAME]
        real = importlib.import_module(_NAME)
        httpx = sys.modules.get("httpx")
        if httpx is not None and getattr(httpx, "_main", None) is self:
            httpx._main = real  # type: ignore[attr-defined]
        return real

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # the import system's own probes
            raise AttributeError(name)
        try:
            real = self.load()
        except ImportError as error:
            # Tools that look through sys.modules with getattr(module, name, default) expect
            # AttributeError, as the real module would give without httpx[cli] installed.
            raise AttributeError(f"httpx._main has no {name!r} ({error})") from error
        return getattr(real, name)


def defer() -> None:
    """Make the next ``import httpx`` skip its CLI; nothing happens when httpx is already in."""
    if "httpx" in sys.modules or _NAME in sys.modules:
        return
    sys.modules[_NAME] = _DeferredCli()
