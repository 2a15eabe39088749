"""Describe a Python callable as an OpenAI tool: a name, a description and a JSON Schema.

:func:`function_schema` reads the signature, the type hints and the docstring of a callable and
returns a :class:`FunctionSchema`, whose :meth:`~FunctionSchema.to_wire` is one entry of the
``tools`` list of a chat completions request.

Supported annotations (nested freely):

- ``str``, ``int``, ``float``, ``bool``, ``None``; ``datetime``, ``date``, ``time`` (ISO 8601
  strings), ``pathlib.Path``, ``uuid.UUID`` (strings);
- ``list[X]``, ``tuple[X, ...]``, ``tuple[X, Y]``, ``set[X]``, ``frozenset[X]`` and their
  ``collections.abc`` / ``typing`` spellings (arrays); ``dict[str, X]`` (objects);
- ``Optional[X]`` / ``X | None`` (nullable) and other unions (``anyOf``);
- ``Literal[...]`` and ``Enum`` subclasses with JSON values (``enum``);
- ``Annotated[X, "description"]`` and ``Annotated[X, pydantic.Field(description=...)]``;
- dataclasses, ``TypedDict`` (required keys honoured) and pydantic models (nested objects);
- ``Any`` and unannotated parameters: any JSON value (``{}``); unannotated ones warn.

What cannot be described honestly is refused with :class:`~tf_magics.errors.ToolDefinitionError`:
lambdas and ``functools.partial`` objects without an explicit name, ``*args`` / ``**kwargs``,
positional-only parameters, generators, classes, invalid names and unsupported types.

Descriptions come from the docstring (Google, NumPy, reST or Epydoc, via ``docstring_parser``): the
short and long description describe the function, the parameter sections describe the parameters.
A description given in ``Annotated`` wins over the docstring.

pydantic is never imported here: a pydantic model can only appear in an annotation once pydantic
has been imported, so it is looked up in :data:`sys.modules`.

This module reads callables; turning one annotation into JSON Schema is the job of
:mod:`tf_magics.schema`, which structured replies share.
"""

from __future__ import annotations

import copy
import functools
import inspect
import os
import re
import sys
import typing
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_args, get_origin

from tf_magics.errors import ToolDefinitionError, ToolSchemaWarning
from tf_magics.schema.annotations import NO_DEFAULT, FieldSpec, accepts_none, field_info, type_name
from tf_magics.schema.docstrings import Docs, parse_docstring
from tf_magics.schema.json_schema import (
    SUPPORTED_HINT,
    Definitions,
    UnsupportedType,
    add_default,
    metadata_description,
    schema_for,
    unsupported_detail,
)

__all__ = ["TOOL_NAME_PATTERN", "FunctionSchema", "function_schema", "tool_entry"]

#: What a tool name must look like (the OpenAI rule; most servers share it).
TOOL_NAME_PATTERN = r"[a-zA-Z0-9_-]{1,64}"


@dataclass(frozen=True, slots=True)
class FunctionSchema:
    """A callable described as a tool.

    Attributes
    ----------
    name
        The tool name the model calls.
    description
        What the tool does (from the docstring unless given).
    parameters
        The JSON Schema of the arguments object.
    fields
        The parameters, in signature order, with the types their values convert to.
    is_async
        True when calling the function returns an awaitable.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    fields: tuple[FieldSpec, ...]
    is_async: bool = False

    def to_wire(self) -> dict[str, Any]:
        """The entry of a request's ``tools`` list."""
        return tool_entry(self.name, self.description, self.parameters)


def tool_entry(name: str, description: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """An entry of a request's ``tools`` list (with its own copy of the parameters' schema)."""
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": copy.deepcopy(parameters),
        },
    }


