"""Tools: Python callables the model may call, and running the calls it makes.

Register a function with the :func:`tool` decorator (bare or with options); it stays an ordinary
function::

    @tool
    def get_weather(city: str, unit: Literal["C", "F"] = "C") -> dict:
        '''Current weather for a city (the docstring describes the tool).'''

    @tool(confirm=True)
    def delete_file(path: str) -> str: ...

Decorated functions go into :func:`default_registry` unless another :class:`ToolRegistry` is
given. Only tools in a registry can ever run: nothing the model says reaches other objects.

Running a call (:func:`run_tool_call`, :func:`run_tool_calls`) never raises for anything the model
or the tool did: an unknown tool, arguments that are not JSON, arguments that do not fit the
schema, an exception in the tool and a declined confirmation each become a :class:`ToolResult`
with an ``"error"`` or ``"declined"`` status whose text goes back to the model so it can recover.
Only ``KeyboardInterrupt`` and cancellation propagate.

Arguments are checked against the types the schema was built from (:func:`validate_arguments`).
A few safe conversions are made and recorded in the result's ``note``:

- a string holding a number or a boolean for a number / boolean parameter (``"3"`` → ``3``,
  ``"true"`` → ``True``), or a whole-number float for an integer (``3.0`` → ``3``);
- a string holding JSON for an array or object parameter (``"[1, 2]"`` → ``[1, 2]``);
- an Enum member's name for the Enum (``"RED"`` → ``Color.RED``);
- ``null`` for a parameter that has a default but does not accept ``None``: treated as omitted.

An integer is accepted for a ``float`` without a note (JSON has one number type). Omitted
arguments are not passed, so the Python default applies. pydantic models validate themselves
(pydantic's own lax conversions apply there and are not noted).
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import datetime
import enum
import functools
import inspect
import json
import pathlib
import re
import time
import typing
import uuid
import warnings
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, get_args, get_origin, overload

from ._schema import (
    ANY_TYPES,
    ARRAY_ORIGINS,
    MAPPING_ORIGINS,
    SET_ORIGINS,
    UNION_ORIGINS,
    FieldSpec,
    accepts_none,
    function_schema,
    is_pydantic_model,
    is_typeddict,
    object_fields,
    type_schema,
    unalias,
)
from ._types import Event, ToolCall, ToolCallFinished, ToolCallStarted, ToolResult

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

#: Runs a zero-argument sync callable where it must run (e.g. the kernel's main thread).
CallSync = Callable[[Callable[[], Any]], Awaitable[Any]]
#: Asks the user whether a ``confirm=True`` tool may run with these (decoded JSON) arguments.
Confirm = Callable[["Tool", dict[str, Any]], "bool | Awaitable[bool]"]

DEFAULT_MAX_RESULT_CHARS = 20_000
#: What the model is told when a tool returns ``None``.
NO_RESULT_TEXT = "(no return value)"
_DEFAULT_MAX_ROWS = 50
_QUOTE_CHARS = 200


class ToolReplacedWarning(UserWarning):
    """A tool was registered under a name that another function already used."""


class ToolArgumentError(ValueError):
    """The arguments of a call do not fit the tool's parameters.

    Attributes
    ----------
    problems
        One line per problem, each naming the argument (``"city: expected a string, got 3"``).
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


# -- tools and registries -------------------------------------------------------------------------


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
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": copy.deepcopy(self.schema),
            },
        }

    def validate(self, raw: Any, *, notes: list[str] | None = None) -> dict[str, Any]:
        """Check and convert decoded JSON arguments; see :func:`validate_arguments`."""
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


# -- arguments ------------------------------------------------------------------------------------


