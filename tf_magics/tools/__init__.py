"""Python callables as tools the model may call: described, validated, run, serialized.

========================  ================================================================
module                    job
========================  ================================================================
``registry``              :class:`Tool`, :class:`ToolRegistry`, the :func:`tool` decorator
``describe``              a callable → name, description and JSON Schema (the ``tools`` entry)
``arguments``             the model's arguments checked and converted for the function
``execute``               running one call; every failure becomes a result for the model
``serialize``             a return value → the text the model receives
========================  ================================================================

The type → JSON Schema and JSON → value machinery is :mod:`tf_magics.schema`, shared with
structured replies. Only the registry is imported with this package: a notebook that never
registers a tool never pays for the rest.
"""

from __future__ import annotations

from .registry import Tool, ToolRegistry, default_registry, tool

__all__ = ["Tool", "ToolRegistry", "default_registry", "tool"]
