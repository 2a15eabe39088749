"""Check a decoded JSON value against a JSON Schema given as a ``dict``: every problem, by path.

Structured replies asked for with a JSON-schema ``dict`` (rather than a Python class) are checked
here. The validator is deliberately small and always the same, whatever else is installed
(``jsonschema`` is not used even when importable): the messages have one format with the other
structured-reply checks (``"items[2].price: expected a number, got null"``), and a reply is
accepted or refused the same way on every machine. It covers what our own schemas and the usual
hand-written ones use:

- ``type`` (a name or a list of names), ``nullable`` (OpenAPI), ``enum``, ``const``;
- objects: ``properties``, ``required``, ``additionalProperties`` (``false`` or a schema);
- arrays: ``items``, ``prefixItems``, ``minItems``, ``maxItems``, ``uniqueItems``;
- ``anyOf``, ``oneOf``, ``allOf``, and local references (``#/$defs/...``, ``#/definitions/...``);
- bounds: ``minimum``, ``maximum``, ``exclusiveMinimum``, ``exclusiveMaximum``, ``minLength``,
  ``maxLength``, and ``pattern`` (searched, as JSON Schema says).

Other keywords (``format``, ``dependentRequired``, conditionals...) are not checked: they are
accepted as they come. A ``True`` schema accepts anything, a ``False`` one nothing.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

from .convert import describe_value

__all__ = ["validate_json"]

_TYPES = ("null", "boolean", "integer", "number", "string", "array", "object")
_MAX_PROBLEMS = 20


def validate_json(schema: Any, value: Any) -> list[str]:
    """Every way ``value`` does not fit ``schema`` (empty when it fits).

    Parameters
    ----------
    schema
        A JSON Schema (a ``dict``, or ``True`` / ``False``).
    value
        A decoded JSON value.

    Returns
    -------
    list of str
        One line per problem, each starting with where it is (at most twenty).
    """
    checker = _Checker(schema)
    return list(checker.problems(schema, value, ""))[:_MAX_PROBLEMS]


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "unknown"


def _fits_type(kind: str, value: Any) -> bool:
    actual = _json_type(value)
    return actual == kind or (kind == "number" and actual == "integer")


def _at(path: str, message: str) -> str:
    return f"{path}: {message}" if path else message


def _equal(a: Any, b: Any) -> bool:
    """Equal as JSON values: ``True`` is not ``1``, ``1`` is ``1.0``."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True) or (
        _json_type(a) in ("integer", "number") and _json_type(b) in ("integer", "number") and a == b
    )


