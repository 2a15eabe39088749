"""Describe a type annotation as JSON Schema: what the model is told a parameter accepts.

:func:`type_schema` (and :func:`schema_for`, which :mod:`tf_magics.tools.describe` uses for each
parameter of a function) map the annotations listed in that module's docstring to JSON Schema.
Recursive dataclasses and pydantic models share one ``$defs`` table (:class:`Definitions`); an
annotation with no JSON form raises :class:`UnsupportedType`, which callers turn into a
:class:`~tf_magics.errors.ToolDefinitionError` that names the parameter.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import enum
import json
import pathlib
import typing
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal, get_args, get_origin

from tf_magics.errors import ToolDefinitionError

from .annotations import (
    ANY_TYPES,
    ARRAY_ORIGINS,
    MAPPING_ORIGINS,
    NO_DEFAULT,
    SET_ORIGINS,
    UNION_ORIGINS,
    field_info,
    is_pydantic_model,
    is_typeddict,
    object_fields,
    type_name,
    unalias,
)
from .docstrings import own_docstring, parse_docstring

__all__ = [
    "SUPPORTED_HINT",
    "Definitions",
    "UnsupportedType",
    "add_default",
    "metadata_description",
    "schema_for",
    "type_schema",
    "unsupported_detail",
]

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
SUPPORTED_HINT = (
    "Use str, int, float, bool, list[...], dict[str, ...], Optional/Union, Literal, an Enum, "
    "a dataclass, a TypedDict or a pydantic model; or annotate it as Any for any JSON value."
)


class UnsupportedType(Exception):
    """An annotation (or a part of it) has no JSON Schema."""

    def __init__(self, annotation: Any, reason: str = "") -> None:
        super().__init__(annotation, reason)
        self.annotation = annotation
        self.reason = reason


@dataclass(slots=True)
class Definitions:
    """Shared ``$defs`` of one schema: recursive types and pydantic models."""

    schemas: dict[str, dict[str, Any]] = field(default_factory=dict)
    names: dict[Any, str] = field(default_factory=dict)
    building: list[Any] = field(default_factory=list)
    recursive: set[Any] = field(default_factory=set)
    models: dict[Any, dict[str, Any]] = field(default_factory=dict)

    def allocate(self, base: str) -> str:
        """Reserve a free ``$defs`` name starting with ``base``."""
        name, number = base, 2
        while name in self.schemas or name in self.names.values():
            name, number = f"{base}_{number}", number + 1
        self.schemas[name] = {}
        return name

    def name_for(self, cls: Any) -> str:
        """The ``$defs`` name of ``cls`` (reserved on first use)."""
        if cls not in self.names:
            self.names[cls] = self.allocate(cls.__name__)
        return self.names[cls]

    def attach(self, schema: dict[str, Any]) -> dict[str, Any]:
        """Add the ``$defs`` (if any) to the top-level ``schema`` and return it."""
        if self.schemas:
            schema["$defs"] = dict(sorted(self.schemas.items()))
        return schema


def type_schema(annotation: Any) -> dict[str, Any]:
    """The JSON Schema of one annotation (with ``$defs`` when it needs any).

    Raises
    ------
    ToolDefinitionError
        If the annotation, or a part of it, cannot be described.
    """
    definitions = Definitions()
    try:
        schema = schema_for(annotation, definitions)
    except UnsupportedType as exc:
        raise ToolDefinitionError(
            f"The type {type_name(annotation)} cannot be described as JSON"
            f"{unsupported_detail(annotation, exc)}.",
            hint=SUPPORTED_HINT,
        ) from None
    return definitions.attach(schema)


def schema_for(annotation: Any, definitions: Definitions) -> dict[str, Any]:
    """The schema of ``annotation``; shared definitions go to ``definitions``."""
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
    raise UnsupportedType(annotation)


def _class_schema(cls: type, definitions: Definitions) -> dict[str, Any] | None:
    if issubclass(cls, enum.Enum):
        return _enum_schema(cls)
    if cls in _SCALAR_SCHEMAS:
        return dict(_SCALAR_SCHEMAS[cls])
    if is_pydantic_model(cls):
        return _pydantic_schema(cls, definitions)
    if dataclasses.is_dataclass(cls) or is_typeddict(cls):
        return _object_schema(cls, definitions)
    return None


def _annotated_schema(annotation: Any, definitions: Definitions) -> dict[str, Any]:
    inner, *metadata = get_args(annotation)
    schema = schema_for(inner, definitions)
    description = metadata_description(metadata)
    if description:
        schema["description"] = description
    return schema


def metadata_description(metadata: list[Any]) -> str | None:
    """The last description found in ``Annotated`` metadata (a string or a pydantic Field)."""
    description = None
    for item in metadata:
        if isinstance(item, str):
            description = item
        elif (info := field_info(item)) is not None and info.description:
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
            raise UnsupportedType(annotation, f"{value!r} is not a JSON value")
        if kind not in kinds:
            kinds.append(kind)
    return {"type": kinds[0] if len(kinds) == 1 else kinds, "enum": values}


def _enum_schema(cls: type[enum.Enum]) -> dict[str, Any]:
    schema = _enum_values_schema(cls, [member.value for member in cls])
    description = own_docstring(cls)
    if description:
        schema["description"] = description
    return schema


def _union_schema(members: tuple[Any, ...], definitions: Definitions) -> dict[str, Any]:
    others = [member for member in members if member is not _NONE_TYPE and member is not None]
    if not others:
        return {"type": "null"}
    schemas = [schema_for(member, definitions) for member in others]
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


def _array_schema(annotation: Any, definitions: Definitions) -> dict[str, Any]:
    origin = get_origin(annotation)
    args = get_args(annotation)
    schema: dict[str, Any] = {"type": "array"}
    if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
        items = [schema_for(arg, definitions) for arg in args]
        schema.update(prefixItems=items, minItems=len(items), maxItems=len(items))
        return schema
    item = schema_for(args[0], definitions) if args else {}
    if item:
        schema["items"] = item
    if (origin or annotation) in SET_ORIGINS:
        schema["uniqueItems"] = True
    return schema


def _mapping_schema(annotation: Any, definitions: Definitions) -> dict[str, Any]:
    args = get_args(annotation)
    schema: dict[str, Any] = {"type": "object"}
    if not args:
        return schema
    key, value = args
    if unalias(key) is not str and not any(key is any_type for any_type in ANY_TYPES):
        raise UnsupportedType(annotation, "JSON object keys are strings: use dict[str, ...]")
    value_schema = schema_for(value, definitions)
    if value_schema:
        schema["additionalProperties"] = value_schema
    return schema


def _object_schema(cls: type, definitions: Definitions) -> dict[str, Any]:
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


def _object_body(cls: type, definitions: Definitions) -> dict[str, Any]:
    try:
        fields = object_fields(cls)
    except Exception as exc:
        raise UnsupportedType(cls, f"its annotations cannot be evaluated ({exc})") from exc
    docs = parse_docstring(own_docstring(cls) or "")
    properties: dict[str, Any] = {}
    for spec in fields:
        schema = schema_for(spec.annotation, definitions)
        if "description" not in schema and docs.params.get(spec.name):
            schema["description"] = docs.params[spec.name]
        add_default(schema, spec.default)
        properties[spec.name] = schema
    body: dict[str, Any] = {"type": "object", "properties": properties}
    required = [spec.name for spec in fields if spec.required]
    if required:
        body["required"] = required
    body["additionalProperties"] = False
    if docs.summary:
        body["description"] = docs.summary
    return body


def _pydantic_schema(model: type, definitions: Definitions) -> dict[str, Any]:
    """The model's own schema, its ``$defs`` moved to the top (renamed when names clash)."""
    if model not in definitions.models:
        try:
            schema = model.model_json_schema()  # type: ignore[attr-defined]
        except Exception as exc:
            raise UnsupportedType(model, f"pydantic cannot describe it ({exc})") from exc
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


def add_default(schema: dict[str, Any], default: Any) -> None:
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


def unsupported_detail(annotation: Any, exc: UnsupportedType) -> str:
    """What to add to "cannot be described as JSON": the part to blame and why."""
    parts = []
    if exc.annotation is not annotation:
        parts.append(f"because of {type_name(exc.annotation)}")
    if exc.reason:
        parts.append(exc.reason)
    return f" ({'; '.join(parts)})" if parts else ""
