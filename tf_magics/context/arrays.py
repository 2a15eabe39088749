"""numpy arrays, summarised: shape, dtype, size, NaNs, statistics and a sample of values.

Statistics are exact up to :data:`EXACT_VALUES` values and come from a seeded random sample
above it (and say so); the values shown are numpy's own summarised print (edge items only), so
the work stays bounded for any size. numpy is never imported unless the value is an array.
"""

from __future__ import annotations

from typing import Any

from .budget import Budget, Summary

__all__ = ["EXACT_VALUES", "is_array", "summarise_array"]

#: Up to this many values, statistics use every value.
EXACT_VALUES = 10_000_000
_SAMPLE_VALUES = 1_000_000


def is_array(value: Any) -> bool:
    """A numpy ndarray (or a subclass), recognised without importing numpy."""
    return any(
        cls.__name__ == "ndarray" and (cls.__module__ or "").startswith("numpy")
        for cls in type(value).__mro__
    )


def _size_text(nbytes: int) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= size:
            return f"{nbytes / size:,.1f} {unit}"
    return f"{nbytes:,} bytes"


def _statistics(array: Any) -> tuple[list[str], str | None]:
    """Lines about the values (NaNs, range, mean, spread), and a note when sampled."""
    import numpy as np

    flat = array.reshape(-1)
    note = None
    if flat.size > EXACT_VALUES:
        rng = np.random.default_rng(0)
        flat = flat[np.sort(rng.choice(flat.size, size=_SAMPLE_VALUES, replace=False))]
        note = f"statistics from a random sample of {_SAMPLE_VALUES:,} of {array.size:,} values"
    kind = array.dtype.kind
    lines: list[str] = []
    if kind == "b":
        true = int(np.count_nonzero(flat))
        lines.append(f"True: {true:,}, False: {flat.size - true:,}")
    elif kind in "iuf" and flat.size:
        if kind == "f":
            missing = int(np.isnan(flat).sum())
            if missing:
                lines.append(f"NaN: {missing:,} ({missing / flat.size:.1%})")
            flat = flat[~np.isnan(flat)]
        if flat.size:
            values = flat.astype(np.float64)
            lines.append(
                f"min {values.min():.6g}, max {values.max():.6g}, "
                f"mean {values.mean():.6g}, std {values.std():.6g}"
            )
    elif kind in "mM" and flat.size:
        lines.append(f"from {flat.min()} to {flat.max()}")
    if note:
        lines.append(f"({note})")
    return lines, note


def summarise_array(array: Any, budget: Budget) -> Summary:
    """An array: shape, dtype, memory, statistics and numpy's summarised print of its values."""
    import numpy as np

    shape = "×".join(f"{n:,}" for n in array.shape) if array.shape else "a single value"
    kind = type(array).__name__
    description = f"numpy {'array' if kind == 'ndarray' else kind}, {shape}, {array.dtype}"
    lines = [f"shape {tuple(array.shape)}, dtype {array.dtype}, {_size_text(int(array.nbytes))}"]
    stats, note = _statistics(array) if array.ndim else ([], None)
    lines += stats
    printed = np.array2string(
        array, threshold=200, edgeitems=3, max_line_width=100, precision=4, separator=", "
    )
    values, cut = budget.fit(printed, budget.share(0.7))
    lines += ["values:", values]
    notes = [n for n in (note, cut) if n]
    return Summary(description, "\n".join(lines), notes)
