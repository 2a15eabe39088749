"""Reading type annotations: the helpers that schema building and argument validation share.

Both directions walk the same annotations: :mod:`~tf_magics.schema.json_schema` turns them
into JSON Schema for the model, and :mod:`~tf_magics.schema.convert` converts the model's JSON
back into values of those types. What the two must agree on lives here: which origins count as
arrays, sets and mappings, what "any value" is, how aliases unwrap, when ``None`` is accepted,
and the fields of a dataclass or ``TypedDict`` (:class:`FieldSpec`).

pydantic is never imported here: a pydantic model can only appear in an annotation once pydantic
has been imported, so it is looked up in :data:`sys.modules`.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
import types
import typing
from collections import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

__all__ = [
    "ANY_TYPES",
    "ARRAY_ORIGINS",
    "MAPPING_ORIGINS",
    "NO_DEFAULT",
    "SET_ORIGINS",
    "UNION_ORIGINS",
    "FieldSpec",
    "accepts_none",
    "field_info",
    "is_pydantic_model",
    "is_typeddict",
    "object_fields",
    "type_name",
    "unalias",
]

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


def field_info(value: Any) -> Any:
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


def type_name(annotation: Any) -> str:
    """How an annotation is named in messages (``int``, ``mymodule.Point``, ``list[str]``)."""
    if isinstance(annotation, type) and get_origin(annotation) is None:
        if annotation.__module__ == "builtins":
            return annotation.__qualname__
        return f"{annotation.__module__}.{annotation.__qualname__}"
    return repr(annotation).replace("typing.", "")