class _Checker:
    """One validation: the root schema (for references) and the walk."""

    def __init__(self, root: Any) -> None:
        self.root = root

    def resolve(self, ref: str) -> Any:
        if not ref.startswith("#"):
            return True  # a remote reference is not fetched: accepted as it comes
        node: Any = self.root
        for part in ref[1:].split("/")[1:]:
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                return True
            node = node[part]
        return node

    def problems(self, schema: Any, value: Any, path: str) -> Iterator[str]:
        if schema is True or schema == {}:
            return
        if schema is False:
            yield _at(path, f"no value is allowed here, got {describe_value(value)}")
            return
        if not isinstance(schema, dict):
            return
        if isinstance(schema.get("$ref"), str):
            yield from self.problems(self.resolve(schema["$ref"]), value, path)
        if value is None and schema.get("nullable") is True:
            return
        kind_problem = self._type_problem(schema, value, path)
        if kind_problem is not None:
            yield kind_problem
            return  # the other keywords would only repeat it
        yield from self._value_problems(schema, value, path)
        yield from self._combination_problems(schema, value, path)
        if isinstance(value, dict):
            yield from self._object_problems(schema, value, path)
        elif isinstance(value, list):
            yield from self._array_problems(schema, value, path)

    def _type_problem(self, schema: dict[str, Any], value: Any, path: str) -> str | None:
        kind = schema.get("type")
        kinds = [kind] if isinstance(kind, str) else kind if isinstance(kind, list) else None
        if not kinds:
            return None
        known = [k for k in kinds if k in _TYPES]
        if not known or any(_fits_type(k, value) for k in known):
            return None
        names = " or ".join(_article(k) for k in known)
        return _at(path, f"expected {names}, got {describe_value(value)}")

    def _value_problems(self, schema: dict[str, Any], value: Any, path: str) -> Iterator[str]:
        if "const" in schema and not _equal(schema["const"], value):
            expected = json.dumps(schema["const"], ensure_ascii=False)
            yield _at(path, f"expected {expected}, got {describe_value(value)}")
        choices = schema.get("enum")
        if isinstance(choices, list) and not any(_equal(c, value) for c in choices):
            listed = ", ".join(json.dumps(c, ensure_ascii=False) for c in choices)
            yield _at(path, f"expected one of {listed}, got {describe_value(value)}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            yield from _number_problems(schema, value, path)
        if isinstance(value, str):
            yield from _string_problems(schema, value, path)

    def _combination_problems(self, schema: dict[str, Any], value: Any, path: str) -> Iterator[str]:
        for part in schema.get("allOf") or ():
            yield from self.problems(part, value, path)
        options = schema.get("anyOf")
        if isinstance(options, list) and options:
            failures = [list(self.problems(option, value, path)) for option in options]
            if all(failures):
                yield _best_failure(failures, value, path)
        options = schema.get("oneOf")
        if isinstance(options, list) and options:
            failures = [list(self.problems(option, value, path)) for option in options]
            matches = sum(not failure for failure in failures)
            if matches == 0:
                yield _best_failure(failures, value, path)
            elif matches > 1:
                yield _at(path, f"matches {matches} of the oneOf choices, expected exactly one")

    def _object_problems(
        self, schema: dict[str, Any], value: dict[str, Any], path: str
    ) -> Iterator[str]:
        properties = schema.get("properties")
        properties = properties if isinstance(properties, dict) else {}
        for name in schema.get("required") or ():
            if name not in value:
                yield _at(path, f"missing required field {name!r}")
        extra = schema.get("additionalProperties", True)
        unknown = [key for key in value if key not in properties]
        if extra is False and unknown:
            listed = ", ".join(repr(key) for key in unknown)
            allowed = ", ".join(properties) or "none"
            yield _at(path, f"unknown field(s) {listed} (allowed: {allowed})")
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            if key in properties:
                yield from self.problems(properties[key], item, where)
            elif isinstance(extra, dict):
                yield from self.problems(extra, item, where)

    def _array_problems(self, schema: dict[str, Any], value: list[Any], path: str) -> Iterator[str]:
        low, high = schema.get("minItems"), schema.get("maxItems")
        if isinstance(low, int) and len(value) < low:
            yield _at(path, f"expected at least {low} item(s), got {len(value)}")
        if isinstance(high, int) and len(value) > high:
            yield _at(path, f"expected at most {high} item(s), got {len(value)}")
        if schema.get("uniqueItems") is True:
            seen = [json.dumps(item, sort_keys=True) for item in value]
            if len(set(seen)) < len(seen):
                yield _at(path, "expected unique items, got duplicates")
        prefix = schema.get("prefixItems")
        prefix = prefix if isinstance(prefix, list) else []
        for index, item in enumerate(value):
            where = f"{path}[{index}]"
            if index < len(prefix):
                yield from self.problems(prefix[index], item, where)
            elif "items" in schema:
                yield from self.problems(schema["items"], item, where)


def _number_problems(schema: dict[str, Any], value: float, path: str) -> Iterator[str]:
    if isinstance(value, float) and not math.isfinite(value):
        yield _at(path, f"expected a finite number, got {value!r}")
        return
    for keyword, words in _BOUNDS:
        bound = schema.get(keyword)
        if not isinstance(bound, (int, float)) or isinstance(bound, bool):
            continue
        if not _within(keyword, value, bound):
            yield _at(path, f"expected a number {words} {bound:g}, got {value!r}")


_BOUNDS = (
    ("minimum", "at least"),
    ("maximum", "at most"),
    ("exclusiveMinimum", "more than"),
    ("exclusiveMaximum", "less than"),
)


def _within(keyword: str, value: float, bound: float) -> bool:
    if keyword == "minimum":
        return value >= bound
    if keyword == "maximum":
        return value <= bound
    if keyword == "exclusiveMinimum":
        return value > bound
    return value < bound


def _string_problems(schema: dict[str, Any], value: str, path: str) -> Iterator[str]:
    low, high = schema.get("minLength"), schema.get("maxLength")
    if isinstance(low, int) and len(value) < low:
        yield _at(path, f"expected at least {low} character(s), got {len(value)}")
    if isinstance(high, int) and len(value) > high:
        yield _at(path, f"expected at most {high} character(s), got {len(value)}")
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        try:
            matched = re.search(pattern, value) is not None
        except re.error:
            matched = True  # a pattern Python cannot read is not held against the value
        if not matched:
            yield _at(path, f"expected a string matching {pattern!r}, got {describe_value(value)}")


def _best_failure(failures: list[list[str]], value: Any, path: str) -> str:
    """The problem to report when no alternative fits: the closest one's, or a summary."""
    closest = min(failures, key=len)
    if len(closest) == 1 and sum(len(f) == 1 for f in failures) == 1:
        return closest[0]
    return _at(path, f"{describe_value(value)} fits none of the {len(failures)} allowed forms")


def _article(kind: str) -> str:
    return {
        "null": "null",
        "boolean": "a boolean",
        "integer": "an integer",
        "number": "a number",
        "string": "a string",
        "array": "an array",
        "object": "an object",
    }[kind]
