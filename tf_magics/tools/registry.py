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
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, overload

from tf_magics._public import public
from tf_magics.errors import ToolReplacedWarning

if TYPE_CHECKING:
    from tf_magics.schema.annotations import FieldSpec

__all__ = ["Tool", "ToolRegistry", "default_registry", "tool"]

F = TypeVar("F", bound=Callable[..., Any])


@public
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
            The callable (see :func:`~tf_magics.tools.describe.function_schema` for what is
            accepted).
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
        from .describe import function_schema

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
        from .describe import tool_entry

        return tool_entry(self.name, self.description, self.schema)

    def validate(self, raw: Any, *, notes: list[str] | None = None) -> dict[str, Any]:
        """Check and convert decoded JSON arguments; see :func:`validate_arguments`."""
        from .arguments import validate_arguments

        return validate_arguments(self.fields, raw, notes=notes)

    def __repr__(self) -> str:
        flags = "".join(
            [", confirm=True" if self.confirm else "", "" if self.enabled else ", enabled=False"]
        )
        return f"Tool({self.name!r}{flags})"


@public
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


@public
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


@public
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