def function_schema(
    fn: Callable[..., Any], *, name: str | None = None, description: str | None = None
) -> FunctionSchema:
    """Describe ``fn`` as a tool.

    Parameters
    ----------
    fn
        A function, a bound method, an async function, a ``functools.partial`` (with ``name``)
        or a callable object.
    name
        The tool name; defaults to ``fn.__name__``. Required for lambdas and partials.
    description
        What the tool does; defaults to the docstring's summary.

    Returns
    -------
    FunctionSchema
        The name, description, JSON Schema and parameter types.

    Raises
    ------
    ToolDefinitionError
        If ``fn`` cannot be described honestly (see the module docstring).

    Warns
    -----
    ToolSchemaWarning
        For each unannotated parameter (accepted as any JSON value).
    """
    target = _introspection_target(fn)
    tool_name = _tool_name(fn, name)
    signature = _signature(fn, tool_name)
    hints = _type_hints(target, tool_name)
    docs = parse_docstring(_docstring(fn, target))
    bound = set(fn.keywords) if isinstance(fn, functools.partial) else set()
    definitions = Definitions()
    properties: dict[str, Any] = {}
    specs: list[FieldSpec] = []
    for parameter in signature.parameters.values():
        if parameter.name in bound:
            continue  # fixed by the partial: not the model's to choose
        _check_kind(parameter, tool_name)
        spec, schema = _parameter(parameter, hints, docs, definitions, tool_name)
        specs.append(spec)
        properties[spec.name] = schema
    parameters: dict[str, Any] = {"type": "object", "properties": properties}
    required = [spec.name for spec in specs if spec.required]
    if required:
        parameters["required"] = required
    parameters["additionalProperties"] = False
    return FunctionSchema(
        name=tool_name,
        description=docs.summary if description is None else description,
        parameters=definitions.attach(parameters),
        fields=tuple(specs),
        is_async=_is_async(target),
    )


def _introspection_target(fn: Any) -> Any:
    """What to read hints and docs from: the function behind a partial or a callable object."""
    if inspect.isclass(fn):
        raise ToolDefinitionError(
            f"{fn.__name__} is a class; calling it would build an instance.",
            hint="Wrap what it should do in a function and register that.",
        )
    if not callable(fn):
        raise ToolDefinitionError(f"{fn!r} is not callable.", hint="Register a function.")
    if isinstance(fn, functools.partial):
        return _introspection_target(fn.func)
    if inspect.isroutine(fn):
        target: Any = fn
    else:
        target = type(fn).__call__
    unwrapped = inspect.unwrap(target)
    if inspect.isgeneratorfunction(unwrapped) or inspect.isasyncgenfunction(unwrapped):
        raise ToolDefinitionError(
            f"{getattr(fn, '__name__', fn)!r} is a generator; its values would never reach the "
            "model.",
            hint="Return a list instead of yielding.",
        )
    return target


def _tool_name(fn: Any, explicit: str | None) -> str:
    if explicit is not None:
        if not re.fullmatch(TOOL_NAME_PATTERN, explicit):
            raise ToolDefinitionError(
                f"{explicit!r} is not a valid tool name.",
                hint="Use 1 to 64 letters, digits, '_' or '-'.",
            )
        return explicit
    if isinstance(fn, functools.partial):
        raise ToolDefinitionError(
            f"A functools.partial of {getattr(fn.func, '__name__', fn.func)!r} has no name.",
            hint="Give it one: tool(partial(...), name='...').",
        )
    raw = getattr(fn, "__name__", None)
    if raw == "<lambda>":
        raise ToolDefinitionError(
            "A lambda has no name the model could call.",
            hint="Give it one: tool(lambda ...: ..., name='...'), or use def.",
        )
    if not isinstance(raw, str):
        raise ToolDefinitionError(
            f"{fn!r} has no __name__ to use as the tool name.", hint="Pass name='...'."
        )
    if not re.fullmatch(TOOL_NAME_PATTERN, raw):
        raise ToolDefinitionError(
            f"The name {raw!r} is not a valid tool name (1 to 64 letters, digits, '_' or '-').",
            hint="Pass a valid one: tool(fn, name='...').",
        )
    return raw


def _signature(fn: Any, tool_name: str) -> inspect.Signature:
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise ToolDefinitionError(
            f"Tool {tool_name!r}: its signature cannot be read ({exc}).",
            hint="Wrap it in a Python function with named, annotated parameters.",
        ) from exc


def _type_hints(target: Any, tool_name: str) -> dict[str, Any]:
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception as exc:
        raise ToolDefinitionError(
            f"Tool {tool_name!r}: its annotations cannot be evaluated ({type(exc).__name__}: "
            f"{exc}).",
            hint="Define or import the names the annotations use at the top level of the "
            "notebook or module before registering it.",
        ) from exc
    hints.pop("return", None)
    return hints


