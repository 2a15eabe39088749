"""Notebook values by name, for ``--with``: variables, attributes, and ``error`` (the last one).

``--with df,fig`` looks each name up in the notebook's namespace (``model.coef_``: public
attributes too, as ``-i`` allows), ``NAME:source`` asks for a function's or class's source, and
``error`` is the last exception a cell raised, which IPython keeps in ``sys.last_value``. Cells
are named in tracebacks the way IPython names them (``In [7]``), from the shell's compiler.
"""

from __future__ import annotations

import difflib
import linecache
import sys
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from tf_magics._text import exception_text

if TYPE_CHECKING:
    from tf_magics.context import CodeCells

__all__ = ["ERROR_NAME", "cell_lookup", "last_error", "notebook_values"]

#: The name that means the last exception.
ERROR_NAME = "error"


def last_error(remembered: BaseException | None = None) -> BaseException | None:
    """The last exception a cell raised, usage errors of magics aside.

    ``remembered`` is what the session saw after each cell; without it (the extension loaded
    after the error), IPython's ``sys.last_value``.
    """
    if remembered is not None:
        return remembered
    value = getattr(sys, "last_value", None)
    if isinstance(value, UsageError) or not isinstance(value, BaseException):
        return None
    return value


def cell_lookup(shell: Any) -> CodeCells:
    """A function from a code object's file name to its cell: ``("In [7]", source)``.

    IPython compiles each cell under a file name of its own and remembers the execution count
    for it; the source shown is the cell as typed when the history has it.
    """

    def lookup(filename: str) -> tuple[str, str] | None:
        numbers = getattr(getattr(shell, "compile", None), "_filename_map", None) or {}
        number = numbers.get(filename)
        if number is None:
            return None
        compiled = "".join(linecache.getlines(filename))
        raw = _raw_cell(shell, number)
        # The history's cell of that number is the one compiled under this name only if it
        # transforms into the same code (a cell run without history shares its number).
        source = raw if raw is not None and _same_code(shell, raw, compiled) else compiled
        return f"In [{number}]", source

    return lookup


def _raw_cell(shell: Any, number: int) -> str | None:
    history = getattr(getattr(shell, "history_manager", None), "input_hist_raw", None) or []
    return history[number] if 0 < number < len(history) else None


def _same_code(shell: Any, raw: str, compiled: str) -> bool:
    try:
        return bool(shell.transform_cell(raw).strip() == compiled.strip())
    except Exception:  # a cell IPython cannot transform again is not the one compiled
        return False


def _find(namespace: dict[str, Any], dotted: str) -> Any:
    """The value of ``name`` or ``name.attr…`` (public attributes only)."""
    name, *attributes = dotted.split(".")
    if name not in namespace:
        close = difflib.get_close_matches(name, [n for n in namespace if not n.startswith("_")])
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UsageError(f"--with: no variable named {name!r} in the notebook.{hint}")
    value = namespace[name]
    for attribute in attributes:
        if not attribute.isidentifier() or attribute.startswith("_"):
            raise UsageError(f"--with: {dotted!r}: only public attributes can be read.")
        try:
            value = getattr(value, attribute)
        except Exception as error:  # a property that raises: one line
            raise UsageError(
                f"--with: reading {dotted!r} failed ({exception_text(error)})."
            ) from None
    return value


def notebook_values(
    namespace: dict[str, Any], names: str | None, error: BaseException | None = None
) -> list[tuple[str, Any]]:
    """The ``(name, value)`` pairs that ``--with NAMES`` asks for, in order.

    ``error`` is the session's last error (see :func:`last_error`).

    Raises
    ------
    UsageError
        For a name that is not defined, a modifier other than ``:source``, or ``error`` when no
        cell has raised an exception.
    """
    if not names:
        return []
    from tf_magics.context import Source  # the summarisers load when something is attached

    pairs: list[tuple[str, Any]] = []
    for item in dict.fromkeys(n.strip() for n in (names or "").split(",") if n.strip()):
        name, _, modifier = item.partition(":")
        if modifier not in ("", "source"):
            raise UsageError(
                f"--with {item}: the only modifier is ':source' (the code of a function, class "
                "or module)."
            )
        if name == ERROR_NAME:
            value = last_error(error)
            if value is None:
                raise UsageError(
                    "--with error: no cell has raised an exception yet (error means the last one)."
                )
        else:
            value = _find(namespace, name)
        pairs.append((name, Source(value) if modifier else value))
    return pairs
