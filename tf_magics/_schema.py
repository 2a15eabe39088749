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
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import enum
import functools
import inspect
import json
import os
import pathlib
import re
import sys
import types
import typing
import uuid
import warnings
from collections import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Union, get_args, get_origin

import docstring_parser

from .errors import ToolDefinitionError

__all__ = [
    "ANY_TYPES",
    "ARRAY_ORIGINS",
    "MAPPING_ORIGINS",
    "NO_DEFAULT",
    "SET_ORIGINS",
    "TOOL_NAME_PATTERN",
    "UNION_ORIGINS",
    "FieldSpec",
    "FunctionSchema",
    "ToolSchemaWarning",
    "accepts_none",
    "function_schema",
    "is_pydantic_model",
    "is_typeddict",
    "object_fields",
    "type_schema",
    "unalias",
]

#: What a tool name must look like (the OpenAI rule; most servers share it).
TOOL_NAME_PATTERN = r"[a-zA-Z0-9_-]{1,64}"

#: Marks a field or parameter without a default.
NO_DEFAULT: Any = inspect.Parameter.empty

#: Annotations meaning "any JSON value".
ANY_TYPES: tuple[Any, ...] = (Any, object, inspect.Parameter.empty)
UNION_ORIGINS: tuple[Any, ...] = (Union, types.UnionType)
#: Containers described as JSON arrays (the value built is a list unless said otherwise).
ARRAY_ORIGINS: tuple[Any, ...] = (
    list,
    tuple,
    set,
    frozenset,
    abc.Sequence,
    abc.MutableSequence,
    abc.Iterable,
    abc.Collection,
    abc.Set,
    abc.MutableSet,
)
#: Array containers whose items are unique (built as a set, or a frozenset for ``frozenset``).
SET_ORIGINS: tuple[Any, ...] = (set, frozenset, abc.Set, abc.MutableSet)
MAPPING_ORIGINS: tuple[Any, ...] = (dict, abc.Mapping, abc.MutableMapping)

_NONE_TYPE = type(None)
_SCALAR_SCHEMAS: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    datetime.datetime: {"type": "string", "format": "date-time"},
    datetime.date: {"type": "string", "format": "date"},
    datetime.time: {"type": "string", "format": "time"},
    pathlib.Path: {"type": "string"},
    uuid.UUID: {"type": "string", "format": "uuid"},
}
_SIMPLE_TYPES = ("string", "integer", "number", "boolean")
_SUPPORTED_HINT = (
    "Use str, int, float, bool, list[...], dict[str, ...], Optional/Union, Literal, an Enum, "
    "a dataclass, a TypedDict or a pydantic model; or annotate it as Any for any JSON value."
)


