"""Tools: Python callables the model may call, and the registries that hold them.

Register a function with the :func:`tool` decorator (bare or with options); it stays an ordinary
function::

    @tool
    def get_weather(city: str, unit: Literal["C", "F"] = "C") -> dict:
        '''Current weather for a city (the docstring describes the tool).'''

    @tool(confirm=True)
    def delete_file(path: str) -> str: ...

Decorated functions go into :func:`default_registry` unless another :class:`ToolRegistry` is
given. Only tools in a registry can ever run: nothing the model says reaches other objects.

The rest of a tool's life lives in smaller modules, re-exported here so that
``from tf_magics._tools import ...`` reaches all of it:

- :mod:`tf_magics._schema`: describing a callable (name, description, JSON Schema);
- :mod:`tf_magics._arguments`: checking and converting the arguments the model sends
  (:func:`validate_arguments`, :class:`ToolArgumentError`);
- :mod:`tf_magics._tool_runner`: running the calls the model makes (:func:`run_tool_call`,
  :func:`run_tool_calls`), which never raises for anything the model or the tool did;
- :mod:`tf_magics._results`: the text the model receives for a return value
  (:func:`serialize_result`).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, overload

if TYPE_CHECKING:
    from ._arguments import ToolArgumentError, validate_arguments
    from ._results import DEFAULT_MAX_RESULT_CHARS, NO_RESULT_TEXT, serialize_result
    from ._schema import FieldSpec
    from ._tool_runner import CallSync, Confirm, run_tool_call, run_tool_calls

# The machinery is imported on first use: a notebook without tools never pays for it.
_LAZY = {
    "ToolArgumentError": "_arguments",
    "validate_arguments": "_arguments",
    "DEFAULT_MAX_RESULT_CHARS": "_results",
    "NO_RESULT_TEXT": "_results",
    "serialize_result": "_results",
    "CallSync": "_tool_runner",
    "Confirm": "_tool_runner",
    "run_tool_call": "_tool_runner",
    "run_tool_calls": "_tool_runner",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __package__), name)


__all__ = [
    "DEFAULT_MAX_RESULT_CHARS",
    "NO_RESULT_TEXT",
    "CallSync",
    "Confirm",
    "Tool",
    "ToolArgumentError",
    "ToolRegistry",
    "ToolReplacedWarning",
    "default_registry",
    "run_tool_call",
    "run_tool_calls",
    "serialize_result",
    "tool",
    "validate_arguments",
]

F = TypeVar("F", bound=Callable[..., Any])


class ToolReplacedWarning(UserWarning):
    """A tool was registered under a name that another function already used."""


@dataclass(slots=True, eq=False)
class Tool:
    """A callable the model may call, with its description.

    Build one with :meth:`from_function` (or let :func:`tool` / :meth:`ToolRegistry.add` do it).

    Attributes
    ----------
    name
        The name the model calls it by.
    description
        What it does, as told to the model.
    function
        The callable itself.
    schema
        The JSON Schema of its arguments (the ``parameters`` of the wire entry).
    fields
        Its parameters with the Python types their values convert to.
    confirm
        Ask the user before each run.
    is_async
        Calling it returns an awaitable (awaited on the event loop, not via ``call_sync``).
    enabled
        Offered to the model and allowed to run.
    """

    name: str
    description: str
    function: Callable[..., Any]
    schema: dict[str, Any]
    fields: tuple[FieldSpec, ...] = ()
    confirm: bool = False
    is_async: bool = False
    enabled: bool = True

    @classmethod
    def from_function(
        cls,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        confirm: bool = False,
    ) -> Tool:
        """Describe ``fn`` as a tool.

        Parameters
        ----------
        fn
            The callable (see :func:`tf_magics._schema.function_schema` for what is accepted).
        name
            The tool name (default: ``fn.__name__``; required for lambdas and partials).
        description
            What it does (default: the docstring summary).
        confirm
            Ask the user before each run.

        Raises
        ------
        ToolDefinitionError
            If ``fn`` cannot be described honestly.
        """
        from ._schema import function_schema

        described = function_schema(fn, name=name, description=description)
        return cls(
            name=described.name,
            description=described.description,
            function=fn,
            schema=described.parameters,
            fields=described.fields,
            confirm=confirm,
            is_async=described.is_async,
        )

    def to_wire(self) -> dict[str, Any]:
        """The entry of a request's ``tools`` list."""
        from ._schema import tool_entry

        return tool_entry(self.name, self.description, self.schema)

    def validate(self, raw: Any, *, notes: list[str] | None = None) -> dict[str, Any]:
        """Check and convert decoded JSON arguments; see :func:`validate_arguments`."""
        from ._arguments import validate_arguments

        return validate_arguments(self, raw, notes=notes)

    def __repr__(self) -> str:
        flags = "".join(
            [", confirm=True" if self.confirm else "", "" if self.enabled else ", enabled=False"]
        )
        return f"Tool({self.name!r}{flags})"


