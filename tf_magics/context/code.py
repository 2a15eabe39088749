"""Functions, classes and modules: their signature and docstring, or their source on request.

By default the model gets what a user reads in ``help()``: the signature, the docstring, and for a
class or a module its public members, one line each. :class:`Source` (``--with f:source`` in a
cell) sends the source code instead, which works for functions defined in notebook cells too
(IPython keeps their source).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, replace
from typing import Any

from tf_magics._public import public

from .budget import Budget, Summary

__all__ = ["Source", "is_code", "summarise_code"]

_MEMBERS = 60


@public
@dataclass(frozen=True)
class Source:
    """Attach the source code of a function, class or module rather than its signature.

    ``chat.ask("Why is this slow?", context=[Source(my_function)])``; in a cell,
    ``%%chat --with my_function:source``.
    """

    value: Any


def is_code(value: Any) -> bool:
    """A module, a class, or a function, method or builtin."""
    return inspect.ismodule(value) or inspect.isclass(value) or inspect.isroutine(value)


def _kind(value: Any) -> str:
    if inspect.ismodule(value):
        return "module"
    if inspect.isclass(value):
        return "class"
    if inspect.ismethod(value):
        return "method"
    if inspect.isbuiltin(value):
        return "built-in function"
    return "function"


def _signature(value: Any) -> str:
    try:
        # Annotations written as strings (``from __future__ import annotations``) read as types.
        return str(inspect.signature(value, eval_str=True))
    except Exception:
        try:
            return str(inspect.signature(value))
        except (TypeError, ValueError):
            return "(…)"


def _qualified(value: Any) -> str:
    name = getattr(value, "__qualname__", None) or getattr(value, "__name__", None) or "?"
    module = getattr(value, "__module__", None)
    if inspect.ismodule(value) or not module or module in ("__main__", "builtins"):
        return str(getattr(value, "__name__", name))
    return f"{module}.{name}"


def _first_line(text: str | None) -> str:
    return (text or "").strip().split("\n", 1)[0]


def _members(value: Any, budget: Budget) -> list[str]:
    """One line per public member: its name, signature and the first line of its docstring."""
    names = getattr(value, "__all__", None) if inspect.ismodule(value) else None
    if not isinstance(names, (list, tuple)):
        names = [n for n in vars(value) if not n.startswith("_")]
    lines = []
    for name in list(names)[:_MEMBERS]:
        member = inspect.getattr_static(value, str(name), None)
        member = getattr(member, "__func__", member)  # static and class methods
        if isinstance(member, property):
            lines.append(f"- {name} (property): {_first_line(inspect.getdoc(member))}")
        elif callable(member):
            doc = _first_line(inspect.getdoc(member))
            lines.append(f"- {name}{_signature(member)}" + (f": {doc}" if doc else ""))
        elif not inspect.ismodule(member):
            lines.append(f"- {name} = {budget.clip(repr(member), 80)}")
    if len(names) > _MEMBERS:
        lines.append(f"… and {len(names) - _MEMBERS:,} more")
    return lines


def summarise_code(value: Any, budget: Budget) -> Summary:
    """What ``help()`` would show (signature, docstring, public members), or the source."""
    if isinstance(value, Source):
        return _source(value.value, budget)
    if budget.source:
        return _source(value, budget)
    kind = _kind(value)
    name = _qualified(value)
    lines = []
    if kind != "module":
        lines.append(f"{name}{_signature(value)}")
    doc = inspect.getdoc(value)
    if doc:
        lines.append(budget.clip(doc, budget.share(0.5)))
    if kind in ("class", "module"):
        members = _members(value, budget)
        if members:
            lines.append("Public members:\n" + "\n".join(members))
    body, note = budget.fit("\n\n".join(lines) or "(no docstring)")
    return Summary(f"{kind} {name}", body, [note] if note else [])


def _source(value: Any, budget: Budget) -> Summary:
    kind = _kind(value)
    name = _qualified(value)
    try:
        text = inspect.getsource(value)
    except (OSError, TypeError):
        summary = summarise_code(value, replace(budget, source=False))
        summary.notes.append("its source is not available; showing its signature and docstring")
        return summary
    body, note = budget.fit(text)
    return Summary(f"source of {kind} {name}", body, [note] if note else [])