class ToolSchemaWarning(UserWarning):
    """A tool was registered, but part of it could only be described loosely."""


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One parameter of a tool, or one field of a dataclass / TypedDict.

    Attributes
    ----------
    name
        The name the model uses.
    annotation
        The type the JSON value is converted to (``Any`` when unannotated).
    required
        True when the model must send it.
    default
        The default, or :data:`NO_DEFAULT`.
    omitted
        For parameters whose Python default is a pydantic ``Field``: makes the value to pass
        when the model leaves the argument out. ``None`` means "pass nothing" (the Python
        default applies).
    """

    name: str
    annotation: Any
    required: bool
    default: Any = NO_DEFAULT
    omitted: Callable[[], Any] | None = None


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
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": copy.deepcopy(self.parameters),
            },
        }


class _UnsupportedType(Exception):
    """Internal: an annotation (or a part of it) has no JSON Schema."""

    def __init__(self, annotation: Any, reason: str = "") -> None:
        super().__init__(annotation, reason)
        self.annotation = annotation
        self.reason = reason


@dataclass(slots=True)
class _Definitions:
    """Shared ``$defs`` of one schema: recursive types and pydantic models."""

    schemas: dict[str, dict[str, Any]] = field(default_factory=dict)
    names: dict[Any, str] = field(default_factory=dict)
    building: list[Any] = field(default_factory=list)
    recursive: set[Any] = field(default_factory=set)
    models: dict[Any, dict[str, Any]] = field(default_factory=dict)

    def allocate(self, base: str) -> str:
        name, number = base, 2
        while name in self.schemas or name in self.names.values():
            name, number = f"{base}_{number}", number + 1
        self.schemas[name] = {}
        return name

    def name_for(self, cls: Any) -> str:
        if cls not in self.names:
            self.names[cls] = self.allocate(cls.__name__)
        return self.names[cls]

    def attach(self, schema: dict[str, Any]) -> dict[str, Any]:
        if self.schemas:
            schema["$defs"] = dict(sorted(self.schemas.items()))
        return schema


# -- type helpers shared with validation ----------------------------------------------------------


def unalias(annotation: Any) -> Any:
    """Resolve ``NewType`` and ``type X = ...`` aliases to what they stand for."""
    while True:
        if hasattr(annotation, "__supertype__"):
            annotation = annotation.__supertype__
        elif type(annotation).__name__ == "TypeAliasType" and hasattr(annotation, "__value__"):
            annotation = annotation.__value__
        else:
            return annotation


def is_typeddict(annotation: Any) -> bool:
    """True for ``TypedDict`` classes (from ``typing`` or ``typing_extensions``)."""
    return (
        isinstance(annotation, type)
        and issubclass(annotation, dict)
        and hasattr(annotation, "__required_keys__")
        and hasattr(annotation, "__annotations__")
    )


def is_pydantic_model(annotation: Any) -> bool:
    """True for pydantic (v2) model classes; never imports pydantic."""
    main = sys.modules.get("pydantic.main")
    return (
        main is not None and isinstance(annotation, type) and issubclass(annotation, main.BaseModel)
    )


def _field_info(value: Any) -> Any:
    """``value`` when it is a pydantic ``FieldInfo`` (``Field(...)``), else ``None``."""
    fields_module = sys.modules.get("pydantic.fields")
    if fields_module is not None and isinstance(value, fields_module.FieldInfo):
        return value
    return None


def accepts_none(annotation: Any) -> bool:
    """True when ``None`` is a valid value for ``annotation``."""
    annotation = unalias(annotation)
    if any(annotation is any_type for any_type in ANY_TYPES):
        return True
    if annotation is None or annotation is _NONE_TYPE:
        return True
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return accepts_none(get_args(annotation)[0])
    if origin is Literal:
        return None in get_args(annotation)
    if origin in UNION_ORIGINS:
        return any(accepts_none(arg) for arg in get_args(annotation))
    return False


def _strip_qualifiers(annotation: Any) -> tuple[Any, bool | None]:
    """Remove ``Required`` / ``NotRequired`` / ``ReadOnly``; say which one was there."""
    required: bool | None = None
    while getattr(get_origin(annotation), "_name", None) in ("Required", "NotRequired", "ReadOnly"):
        qualifier = get_origin(annotation)._name
        if qualifier != "ReadOnly":
            required = qualifier == "Required"
        annotation = get_args(annotation)[0]
    return annotation, required


def object_fields(cls: type) -> tuple[FieldSpec, ...]:
    """The fields of a dataclass or ``TypedDict`` the model fills in, in declaration order.

    Raises
    ------
    NameError
        If an annotation cannot be evaluated.
    """
    hints = typing.get_type_hints(cls, include_extras=True)
    if dataclasses.is_dataclass(cls):
        return tuple(
            FieldSpec(
                name=item.name,
                annotation=hints.get(item.name, Any),
                required=_dataclass_field_required(item),
                default=item.default,
            )
            for item in dataclasses.fields(cls)
            if item.init
        )
    specs = []
    for name, hint in hints.items():
        annotation, explicit = _strip_qualifiers(hint)
        required = explicit if explicit is not None else name in cls.__required_keys__  # type: ignore[attr-defined]
        specs.append(FieldSpec(name=name, annotation=annotation, required=required))
    return tuple(specs)


def _dataclass_field_required(item: dataclasses.Field[Any]) -> bool:
    return item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING


# -- type → schema --------------------------------------------------------------------------------


def type_schema(annotation: Any) -> dict[str, Any]:
    """The JSON Schema of one annotation (with ``$defs`` when it needs any).

    Raises
    ------
    ToolDefinitionError
        If the annotation, or a part of it, cannot be described.
    """
    definitions = _Definitions()
    try:
        schema = _schema_for(annotation, definitions)
    except _UnsupportedType as exc:
        raise ToolDefinitionError(
            f"The type {_type_name(annotation)} cannot be described as JSON"
            f"{_unsupported_detail(annotation, exc)}.",
            hint=_SUPPORTED_HINT,
        ) from None
    return definitions.attach(schema)


def _schema_for(annotation: Any, definitions: _Definitions) -> dict[str, Any]:
    annotation = unalias(annotation)
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return _annotated_schema(annotation, definitions)
    if any(annotation is any_type for any_type in ANY_TYPES):
        return {}
    if annotation is None or annotation is _NONE_TYPE:
        return {"type": "null"}
    if origin is Literal:
        return _enum_values_schema(annotation, list(get_args(annotation)))
    if origin in UNION_ORIGINS:
        return _union_schema(get_args(annotation), definitions)
    if isinstance(annotation, type):
        described = _class_schema(annotation, definitions)
        if described is not None:
            return described
    container = origin or annotation
    if container in ARRAY_ORIGINS:
        return _array_schema(annotation, definitions)
    if container in MAPPING_ORIGINS:
        return _mapping_schema(annotation, definitions)
    raise _UnsupportedType(annotation)


def _class_schema(cls: type, definitions: _Definitions) -> dict[str, Any] | None:
    if issubclass(cls, enum.Enum):
        return _enum_schema(cls)
    if cls in _SCALAR_SCHEMAS:
        return dict(_SCALAR_SCHEMAS[cls])
    if is_pydantic_model(cls):
        return _pydantic_schema(cls, definitions)
    if dataclasses.is_dataclass(cls) or is_typeddict(cls):
        return _object_schema(cls, definitions)
    return None


def _annotated_schema(annotation: Any, definitions: _Definitions) -> dict[str, Any]:
    inner, *metadata = get_args(annotation)
    schema = _schema_for(inner, definitions)
    description = _metadata_description(metadata)
    if description:
        schema["description"] = description
    return schema


def _metadata_description(metadata: list[Any]) -> str | None:
    """The last description found in ``Annotated`` metadata (a string or a pydantic Field)."""
    description = None
    for item in metadata:
        if isinstance(item, str):
            description = item
        elif (info := _field_info(item)) is not None and info.description:
            description = info.description
    return description


def _json_type(value: Any) -> str | None:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return None


def _enum_values_schema(annotation: Any, values: list[Any]) -> dict[str, Any]:
    kinds = []
    for value in values:
        kind = _json_type(value)
        if kind is None or isinstance(value, enum.Enum):
            raise _UnsupportedType(annotation, f"{value!r} is not a JSON value")
        if kind not in kinds:
            kinds.append(kind)
    return {"type": kinds[0] if len(kinds) == 1 else kinds, "enum": values}


def _enum_schema(cls: type[enum.Enum]) -> dict[str, Any]:
    schema = _enum_values_schema(cls, [member.value for member in cls])
    description = _own_docstring(cls)
    if description:
        schema["description"] = description
    return schema


def _union_schema(members: tuple[Any, ...], definitions: _Definitions) -> dict[str, Any]:
    others = [member for member in members if member is not _NONE_TYPE and member is not None]
    if not others:
        return {"type": "null"}
    schemas = [_schema_for(member, definitions) for member in others]
    schema = schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
    if len(others) < len(members):
        return _nullable(schema)
    return schema


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """Let ``schema`` also accept ``null``.

    Scalars get ``"type": [T, "null"]``; anything else ``anyOf`` (better understood by the
    grammar converters of local servers).
    """
    if not schema:
        return schema
    kind = schema.get("type")
    if kind in _SIMPLE_TYPES and "enum" not in schema:
        return {**schema, "type": [kind, "null"]}
    description = schema.pop("description", None)
    if "anyOf" in schema and len(schema) == 1:
        options = [*schema["anyOf"], {"type": "null"}]
    else:
        options = [schema, {"type": "null"}]
    nullable: dict[str, Any] = {"anyOf": options}
    if description:
        nullable["description"] = description
    return nullable


def _array_schema(annotation: Any, definitions: _Definitions) -> dict[str, Any]:
    origin = get_origin(annotation)
    args = get_args(annotation)
    schema: dict[str, Any] = {"type": "array"}
    if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
        items = [_schema_for(arg, definitions) for arg in args]
        schema.update(prefixItems=items, minItems=len(items), maxItems=len(items))
        return schema
    item = _schema_for(args[0], definitions) if args else {}
    if item:
        schema["items"] = item
    if (origin or annotation) in SET_ORIGINS:
        schema["uniqueItems"] = True
    return schema


def _mapping_schema(annotation: Any, definitions: _Definitions) -> dict[str, Any]:
    args = get_args(annotation)
    schema: dict[str, Any] = {"type": "object"}
    if not args:
        return schema
    key, value = args
    if unalias(key) is not str and not any(key is any_type for any_type in ANY_TYPES):
        raise _UnsupportedType(annotation, "JSON object keys are strings: use dict[str, ...]")
    value_schema = _schema_for(value, definitions)
    if value_schema:
        schema["additionalProperties"] = value_schema
    return schema


def _object_schema(cls: type, definitions: _Definitions) -> dict[str, Any]:
    if cls in definitions.building:
        definitions.recursive.add(cls)
        return {"$ref": f"#/$defs/{definitions.name_for(cls)}"}
    definitions.building.append(cls)
    try:
        schema = _object_body(cls, definitions)
    finally:
        definitions.building.pop()
    if cls in definitions.recursive:
        name = definitions.name_for(cls)
        definitions.schemas[name] = schema
        return {"$ref": f"#/$defs/{name}"}
    return schema


def _object_body(cls: type, definitions: _Definitions) -> dict[str, Any]:
    try:
        fields = object_fields(cls)
    except Exception as exc:
        raise _UnsupportedType(cls, f"its annotations cannot be evaluated ({exc})") from exc
    docs = _parse_docstring(_own_docstring(cls) or "")
    properties: dict[str, Any] = {}
    for spec in fields:
        schema = _schema_for(spec.annotation, definitions)
        if "description" not in schema and docs.params.get(spec.name):
            schema["description"] = docs.params[spec.name]
        _add_default(schema, spec.default)
        properties[spec.name] = schema
    body: dict[str, Any] = {"type": "object", "properties": properties}
    required = [spec.name for spec in fields if spec.required]
    if required:
        body["required"] = required
    body["additionalProperties"] = False
    if docs.summary:
        body["description"] = docs.summary
    return body


def _pydantic_schema(model: type, definitions: _Definitions) -> dict[str, Any]:
    """The model's own schema, its ``$defs`` moved to the top (renamed when names clash)."""
    if model not in definitions.models:
        try:
            schema = model.model_json_schema()  # type: ignore[attr-defined]
        except Exception as exc:
            raise _UnsupportedType(model, f"pydantic cannot describe it ({exc})") from exc
        local = schema.pop("$defs", {})
        renamed = {old: definitions.allocate(old) for old in local}
        for old, body in local.items():
            definitions.schemas[renamed[old]] = _rewrite_refs(body, renamed)
        definitions.models[model] = _rewrite_refs(schema, renamed)
    return copy.deepcopy(definitions.models[model])


