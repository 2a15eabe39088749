"""Names that ``tf_magics`` exports report ``tf_magics`` as their module, wherever defined.

A traceback then reads ``tf_magics.APIError``, a repr ``tf_magics.Chat``, and pickles and docs
point at the public path rather than at a module that may move (httpx does the same).
"""

from __future__ import annotations

import types
from collections.abc import Iterable
from typing import Any, TypeVar

__all__ = ["PUBLIC_MODULE", "public", "publish"]

PUBLIC_MODULE = "tf_magics"
T = TypeVar("T")


def public(obj: T) -> T:
    """Mark a class or function as part of the public ``tf_magics`` namespace (a decorator)."""
    obj.__module__ = PUBLIC_MODULE
    return obj


def publish(namespace: dict[str, Any], names: Iterable[str]) -> None:
    """Mark several names of a module's namespace as public (classes and functions only)."""
    for name in names:
        value = namespace[name]
        if isinstance(value, (type, types.FunctionType)):
            value.__module__ = PUBLIC_MODULE
