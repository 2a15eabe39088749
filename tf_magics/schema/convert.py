"""Checking decoded JSON against Python types, and converting it into values of those types.

One converter serves every place a model sends JSON that must become Python: the arguments of a
tool call (checked against the function's parameters, :func:`convert_fields`) and a structured
reply (checked against a class, :func:`convert_value`). A few safe conversions are made and
recorded in ``notes``:

- a string holding a number or a boolean for a number / boolean parameter (``"3"`` → ``3``,
  ``"true"`` → ``True``), or a whole-number float for an integer (``3.0`` → ``3``);
- a string holding JSON for an array or object parameter (``"[1, 2]"`` → ``[1, 2]``);
- an Enum member's name for the Enum (``"RED"`` → ``Color.RED``);
- ``null`` for a parameter that has a default but does not accept ``None``: treated as omitted.

An integer is accepted for a ``float`` without a note (JSON has one number type). Omitted
arguments are not passed, so the Python default applies. pydantic models validate themselves
(pydantic's own lax conversions apply there and are not noted).

Every problem is collected, not just the first, so one
:class:`~tf_magics.errors.ValidationError` tells the model everything to fix in its next attempt.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import pathlib
import re
import typing
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Literal, get_args, get_origin

from tf_magics._text import exception_text, truncate
from tf_magics.errors import ValidationError

from .annotations import (
    ANY_TYPES,
    ARRAY_ORIGINS,
    MAPPING_ORIGINS,
    SET_ORIGINS,
    UNION_ORIGINS,
    FieldSpec,
    accepts_none,
    is_pydantic_model,
    is_typeddict,
    object_fields,
    unalias,
)
from .json_schema import type_schema

__all__ = ["convert_fields", "convert_value", "describe_value"]


class _Invalid(Exception):
    """A value does not fit its type (the message names where)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)


def convert_fields(
    specs: Sequence[FieldSpec], raw: Any, *, notes: list[str] | None = None
) -> dict[str, Any]:
    """Check a decoded JSON object against named fields (a function's parameters) and convert it.

    Parameters
    ----------
    specs
        The fields, with the types their values convert to.
    raw
        The decoded JSON value (must be an object).
    notes
        If given, a line is appended for every conversion made (see the module docstring).

    Returns
    -------
    dict
        The converted values: omitted optional fields are left out (so Python defaults apply),
        and dataclass, TypedDict, pydantic and Enum values are built.

    Raises
    ------
    ValidationError
        Listing every unknown, missing or invalid field.
    """
    if not isinstance(raw, dict):
        raise ValidationError([f"the arguments must be a JSON object, not {describe_value(raw)}"])
    converted, problems = _convert_members(
        specs, raw, "", [] if notes is None else notes, "argument"
    )
    if problems:
        raise ValidationError(problems)
    return converted


def convert_value(annotation: Any, value: Any, *, notes: list[str] | None = None) -> Any:
    """``value`` (decoded JSON) as an instance of ``annotation``.

    Raises
    ------
    ValidationError
        Naming where the value does not fit (``"items[2].price: expected a number, got null"``).
    """
    try:
        return _convert(annotation, value, "", [] if notes is None else notes)
    except _Invalid as exc:
        raise ValidationError(str(exc).split("; ")) from None


def _convert_members(
    specs: Sequence[FieldSpec],
    raw: dict[str, Any],
    path: str,
    notes: list[str],
    word: str = "field",
) -> tuple[dict[str, Any], list[str]]:
    """Convert the entries of a JSON object (a function's arguments, or an object's fields)."""
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
        raise _Invalid(path, f"expected null, got {describe_value(value)}")
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
    raise _Invalid(path, f"expected {_label(annotation)}, got {describe_value(value)}")


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
    raise _Invalid(path, f"expected one of {_json_list(choices)}, got {describe_value(value)}")


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
            raise _Invalid(path, f"expected an array, got {describe_value(value)}")
        return _convert_array(annotation, items, path, notes)
    if container in MAPPING_ORIGINS:
        mapping = _decoded(value, dict, path, notes)
        if not isinstance(mapping, dict):
            raise _Invalid(path, f"expected an object, got {describe_value(value)}")
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
    converted, problems = [], []
    for index, item in enumerate(items):
        # Every bad item is reported, not only the first: one re-ask can fix them all.
        try:
            converted.append(_convert(item_type, item, f"{path}[{index}]", notes))
        except _Invalid as exc:
            problems.append(str(exc))
    if problems:
        raise _Invalid("", "; ".join(problems))
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
        raise _Invalid(path, f"expected an object, got {describe_value(value)}")
    converted, problems = _convert_members(object_fields(cls), raw, path, notes)
    if problems:
        raise _Invalid("", "; ".join(problems))
    if is_typeddict(cls):
        return converted
    try:
        return cls(**converted)
    except Exception as exc:
        raise _Invalid(path, f"{cls.__name__}: {exception_text(exc)}") from None


def _convert_pydantic(model: type, value: Any, path: str) -> Any:
    try:
        return model.model_validate(value)  # type: ignore[attr-defined]
    except Exception as exc:
        errors = getattr(exc, "errors", None)
        if not callable(errors):
            raise _Invalid(path, exception_text(exc)) from None
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
    raise _Invalid(path, f"expected a string, got {describe_value(value)}")


def _to_int(value: Any, path: str, notes: list[str]) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        notes.append(f"{path}: converted {value!r} to {int(value)!r}")
        return int(value)
    if isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        notes.append(f"{path}: converted {value!r} to {int(value)!r}")
        return int(value)
    raise _Invalid(path, f"expected an integer, got {describe_value(value)}")


def _to_float(value: Any, path: str, notes: list[str]) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
        notes.append(f"{path}: converted {value!r} to {float(value)!r}")
        return float(value)
    raise _Invalid(path, f"expected a number, got {describe_value(value)}")


def _to_bool(value: Any, path: str, notes: list[str]) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        result = value.strip().lower() == "true"
        notes.append(f"{path}: converted {value!r} to {result!r}")
        return result
    raise _Invalid(path, f"expected a boolean, got {describe_value(value)}")


def _from_text(build: Callable[[str], Any], expected: str) -> Callable[[Any, str, list[str]], Any]:
    def convert(value: Any, path: str, notes: list[str]) -> Any:
        if isinstance(value, str):
            try:
                return build(value)
            except ValueError:
                pass
        raise _Invalid(path, f"expected {expected}, got {describe_value(value)}")

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


def describe_value(value: Any) -> str:
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


def _quote(text: str, limit: int) -> str:
    return json.dumps(truncate(text, limit), ensure_ascii=False)