def _rewrite_refs(node: Any, renamed: dict[str, str]) -> Any:
    if isinstance(node, list):
        return [_rewrite_refs(item, renamed) for item in node]
    if not isinstance(node, dict):
        return node
    result = {key: _rewrite_refs(value, renamed) for key, value in node.items()}
    ref = result.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        result["$ref"] = "#/$defs/" + renamed.get(ref[len("#/$defs/") :], ref[len("#/$defs/") :])
    return result


def _add_default(schema: dict[str, Any], default: Any) -> None:
    """Record ``default`` in ``schema`` when it can be written as JSON."""
    if default is NO_DEFAULT or default is dataclasses.MISSING:
        return
    if isinstance(default, enum.Enum):
        default = default.value
    try:
        json.dumps(default, allow_nan=False)
    except (TypeError, ValueError):
        return
    schema["default"] = list(default) if isinstance(default, tuple) else default


# -- docstrings -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Docs:
    summary: str = ""
    params: dict[str, str] = field(default_factory=dict)


def _parse_docstring(text: str) -> _Docs:
    if not text.strip():
        return _Docs()
    try:
        parsed = docstring_parser.parse(text)
    except docstring_parser.ParseError:
        return _Docs(summary=text.strip())
    parts = [parsed.short_description, parsed.long_description]
    summary = "\n\n".join(part.strip() for part in parts if part and part.strip())
    params = {
        item.arg_name: " ".join(item.description.split())
        for item in parsed.params
        if item.description
    }
    return _Docs(summary=summary, params=params)