def _docstring(fn: Any, target: Any) -> str:
    if isinstance(fn, functools.partial) or inspect.isroutine(fn):
        return inspect.getdoc(target) or ""
    # A callable object: its __call__'s own docstring, else its class's.
    own = getattr(target, "__doc__", None)
    return inspect.cleandoc(own) if own else inspect.getdoc(type(fn)) or ""


def _is_async(target: Any) -> bool:
    # Not unwrapped: a sync wrapper around a coroutine function is called as sync (a coroutine
    # it returns is still awaited by the runner).
    return inspect.iscoroutinefunction(target)


def _check_kind(parameter: inspect.Parameter, tool_name: str) -> None:
    where = f"Tool {tool_name!r}: parameter {parameter.name!r}"
    if parameter.kind is inspect.Parameter.POSITIONAL_ONLY:
        raise ToolDefinitionError(
            f"{where} is positional-only, but the model passes arguments by name.",
            hint="Remove the '/' from the signature (or wrap the function).",
        )
    if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
        raise ToolDefinitionError(
            f"{where} is *{parameter.name}, which cannot be described to the model.",
            hint="List the parameters explicitly, or take a list parameter.",
        )
    if parameter.kind is inspect.Parameter.VAR_KEYWORD:
        raise ToolDefinitionError(
            f"{where} is **{parameter.name}, which cannot be described to the model.",
            hint="List the parameters explicitly, or take a dict[str, ...] parameter.",
        )


def _parameter(
    parameter: inspect.Parameter,
    hints: dict[str, Any],
    docs: Docs,
    definitions: Definitions,
    tool_name: str,
) -> tuple[FieldSpec, dict[str, Any]]:
    annotation = hints.get(parameter.name, Any)
    if parameter.annotation is inspect.Parameter.empty:
        _warn_unannotated(tool_name, parameter.name)
    spec, field_description = _parameter_spec(parameter, annotation)
    try:
        schema = schema_for(spec.annotation, definitions)
    except UnsupportedType as exc:
        raise ToolDefinitionError(
            f"Tool {tool_name!r}: parameter {parameter.name!r} has type "
            f"{type_name(annotation)}, which cannot be described as JSON"
            f"{unsupported_detail(annotation, exc)}.",
            hint=SUPPORTED_HINT,
        ) from None
    description = (
        _top_description(annotation) or field_description or docs.params.get(parameter.name)
    )
    if description:
        schema["description"] = description
    if not spec.required:
        add_default(schema, spec.default)
    return spec, schema


def _parameter_spec(parameter: inspect.Parameter, annotation: Any) -> tuple[FieldSpec, str | None]:
    """The parameter's spec, and the description of a pydantic ``Field`` default."""
    default = parameter.default
    info = field_info(default)
    omitted = None
    description = None
    if info is not None:
        description = info.description
        if info.is_required():
            default = NO_DEFAULT
        elif info.default_factory is not None:
            default, omitted = NO_DEFAULT, info.default_factory
        else:
            default = info.default
            omitted = functools.partial(_constant, info.default)
    if default is None and not accepts_none(annotation):
        annotation = typing.Optional[annotation]  # noqa: UP045 - built at run time
    required = default is NO_DEFAULT and omitted is None
    spec = FieldSpec(parameter.name, annotation, required, default, omitted)
    return spec, description


def _constant(value: Any) -> Any:
    return value


def _top_description(annotation: Any) -> str | None:
    if get_origin(annotation) is typing.Annotated:
        return metadata_description(list(get_args(annotation)[1:]))
    return None


def _warn_unannotated(tool_name: str, parameter: str) -> None:
    warnings.warn(
        f"Tool {tool_name!r}: parameter {parameter!r} has no type annotation, so the model may "
        f"send any JSON value for it. Annotate it (for example {parameter}: str) to describe it.",
        ToolSchemaWarning,
        stacklevel=_user_stacklevel(),
    )


def _user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside this package."""
    package = os.path.dirname(os.path.abspath(__file__))
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(
        package + os.sep
    ):
        frame = frame.f_back
        level += 1
    return level
