"""Python types as JSON Schema, and JSON checked and converted back into those types.

========================  ================================================================
module                    job
========================  ================================================================
``annotations``           reading annotations: fields, optionality, aliases, pydantic
``json_schema``           one annotation → JSON Schema (:func:`type_schema`)
``convert``               decoded JSON → values of the annotated types, every problem listed
``validate``              decoded JSON checked against a JSON-schema ``dict``
``response``              :class:`ResponseSchema`: a structured reply's schema, sent and read
``docstrings``            descriptions from docstrings (Google, NumPy, reST, Epydoc)
========================  ================================================================

Tools use it for their parameters; structured replies use it for ``response_format``. One source
of schemas means a tool argument and a structured reply are validated by the same code.
"""

from __future__ import annotations

from .convert import convert_fields, convert_value
from .json_schema import type_schema
from .response import ResponseSchema
from .validate import validate_json

__all__ = ["ResponseSchema", "convert_fields", "convert_value", "type_schema", "validate_json"]