def _own_docstring(cls: type) -> str | None:
    """The class's own docstring, not an inherited or generated one."""
    text = cls.__dict__.get("__doc__")
    if not isinstance(text, str):
        return None
    if dataclasses.is_dataclass(cls) and text.startswith(f"{cls.__name__}("):
        return None  # generated by @dataclass from the signature
    return inspect.cleandoc(text)


# -- callables ------------------------------------------------------------------------------------


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
    docs = _parse_docstring(_docstring(fn, target))
    bound = set(fn.keywords) if isinstance(fn, functools.partial) else set()
    definitions = _Definitions()
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
    docs: _Docs,
    definitions: _Definitions,
    tool_name: str,
) -> tuple[FieldSpec, dict[str, Any]]:
    annotation = hints.get(parameter.name, Any)
    if parameter.annotation is inspect.Parameter.empty:
        _warn_unannotated(tool_name, parameter.name)
    spec, field_description = _parameter_spec(parameter, annotation)
    try:
        schema = _schema_for(spec.annotation, definitions)
    except _UnsupportedType as exc:
        raise ToolDefinitionError(
            f"Tool {tool_name!r}: parameter {parameter.name!r} has type "
            f"{_type_name(annotation)}, which cannot be described as JSON"
            f"{_unsupported_detail(annotation, exc)}.",
            hint=_SUPPORTED_HINT,
        ) from None
    description = (
        _top_description(annotation) or field_description or docs.params.get(parameter.name)
    )
    if description:
        schema["description"] = description
    if not spec.required:
        _add_default(schema, spec.default)
    return spec, schema


def _parameter_spec(parameter: inspect.Parameter, annotation: Any) -> tuple[FieldSpec, str | None]:
    """The parameter's spec, and the description of a pydantic ``Field`` default."""
    default = parameter.default
    info = _field_info(default)
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
        return _metadata_description(list(get_args(annotation)[1:]))
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


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type) and get_origin(annotation) is None:
        if annotation.__module__ == "builtins":
            return annotation.__qualname__
        return f"{annotation.__module__}.{annotation.__qualname__}"
    return repr(annotation).replace("typing.", "")


def _unsupported_detail(annotation: Any, exc: _UnsupportedType) -> str:
    parts = []
    if exc.annotation is not annotation:
        parts.append(f"because of {_type_name(exc.annotation)}")
    if exc.reason:
        parts.append(exc.reason)
    return f" ({'; '.join(parts)})" if parts else ""
