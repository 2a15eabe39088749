"""How a batch job's rows map to its requests, saved so the result can be rebuilt anywhere.

A job is collected in the kernel that submitted it, or after a restart, perhaps days later. The
layout saved beside the job (see :class:`~tf_magics.batch.JobStore`) holds what the result needs
besides the replies: what the input was (a DataFrame, dicts or strings), the DataFrame's row
labels when they can be written as JSON, which request each row shares (identical prompts are
sent once), and the schema the replies were asked to fit.

Collected with the input DataFrame at hand (``data=df``, ``--map DF``), the result is exactly
the frame an interactive ``map`` returns. Without it, it holds the result columns and ``error``
under the saved row labels. Without the schema class (``schema=Review``, ``--schema Review``),
structured replies are checked against the saved JSON Schema and come back as ``dict``.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tf_magics.errors import BatchError
from tf_magics.schema import ResponseSchema

from .rows import is_dataframe

__all__ = ["Layout", "layout_of", "saved_schema"]


@dataclass
class Layout:
    """What rebuilding a batch job's result needs (see the module docstring)."""

    kind: str
    rows: int
    index_of: array[int]
    labels: list[Any] | None = None
    index_name: Any = None
    schema: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The layout as JSON (``index_of`` left out when every row has its own request)."""
        plain = all(position == row for row, position in enumerate(self.index_of))
        return {
            "kind": self.kind,
            "rows": self.rows,
            "index_of": None if plain else self.index_of.tolist(),
            "labels": self.labels,
            "index_name": self.index_name,
            "schema": self.schema,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Layout:
        """A layout read back (see :meth:`to_json`)."""
        rows = int(data["rows"])
        listed = data.get("index_of")
        index_of = array("q", listed if listed is not None else range(rows))
        return cls(
            kind=str(data["kind"]),
            rows=rows,
            index_of=index_of,
            labels=data.get("labels"),
            index_name=data.get("index_name"),
            schema=data.get("schema"),
        )

    @property
    def weights(self) -> list[int]:
        """How many rows share each request."""
        counts = [0] * (max(self.index_of) + 1 if self.index_of else 0)
        for position in self.index_of:
            counts[position] += 1
        return counts

    def check_data(self, data: Any) -> None:
        """Refuse input data that is not the data the job was submitted for.

        Raises
        ------
        BatchError
            When its kind or its length differ, or a DataFrame's row labels do.
        """
        kind = "frame" if is_dataframe(data) else None
        if self.kind == "frame" and kind is None:
            raise BatchError("This job was submitted from a DataFrame: pass that DataFrame.")
        if len(data) != self.rows:
            raise BatchError(
                f"This job has {self.rows:,} rows, the data given has {len(data):,}: pass the "
                "data it was submitted for."
            )
        if kind == "frame" and self.labels is not None and _labels(data) != self.labels:
            raise BatchError(
                "The DataFrame's row labels differ from the job's: pass the DataFrame it was "
                "submitted for (or collect without it)."
            )


def layout_of(kind: str, frame: Any, index_of: array[int], schema: ResponseSchema | None) -> Layout:
    """The layout of a map about to be submitted."""
    labels = _labels(frame) if kind == "frame" else None
    name = getattr(getattr(frame, "index", None), "name", None)
    return Layout(
        kind=kind,
        rows=len(index_of),
        index_of=index_of,
        labels=labels,
        index_name=name if isinstance(name, (str, int)) else None,
        schema=None if schema is None else _schema_json(schema),
    )


def _labels(frame: Any) -> list[Any] | None:
    """The row labels, when JSON keeps them exactly (ints and strings), else ``None``."""
    labels: list[Any] = frame.index.tolist()
    if all(isinstance(label, str) or type(label) is int for label in labels):
        return labels
    return None


def _schema_json(schema: ResponseSchema) -> dict[str, Any]:
    return {
        "name": schema.name,
        "schema": schema.schema,
        "wrapper": schema.wrapper,
        "fields": list(schema.fields),
    }


def saved_schema(data: Mapping[str, Any]) -> ResponseSchema:
    """The schema saved in a layout, read back: replies are checked against it, as ``dict``."""
    schema = dict(data.get("schema") or {})
    wrapper = data.get("wrapper")
    source = schema
    if isinstance(wrapper, str) and isinstance(schema.get("properties"), dict):
        # The value inside the wrapper is checked against the wrapper's property; references
        # (``#/$defs/...``) still resolve from the root they were written for.
        source = dict(schema["properties"].get(wrapper) or {})
        if "$defs" in schema:
            source["$defs"] = schema["$defs"]
    return ResponseSchema(
        name=str(data.get("name") or "schema"),
        schema=schema,
        strict=False,
        wrapper=wrapper if isinstance(wrapper, str) else None,
        fields=tuple(data.get("fields") or ()),
        _source=source,
    )