class ToolRegistry:
    """The tools a conversation may use, by unique name, in registration order.

    Parameters
    ----------
    tools
        Tools or callables to add.
    """

    def __init__(self, tools: Iterable[Tool | Callable[..., Any]] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for item in tools:
            self.add(item)

    def add(
        self,
        fn: Tool | Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        confirm: bool = False,
    ) -> Tool:
        """Register a callable (or a ready :class:`Tool`) and return its tool.

        A tool with the same name is replaced; a :class:`ToolReplacedWarning` says so unless the
        new function is a redefinition of the old one (a notebook cell run again).

        Parameters
        ----------
        fn
            The callable, or a ready tool (then no options may be given).
        name
            The tool name (default: the function's name; required for lambdas and partials).
        description
            What it does (default: the docstring summary).
        confirm
            Ask the user before each run.

        Raises
        ------
        ToolDefinitionError
            If the callable cannot be described honestly.
        TypeError
            If options are given together with a ready :class:`Tool`.
        """
        if isinstance(fn, Tool):
            if name is not None or description is not None or confirm:
                raise TypeError("options apply to a function; change the Tool's fields instead")
            new = fn
        else:
            new = Tool.from_function(fn, name=name, description=description, confirm=confirm)
        old = self._tools.get(new.name)
        if old is not None and _identity(old.function) != _identity(new.function):
            warnings.warn(
                f"Tool {new.name!r} now runs {_identity(new.function)} instead of "
                f"{_identity(old.function)}.",
                ToolReplacedWarning,
                stacklevel=2,
            )
        self._tools[new.name] = new
        return new

    def remove(self, name: str) -> Tool:
        """Unregister a tool and return it.

        Raises
        ------
        KeyError
            If no tool has that name.
        """
        try:
            return self._tools.pop(name)
        except KeyError:
            raise KeyError(f"no tool named {name!r}; registered: {self._names_text()}") from None

    def get(self, name: str) -> Tool | None:
        """The tool called ``name``, or ``None``."""
        return self._tools.get(name)

    def names(self) -> list[str]:
        """Every registered name, in registration order."""
        return list(self._tools)

    def enabled(self) -> list[Tool]:
        """The tools offered to the model."""
        return [item for item in self._tools.values() if item.enabled]

    def schemas(self) -> list[dict[str, Any]]:
        """The request's ``tools`` list (enabled tools only)."""
        return [item.to_wire() for item in self.enabled()]

    def copy(self) -> ToolRegistry:
        """An independent registry with the same tools (enabling one does not touch the other)."""
        duplicate = ToolRegistry()
        duplicate._tools = {name: dataclasses.replace(t) for name, t in self._tools.items()}
        return duplicate

    def clear(self) -> None:
        """Unregister every tool."""
        self._tools.clear()

    def _names_text(self) -> str:
        return ", ".join(self._tools) or "(none)"

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(list(self._tools.values()))

    def __len__(self) -> int:
        return len(self._tools)

    def __repr__(self) -> str:
        return f"ToolRegistry({list(self._tools)!r})"


def _identity(fn: Callable[..., Any]) -> str:
    target = fn.func if isinstance(fn, functools.partial) else fn
    module = getattr(target, "__module__", None) or "?"
    qualname = getattr(target, "__qualname__", None) or type(target).__qualname__
    return f"{module}.{qualname}"


_DEFAULT_REGISTRY = ToolRegistry()


def default_registry() -> ToolRegistry:
    """The registry :func:`tool` adds to when given none.

    ``default_registry().clear()`` empties it (tests do that between runs).
    """
    return _DEFAULT_REGISTRY


@overload
def tool(
    fn: F,
    *,
    name: str | None = None,
    description: str | None = None,
    confirm: bool = False,
    registry: ToolRegistry | None = None,
) -> F: ...


@overload
def tool(
    fn: None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    confirm: bool = False,
    registry: ToolRegistry | None = None,
) -> Callable[[F], F]: ...


def tool(
    fn: F | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    confirm: bool = False,
    registry: ToolRegistry | None = None,
) -> F | Callable[[F], F]:
    """Register a function as a tool; use bare (``@tool``) or with options (``@tool(...)``).

    Parameters
    ----------
    fn
        The function (given when used bare or called directly).
    name
        The tool name (default: the function's name; required for lambdas and partials).
    description
        What it does (default: the docstring summary).
    confirm
        Ask the user before each run.
    registry
        Where to register it (default: :func:`default_registry`).

    Returns
    -------
    The function itself (it stays an ordinary function), or a decorator when ``fn`` is omitted.

    Raises
    ------
    ToolDefinitionError
        If the function cannot be described honestly (raised at registration, not when called).
    """

    def register(function: F) -> F:
        target = registry if registry is not None else default_registry()
        target.add(function, name=name, description=description, confirm=confirm)
        return function

    if fn is None:
        return register
    return register(fn)
