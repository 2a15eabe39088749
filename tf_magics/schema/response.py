"""The schema of a structured reply: what is sent as ``response_format``, and how a reply is read.

``chat.ask(prompt, schema=T)`` asks the model for JSON that fits ``T`` and gives back a Python
object. :class:`ResponseSchema` is that request in one value, built once by
:meth:`ResponseSchema.of` from what the user passes:

- a dataclass, a ``TypedDict`` or a pydantic model: the reply becomes an instance of it;
- ``list[T]`` (or any other annotation :func:`~tf_magics.schema.type_schema` describes): the
  reply becomes that value (a ``list`` of ``T`` instances);
- a JSON-schema ``dict``: the reply is checked by :func:`~tf_magics.schema.validate.validate_json`
  and comes back as the decoded ``dict``.

The JSON Schema sent for a class comes from the same code that describes tool parameters, and the
reply is converted by the same code that converts tool arguments (:func:`convert_value`). Servers
want an *object* at the top of a ``response_format`` schema (OpenAI refuses anything else), so a
schema whose top is not an object is sent wrapped in one (``{"items": [...]}`` for a list,
``{"value": ...}`` otherwise) and unwrapped on the way back; a reply sent without the wrapper is
accepted too.

Reading a reply (:meth:`ResponseSchema.parse`) is tolerant of what servers without schema support
produce: a JSON code fence, or prose around one JSON value. What it accepts is still checked
against the schema.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, get_args, get_origin

from tf_magics._text import truncate
from tf_magics.errors import ConfigurationError, ToolDefinitionError, ValidationError

from .annotations import is_pydantic_model, is_typeddict, object_fields, type_name, unalias
from .convert import convert_value
from .json_schema import type_schema
from .validate import validate_json

__all__ = ["ResponseSchema", "decode_json", "is_strict_schema"]

_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]+")
_FENCE = re.compile(r"^```[A-Za-z0-9_-]*[ \t]*\n(.*?)\n?```\s*$", re.DOTALL)
_OPENERS = frozenset("{[")
_MAX_STARTS = 20
_PATH = re.compile(r"[\w.\[\]-]+: ")


@dataclass(frozen=True)
class ResponseSchema:
    """What a structured reply must be: its name, the JSON Schema sent, and how it is read.

    Build one with :meth:`of`. Instances are immutable and safe to share between requests.

    Attributes
    ----------
    name
        The schema's name as sent (``response_format.json_schema.name``: letters, digits, ``_``
        and ``-``, at most 64 characters).
    schema
        The JSON Schema sent to the server (its top is always an object).
    strict
        Whether the schema meets OpenAI's strict-mode rules (every property required, no
        additional properties, no defaults), so ``strict: true`` can be asked for.
    wrapper
        The property the value is wrapped in (``"items"``, ``"value"``), or ``None``.
    annotation
        The Python type the reply converts to, or ``None`` for a JSON-schema ``dict``.
    fields
        The names of the value's top-level fields when it is an object (the columns of a map's
        result), else ``()``.
    """

    name: str
    schema: dict[str, Any]
    strict: bool
    wrapper: str | None = None
    annotation: Any = None
    fields: tuple[str, ...] = ()
    _source: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, spec: Any) -> ResponseSchema:
        """The response schema for a class, an annotation such as ``list[T]``, or a dict.

        Raises
        ------
        ConfigurationError
            When ``spec`` cannot be described as JSON (in one line that says what would be).
        """
        if isinstance(spec, ResponseSchema):
            return spec
        if isinstance(spec, Mapping):
            return _from_dict(dict(spec))
        if isinstance(spec, str):
            raise ConfigurationError(
                f"schema must be a class, a type such as list[MyClass], or a JSON-schema dict, "
                f"not the string {spec!r}.",
                hint="Pass the class itself (schema=Review), not its name.",
            )
        return _from_annotation(spec)

    # -- reading a reply --

    def parse(self, text: str) -> Any:
        """The reply's JSON as the Python value the schema describes.

        Raises
        ------
        ValidationError
            When the text is not JSON, or the JSON does not fit (every problem listed).
        """
        raw = decode_json(text)
        decoded = self.unwrap(raw)
        try:
            if self.annotation is not None:
                return convert_value(self.annotation, decoded)
            problems = validate_json(self._source if self._source is not None else {}, decoded)
            if problems:
                raise ValidationError(problems)
            return decoded
        except ValidationError as error:
            if decoded is raw or self.wrapper is None:
                raise
            # Name the places as the model sees them: inside the wrapper object.
            raise ValidationError([_inside(self.wrapper, p) for p in error.problems]) from None

    def unwrap(self, decoded: Any) -> Any:
        """The value inside the wrapper object, when the schema was sent wrapped."""
        if self.wrapper is None:
            return decoded
        if isinstance(decoded, dict) and set(decoded) == {self.wrapper}:
            return decoded[self.wrapper]
        if isinstance(decoded, dict) and self.wrapper in decoded:
            raise ValidationError(
                [f"unknown field(s) besides {self.wrapper!r}: {', '.join(map(repr, decoded))}"]
            )
        return decoded  # sent without the wrapper (a server that ignored the schema): fine

    def instructions(self) -> str:
        """The request in words, for servers that cannot be given the schema any other way."""
        schema = json.dumps(self.schema, ensure_ascii=False, separators=(",", ":"))
        return (
            "Answer with one JSON value that matches this JSON Schema, and nothing else: no "
            f"prose, no code fence.\nJSON Schema ({self.name}): {schema}"
        )

    def field_values(self, value: Any) -> dict[str, Any]:
        """The top-level fields of a value of this schema, by name (see :attr:`fields`)."""
        if isinstance(value, Mapping):
            return {name: value.get(name) for name in self.fields}
        return {name: getattr(value, name, None) for name in self.fields}


# -- building --


def _from_annotation(annotation: Any) -> ResponseSchema:
    plain = unalias(annotation)
    if not isinstance(plain, type) and get_origin(plain) is None and plain is not Any:
        raise ConfigurationError(
            "schema must be a class (a dataclass, TypedDict or pydantic model), a type such as "
            f"list[MyClass], or a JSON-schema dict, not {truncate(repr(annotation), 60)}.",
        )
    try:
        described = type_schema(annotation)
    except ToolDefinitionError as error:
        raise ConfigurationError(
            error.message.replace("The type", "The schema type", 1), hint=error.hint
        ) from None
    name = _name_of(annotation)
    fields = _fields_of(annotation)
    schema, wrapper = _wrapped(described, "items" if _is_list(annotation) else "value")
    return ResponseSchema(
        name=name,
        schema=schema,
        strict=is_strict_schema(schema),
        wrapper=wrapper,
        annotation=annotation,
        fields=fields,
    )


def _from_dict(source: dict[str, Any]) -> ResponseSchema:
    try:
        json.dumps(source, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ConfigurationError(
            f"A JSON-schema dict must hold JSON values only ({error})."
        ) from None
    title = source.get("title")
    name = _clean_name(title if isinstance(title, str) else "response")
    is_array = source.get("type") == "array"
    schema, wrapper = _wrapped(dict(source), "items" if is_array else "value")
    properties = source.get("properties")
    fields = tuple(properties) if wrapper is None and isinstance(properties, dict) else ()
    return ResponseSchema(
        name=name,
        schema=schema,
        strict=is_strict_schema(schema),
        wrapper=wrapper,
        annotation=None,
        fields=fields,
        _source=source,
    )


def _inside(wrapper: str, problem: str) -> str:
    if problem.startswith("["):
        return f"{wrapper}{problem}"
    if _PATH.match(problem):
        return f"{wrapper}.{problem}"
    return f"{wrapper}: {problem}"


def _wrapped(schema: dict[str, Any], key: str) -> tuple[dict[str, Any], str | None]:
    """The schema with an object at its top: as it is, or wrapped in one property."""
    if schema.get("type") == "object" or (
        "properties" in schema and "type" not in schema and "anyOf" not in schema
    ):
        return schema, None
    definitions = schema.pop("$defs", None)
    wrapped: dict[str, Any] = {
        "type": "object",
        "properties": {key: schema},
        "required": [key],
        "additionalProperties": False,
    }
    if definitions is not None:
        wrapped["$defs"] = definitions
    return wrapped, key


def _is_list(annotation: Any) -> bool:
    return (get_origin(annotation) or annotation) in (list, tuple, set, frozenset)


def _name_of(annotation: Any) -> str:
    if isinstance(annotation, type) and get_origin(annotation) is None:
        return _clean_name(annotation.__name__)
    args = [a for a in get_args(annotation) if isinstance(a, type)]
    if _is_list(annotation) and args:
        return _clean_name(f"{args[0].__name__}_list")
    return _clean_name(type_name(annotation))


def _clean_name(text: str) -> str:
    return _NAME_CHARS.sub("_", text).strip("_")[:64] or "response"


def _fields_of(annotation: Any) -> tuple[str, ...]:
    if is_pydantic_model(annotation):
        return tuple(annotation.model_fields)
    if isinstance(annotation, type) and (
        dataclasses.is_dataclass(annotation) or is_typeddict(annotation)
    ):
        return tuple(spec.name for spec in object_fields(annotation))
    return ()


# -- strict mode --


def is_strict_schema(schema: Any) -> bool:
    """Whether a schema meets OpenAI's strict rules, so ``strict: true`` may be sent.

    Every object (the top, nested ones, those in ``$defs``) must list all its properties as
    required and forbid additional ones, and no ``default`` may appear.
    """
    if not isinstance(schema, dict):
        return True
    if "default" in schema:
        return False
    properties = schema.get("properties")
    if schema.get("type") == "object" or isinstance(properties, dict):
        names = set(properties) if isinstance(properties, dict) else set()
        if schema.get("additionalProperties") is not False:
            return False
        if set(schema.get("required") or ()) != names:
            return False
    return all(is_strict_schema(part) for part in _subschemas(schema))


def _subschemas(schema: dict[str, Any]) -> list[Any]:
    """The schemas nested directly in ``schema``."""
    parts: list[Any] = []
    for key in ("properties", "$defs", "definitions"):
        if isinstance(schema.get(key), dict):
            parts.extend(schema[key].values())
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        if isinstance(schema.get(key), list):
            parts.extend(schema[key])
    for key in ("items", "additionalProperties", "not"):
        if isinstance(schema.get(key), dict):
            parts.append(schema[key])
    return parts


# -- decoding --


def decode_json(text: str) -> Any:
    """The JSON value in a reply: the whole text, a fenced block, or the one value in prose.

    Raises
    ------
    ValidationError
        When no JSON value can be read (the message says where decoding stopped).
    """
    stripped = text.strip()
    if not stripped:
        raise ValidationError(["the reply is empty, not JSON"])
    fenced = _FENCE.match(stripped)
    if fenced:
        stripped = fenced.group(1).strip()
    try:
        return json.loads(stripped)
    except ValueError as error:
        first_error = error
    embedded = _embedded_json(stripped)
    if embedded is not None:
        return embedded
    assert isinstance(first_error, json.JSONDecodeError)
    return _not_json(first_error)


def _embedded_json(text: str) -> Any:
    """The first JSON object or array inside ``text`` that decodes, or ``None``."""
    decoder = json.JSONDecoder()
    starts = [position for position, char in enumerate(text) if char in _OPENERS]
    for start in starts[:_MAX_STARTS]:  # bounded: a long text full of braces stays cheap
        try:
            value, _end = decoder.raw_decode(text, start)
        except ValueError:
            continue
        return value
    return None


def _not_json(error: json.JSONDecodeError) -> Any:
    raise ValidationError(
        [f"not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})"]
    )