class _Invalid(Exception):
    """Internal: a value does not fit its type (the message names where)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)


def validate_arguments(tool: Tool, raw: Any, *, notes: list[str] | None = None) -> dict[str, Any]:
    """Check decoded JSON arguments against ``tool``'s parameters and convert them.

    Parameters
    ----------
    tool
        The tool being called.
    raw
        The decoded JSON arguments (must be a dict).
    notes
        If given, a line is appended for every conversion made (see the module docstring).

    Returns
    -------
    dict
        Keyword arguments for the function: omitted optional arguments are left out, so their
        Python defaults apply; dataclass, TypedDict, pydantic and Enum values are built.

    Raises
    ------
    ToolArgumentError
        Listing every unknown, missing or invalid argument.
    """
    if not isinstance(raw, dict):
        raise ToolArgumentError([f"the arguments must be a JSON object, not {_describe(raw)}"])
    converted, problems = _convert_members(tool.fields, raw, "", [] if notes is None else notes)
    if problems:
        raise ToolArgumentError(problems)
    return converted


def _convert_members(
    specs: Sequence[FieldSpec], raw: dict[str, Any], path: str, notes: list[str]
) -> tuple[dict[str, Any], list[str]]:
    """Convert the entries of a JSON object (arguments, or a dataclass's fields)."""
    word = "field" if path else "argument"
    prefix = f"{path}: " if path else ""
    allowed = [spec.name for spec in specs]
    problems = []
    unknown = [key for key in raw if key not in allowed]
    if unknown:
        listed = ", ".join(repr(key) for key in unknown)
        expected = ", ".join(allowed) if allowed else f"no {word}s are accepted"
        problems.append(f"{prefix}unknown {word}(s) {listed} (allowed: {expected})")
    converted: dict[str, Any] = {}
    for spec in specs:
        where = f"{path}.{spec.name}" if path else spec.name
        if _treated_as_omitted(spec, raw, where, notes):
            if spec.required:
                problems.append(f"{prefix}missing required {word} {spec.name!r}")
            elif spec.omitted is not None:
                converted[spec.name] = spec.omitted()
            continue
        try:
            converted[spec.name] = _convert(spec.annotation, raw[spec.name], where, notes)
        except _Invalid as exc:
            problems.append(str(exc))
    return converted, problems


def _treated_as_omitted(spec: FieldSpec, raw: dict[str, Any], where: str, notes: list[str]) -> bool:
    """True when the entry is absent, or ``null`` where only the default can stand for it."""
    if spec.name not in raw:
        return True
    if raw[spec.name] is None and not spec.required and not accepts_none(spec.annotation):
        notes.append(f"{where}: null treated as omitted (the default applies)")
        return True
    return False


def _convert(annotation: Any, value: Any, path: str, notes: list[str]) -> Any:
    """``value`` (decoded JSON) as an instance of ``annotation``, or :class:`_Invalid`."""
    annotation = unalias(annotation)
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return _convert(get_args(annotation)[0], value, path, notes)
    if any(annotation is any_type for any_type in ANY_TYPES):
        return value
    if annotation is None or annotation is type(None):
        if value is None:
            return None
        raise _Invalid(path, f"expected null, got {_describe(value)}")
    if origin is Literal:
        return _convert_choice(list(get_args(annotation)), value, path, notes)
    if origin in UNION_ORIGINS:
        return _convert_union(annotation, value, path, notes)
    if isinstance(annotation, type):
        return _convert_class(annotation, value, path, notes)
    return _convert_container(annotation, value, path, notes)


def _convert_class(cls: type, value: Any, path: str, notes: list[str]) -> Any:
    if issubclass(cls, enum.Enum):
        return _convert_enum(cls, value, path, notes)
    if cls in _SCALAR_CONVERTERS:
        return _SCALAR_CONVERTERS[cls](value, path, notes)
    if is_pydantic_model(cls):
        return _convert_pydantic(cls, _decoded(value, dict, path, notes), path)
    if dataclasses.is_dataclass(cls) or is_typeddict(cls):
        return _convert_object(cls, value, path, notes)
    return _convert_container(cls, value, path, notes)


def _convert_union(annotation: Any, value: Any, path: str, notes: list[str]) -> Any:
    members = get_args(annotation)
    if value is None and accepts_none(annotation):
        return None
    fallback: tuple[Any, list[str]] | None = None
    failures = []
    for member in members:
        if member is type(None):
            continue
        member_notes: list[str] = []
        try:
            result = _convert(member, value, path, member_notes)
        except _Invalid as exc:
            failures.append(exc)
            continue
        if not member_notes:
            return result
        fallback = fallback or (result, member_notes)
    if fallback is not None:
        notes.extend(fallback[1])
        return fallback[0]
    if len(failures) == 1:
        raise failures[0]
    raise _Invalid(path, f"expected {_label(annotation)}, got {_describe(value)}")


def _convert_choice(choices: list[Any], value: Any, path: str, notes: list[str]) -> Any:
    for choice in choices:
        if _same(choice, value):
            return choice
    if isinstance(value, str):
        parsed = _parse_scalar(value)
        for choice in choices:
            if not isinstance(choice, str) and _same(choice, parsed):
                notes.append(f"{path}: converted {value!r} to {choice!r}")
                return choice
    raise _Invalid(path, f"expected one of {_json_list(choices)}, got {_describe(value)}")


def _convert_enum(cls: type[enum.Enum], value: Any, path: str, notes: list[str]) -> Any:
    members = list(cls)
    for member in members:
        if _same(member.value, value):
            return member
    if isinstance(value, str) and value in cls.__members__:
        notes.append(f"{path}: converted the name {value!r} to {cls.__name__}.{value}")
        return cls[value]
    choice = _convert_choice([member.value for member in members], value, path, notes)
    return cls(choice)


def _same(expected: Any, value: Any) -> bool:
    """Equal as JSON values (``True`` is not ``1``)."""
    return isinstance(expected, bool) == isinstance(value, bool) and bool(expected == value)


def _convert_container(annotation: Any, value: Any, path: str, notes: list[str]) -> Any:
    container = get_origin(annotation) or annotation
    if container in ARRAY_ORIGINS:
        items = _decoded(value, list, path, notes)
        if not isinstance(items, list):
            raise _Invalid(path, f"expected an array, got {_describe(value)}")
        return _convert_array(annotation, items, path, notes)
    if container in MAPPING_ORIGINS:
        mapping = _decoded(value, dict, path, notes)
        if not isinstance(mapping, dict):
            raise _Invalid(path, f"expected an object, got {_describe(value)}")
        args = get_args(annotation)
        item_type = args[1] if args else Any
        return {
            key: _convert(item_type, item, f"{path}.{key}", notes) for key, item in mapping.items()
        }
    raise _Invalid(path, f"values of type {annotation!r} cannot be built from JSON")


def _convert_array(annotation: Any, items: list[Any], path: str, notes: list[str]) -> Any:
    origin = get_origin(annotation) or annotation
    args = get_args(annotation)
    if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
        if len(items) != len(args):
            raise _Invalid(path, f"expected an array of {len(args)} items, got {len(items)}")
        return tuple(
            _convert(arg, item, f"{path}[{index}]", notes)
            for index, (arg, item) in enumerate(zip(args, items, strict=True))
        )
    item_type = args[0] if args else Any
    converted = [
        _convert(item_type, item, f"{path}[{index}]", notes) for index, item in enumerate(items)
    ]
    if origin is tuple:
        return tuple(converted)
    if origin in SET_ORIGINS:
        try:
            return frozenset(converted) if origin is frozenset else set(converted)
        except TypeError as exc:
            raise _Invalid(path, f"the items cannot form a set ({exc})") from None
    return converted


def _decoded(value: Any, kind: type, path: str, notes: list[str]) -> Any:
    """Decode a JSON text sent where an array or object was expected (a common model slip)."""
    if not isinstance(value, str):
        return value
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    if isinstance(decoded, kind):
        notes.append(
            f"{path}: decoded a JSON string into {'an array' if kind is list else 'an object'}"
        )
        return decoded
    return value


def _convert_object(cls: type, value: Any, path: str, notes: list[str]) -> Any:
    raw = _decoded(value, dict, path, notes)
    if not isinstance(raw, dict):
        raise _Invalid(path, f"expected an object, got {_describe(value)}")
    converted, problems = _convert_members(object_fields(cls), raw, path, notes)
    if problems:
        raise _Invalid("", "; ".join(problems))
    if is_typeddict(cls):
        return converted
    try:
        return cls(**converted)
    except Exception as exc:
        raise _Invalid(path, f"{cls.__name__}: {_exception_text(exc)}") from None


def _convert_pydantic(model: type, value: Any, path: str) -> Any:
    try:
        return model.model_validate(value)  # type: ignore[attr-defined]
    except Exception as exc:
        errors = getattr(exc, "errors", None)
        if not callable(errors):
            raise _Invalid(path, _exception_text(exc)) from None
        lines = [
            f"{'.'.join([path, *map(str, error.get('loc', ()))])}: {error.get('msg')}"
            for error in errors()[:5]
        ]
        raise _Invalid("", "; ".join(lines)) from None


# scalar converters


_INT_TEXT = re.compile(r"[+-]?\d+")
_FLOAT_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _parse_scalar(text: str) -> Any:
    """The number or boolean a string spells, else the string itself."""
    stripped = text.strip()
    if stripped.lower() in ("true", "false"):
        return stripped.lower() == "true"
    if _INT_TEXT.fullmatch(stripped):
        return int(stripped)
    if _FLOAT_TEXT.fullmatch(stripped):
        return float(stripped)
    return text


def _to_str(value: Any, path: str, notes: list[str]) -> str:
    if isinstance(value, str):
        return value
    raise _Invalid(path, f"expected a string, got {_describe(value)}")


def _to_int(value: Any, path: str, notes: list[str]) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        notes.append(f"{path}: converted {value!r} to {int(value)!r}")
        return int(value)
    if isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        notes.append(f"{path}: converted {value!r} to {int(value)!r}")
        return int(value)
    raise _Invalid(path, f"expected an integer, got {_describe(value)}")


def _to_float(value: Any, path: str, notes: list[str]) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
        notes.append(f"{path}: converted {value!r} to {float(value)!r}")
        return float(value)
    raise _Invalid(path, f"expected a number, got {_describe(value)}")


def _to_bool(value: Any, path: str, notes: list[str]) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        result = value.strip().lower() == "true"
        notes.append(f"{path}: converted {value!r} to {result!r}")
        return result
    raise _Invalid(path, f"expected a boolean, got {_describe(value)}")


def _from_text(build: Callable[[str], Any], expected: str) -> Callable[[Any, str, list[str]], Any]:
    def convert(value: Any, path: str, notes: list[str]) -> Any:
        if isinstance(value, str):
            try:
                return build(value)
            except ValueError:
                pass
        raise _Invalid(path, f"expected {expected}, got {_describe(value)}")

    return convert


def _parse_datetime(text: str) -> datetime.datetime:
    # Python < 3.11 does not read a trailing "Z".
    return datetime.datetime.fromisoformat(re.sub(r"[zZ]$", "+00:00", text.strip()))


_SCALAR_CONVERTERS: dict[type, Callable[[Any, str, list[str]], Any]] = {
    str: _to_str,
    int: _to_int,
    float: _to_float,
    bool: _to_bool,
    datetime.datetime: _from_text(_parse_datetime, "an ISO 8601 date-time string"),
    datetime.date: _from_text(datetime.date.fromisoformat, "an ISO 8601 date string (YYYY-MM-DD)"),
    datetime.time: _from_text(datetime.time.fromisoformat, "an ISO 8601 time string (HH:MM:SS)"),
    pathlib.Path: _from_text(pathlib.Path, "a path string"),
    uuid.UUID: _from_text(uuid.UUID, "a UUID string"),
}


def _describe(value: Any) -> str:
    """A short description of a JSON value for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {json.dumps(value)}"
    if isinstance(value, (int, float)):
        return f"number {value!r}"
    if isinstance(value, str):
        return f"string {_quote(value, 60)}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _label(annotation: Any) -> str:
    schema = type_schema(annotation)
    options = schema.get("anyOf", [schema])
    labels = []
    for option in options:
        kind = option.get("type", "any value")
        labels.extend(kind if isinstance(kind, list) else [kind])
    return " or ".join(dict.fromkeys(labels))


def _json_list(values: list[Any]) -> str:
    return ", ".join(json.dumps(value) for value in values)


def _excerpt(text: str, limit: int = _QUOTE_CHARS) -> str:
    """The start of a raw text, marked when cut."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def _quote(text: str, limit: int = _QUOTE_CHARS) -> str:
    shown = text if len(text) <= limit else text[:limit] + "…"
    return json.dumps(shown, ensure_ascii=False)


# -- running --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Ready:
    """A call that passed every check and may run."""

    tool: Tool
    call: ToolCall
    arguments: dict[str, Any]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Runner:
    """Everything one batch of calls shares."""

    registry: ToolRegistry
    call_sync: CallSync
    confirm: Confirm | None
    max_result_chars: int
    emit: Callable[[Event], None] | None

    async def prepare(self, call: ToolCall) -> _Ready | ToolResult:
        """Look the tool up, decode and validate the arguments, ask for confirmation."""
        decoded = _decode_arguments(call)
        if self.emit is not None:
            self.emit(ToolCallStarted(call, decoded if isinstance(decoded, dict) else None))
        found = self.registry.get(call.name)
        if found is None or not found.enabled:
            available = ", ".join(t.name for t in self.registry.enabled()) or "(none)"
            return _error(call, f"Error: unknown tool {call.name!r}. Available tools: {available}.")
        if isinstance(decoded, str):
            return _error(
                call,
                f"Error: the arguments for {call.name!r} are not valid JSON ({decoded}); send "
                f"them as one JSON object. Received: {_excerpt(call.arguments)}",
            )
        notes: list[str] = []
        try:
            arguments = validate_arguments(found, decoded, notes=notes)
        except ToolArgumentError as exc:
            return _error(
                call,
                f"Error: invalid arguments for {call.name!r}: {exc}. "
                f"Parameters: {_parameter_summary(found)}.",
            )
        if found.confirm:
            declined = await self._ask(found, call, decoded)
            if declined is not None:
                return declined
        return _Ready(found, call, arguments, notes)

    async def _ask(self, found: Tool, call: ToolCall, decoded: dict[str, Any]) -> ToolResult | None:
        """``None`` when the user allows the call, else the result that says why not."""
        if self.confirm is None:
            return ToolResult(
                call,
                f"Declined: {call.name!r} needs the user's confirmation and no one can answer "
                "here, so it was not run. To allow it, register the tool with confirm=False or "
                "pass an approve (confirm) callback.",
                status="declined",
            )
        try:
            answer = self.confirm(found, decoded)
            if inspect.isawaitable(answer):
                answer = await answer
        except Exception as exc:
            return _error(call, f"Error: could not ask the user to confirm: {_exception_text(exc)}")
        if answer:
            return None
        return ToolResult(
            call, f"Declined by the user: {call.name!r} was not run.", status="declined"
        )

    async def execute(self, outcome: _Ready | ToolResult) -> ToolResult:
        """Run a ready call (a result passes through) and report it."""
        result = outcome if isinstance(outcome, ToolResult) else await self._run(outcome)
        if self.emit is not None:
            self.emit(ToolCallFinished(result))
        return result

    async def _run(self, ready: _Ready) -> ToolResult:
        start = time.perf_counter()
        try:
            bound = functools.partial(ready.tool.function, **ready.arguments)
            value = bound() if ready.tool.is_async else await self.call_sync(bound)
            if inspect.isawaitable(value):
                value = await value
        except Exception as exc:
            text, note = _cap(f"Error: {_exception_text(exc)}", self.max_result_chars)
            return ToolResult(
                ready.call,
                text,
                status="error",
                duration=time.perf_counter() - start,
                value=exc,
                note=_join_notes([*ready.notes, note]),
            )
        duration = time.perf_counter() - start
        content, note = serialize_result(value, self.max_result_chars)
        return ToolResult(
            ready.call,
            content,
            duration=duration,
            value=value,
            note=_join_notes([*ready.notes, note]),
        )


def _decode_arguments(call: ToolCall) -> dict[str, Any] | str:
    """The decoded arguments, or why they cannot be decoded."""
    if call.arguments.strip() == "null":
        return {}
    try:
        return call.parsed_arguments()
    except ValueError as exc:
        return str(exc)


def _error(call: ToolCall, text: str) -> ToolResult:
    return ToolResult(call, text, status="error")


def _exception_text(exc: BaseException) -> str:
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _join_notes(notes: Iterable[str | None]) -> str | None:
    kept = [note for note in notes if note]
    return "; ".join(kept) if kept else None


def _parameter_summary(found: Tool) -> str:
    properties = found.schema.get("properties", {})
    if not properties:
        return "(none)"
    required = set(found.schema.get("required", []))
    parts = []
    for name, schema in properties.items():
        kind = schema.get("type", "any") if isinstance(schema, dict) else "any"
        kind = " or ".join(kind) if isinstance(kind, list) else kind
        parts.append(f"{name} ({kind}{', required' if name in required else ''})")
    return ", ".join(parts)


async def run_tool_call(
    registry: ToolRegistry,
    call: ToolCall,
    *,
    call_sync: CallSync,
    confirm: Confirm | None = None,
    max_result_chars: int = DEFAULT_MAX_RESULT_CHARS,
    emit: Callable[[Event], None] | None = None,
) -> ToolResult:
    """Run one tool call and describe what happened.

    Parameters
    ----------
    registry
        The tools that may run; any other name is an error result.
    call
        The call as the model sent it.
    call_sync
        Runs a zero-argument sync callable where sync tools must run and returns its value
        (in tests: ``async def call_sync(f): return f()``). Async tools are awaited directly.
    confirm
        Asked before a ``confirm=True`` tool runs, with the tool and its decoded JSON arguments;
        may return an awaitable. ``None`` means no one can answer: such tools are declined.
    max_result_chars
        Longer result texts are cut with a note.
    emit
        Receives :class:`ToolCallStarted` and :class:`ToolCallFinished` events.

    Returns
    -------
    ToolResult
        ``"ok"`` with the serialized value; ``"error"`` for an unknown tool, invalid JSON, invalid
        arguments or an exception (kept in ``value``); ``"declined"`` when confirmation is refused.

    Raises
    ------
    KeyboardInterrupt, asyncio.CancelledError
        These propagate; nothing else does.
    """
    runner = _Runner(registry, call_sync, confirm, max_result_chars, emit)
    return await runner.execute(await runner.prepare(call))


async def run_tool_calls(
    registry: ToolRegistry,
    calls: Sequence[ToolCall],
    *,
    call_sync: CallSync,
    confirm: Confirm | None = None,
    max_result_chars: int = DEFAULT_MAX_RESULT_CHARS,
    emit: Callable[[Event], None] | None = None,
) -> list[ToolResult]:
    """Run several calls in call order and return their results in call order.

    Calls are checked and confirmed one at a time, in order. Consecutive async tools run
    concurrently; a sync tool waits until the async calls before it have finished, so a sync
    call never overtakes an earlier one. Parameters are those of :func:`run_tool_call`.

    Raises
    ------
    KeyboardInterrupt, asyncio.CancelledError
        These propagate; calls still running are cancelled first.
    """
    runner = _Runner(registry, call_sync, confirm, max_result_chars, emit)
    results: list[ToolResult | None] = [None] * len(calls)
    running: dict[int, asyncio.Task[ToolResult]] = {}
    try:
        for index, call in enumerate(calls):
            outcome = await runner.prepare(call)
            if isinstance(outcome, _Ready) and outcome.tool.is_async:
                running[index] = asyncio.ensure_future(runner.execute(outcome))
                continue
            if isinstance(outcome, _Ready):
                await _drain(running, results)
            results[index] = await runner.execute(outcome)
        await _drain(running, results)
    except BaseException:
        await _cancel(running.values())
        raise
    return [result for result in results if result is not None]


async def _drain(
    running: dict[int, asyncio.Task[ToolResult]], results: list[ToolResult | None]
) -> None:
    """Wait for the running async calls, in call order."""
    while running:
        index = next(iter(running))
        results[index] = await running[index]
        del running[index]


async def _cancel(tasks: Iterable[asyncio.Task[ToolResult]]) -> None:
    pending = [task for task in tasks if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)


# -- results --------------------------------------------------------------------------------------


def serialize_result(
    value: Any, max_chars: int = DEFAULT_MAX_RESULT_CHARS, *, max_rows: int = _DEFAULT_MAX_ROWS
) -> tuple[str, str | None]:
    """The text the model receives for a tool's return value.

    Parameters
    ----------
    value
        What the tool returned.
    max_chars
        Longer texts are cut to this many characters and a note is appended.
    max_rows
        pandas objects longer than this show their first rows only.

    Returns
    -------
    text, note
        ``note`` says what was left out (``None`` when nothing was).

    Notes
    -----
    In order: a ``str`` as is; ``None`` as :data:`NO_RESULT_TEXT`; an object's ``_repr_llm_()``;
    a pandas DataFrame / Series as a markdown table (CSV without ``tabulate``) of its first
    ``max_rows`` rows; a numpy array as its ``repr`` (numpy elides long arrays); numbers, bools,
    dicts, lists, tuples, sets, dataclasses, pydantic models and numpy scalars as JSON (``str()``
    for leaves JSON cannot hold); dates as ISO 8601; else ``_repr_markdown_()``, then ``repr()``.
    """
    text, note = _to_text(value, max_rows)
    capped, cap_note = _cap(text, max_chars)
    return capped, _join_notes([note, cap_note])


def _to_text(value: Any, max_rows: int) -> tuple[str, str | None]:
    if isinstance(value, str):
        return value, None
    if value is None:
        return NO_RESULT_TEXT, None
    special = _repr_method(value, "_repr_llm_")
    if special is not None:
        return special, None
    if _is_pandas(value):
        return _pandas_text(value, max_rows)
    if _module_root(value) == "numpy" and getattr(value, "ndim", 0) > 0:
        return _safe_repr(value), None
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat(), None
    if _is_jsonable(value):
        try:
            return json.dumps(value, ensure_ascii=False, default=_json_default), None
        except (TypeError, ValueError):
            pass
    markdown = _repr_method(value, "_repr_markdown_")
    if markdown is not None:
        return markdown, None
    return _safe_repr(value), None


def _is_jsonable(value: Any) -> bool:
    return (
        isinstance(value, (bool, int, float, dict, list, tuple, set, frozenset))
        or (dataclasses.is_dataclass(value) and not isinstance(value, type))
        or _is_pydantic_instance(value)
        or (_module_root(value) == "numpy" and hasattr(value, "item"))
    )


def _module_root(value: Any) -> str:
    return (type(value).__module__ or "").split(".")[0]


def _is_pandas(value: Any) -> bool:
    return _module_root(value) == "pandas" and type(value).__name__ in ("DataFrame", "Series")


def _is_pydantic_instance(value: Any) -> bool:
    return is_pydantic_model(type(value))


def _pandas_text(value: Any, max_rows: int) -> tuple[str, str | None]:
    total = len(value)
    shown = value.head(max_rows) if total > max_rows else value
    try:
        text = shown.to_markdown()
    except ImportError:  # to_markdown needs the optional tabulate package
        text = shown.to_csv()
    if total <= max_rows:
        return text, None
    note = f"showing {len(shown):,} of {total:,} rows"
    return f"{text.rstrip()}\n({note})", note


def _repr_method(value: Any, name: str) -> str | None:
    """The text of an IPython-style ``_repr_*_`` method, when it gives one."""
    method = getattr(value, name, None)
    if not callable(method):
        return None
    try:
        text = method()
    except Exception:
        return None
    if isinstance(text, tuple) and text:
        text = text[0]  # (data, metadata), as IPython allows
    return text if isinstance(text, str) else None


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:
        return object.__repr__(value)


def _json_default(value: Any) -> Any:
    """JSON for leaves ``json`` cannot write itself."""
    if isinstance(value, (set, frozenset)):
        try:
            return sorted(value)
        except TypeError:
            return list(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {item.name: getattr(value, item.name) for item in dataclasses.fields(value)}
    if _is_pydantic_instance(value):
        return value.model_dump(mode="json")
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if _module_root(value) == "numpy" and hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _cap(text: str, max_chars: int) -> tuple[str, str | None]:
    if len(text) <= max_chars:
        return text, None
    note = f"truncated: {len(text):,} characters, showing the first {max_chars:,}"
    return f"{text[:max_chars]}\n… [{note}]", note
