"""Which summariser takes which value: the registry, and :func:`summarise` that uses it.

The order is the rule: an object's own ``_repr_llm_()`` wins (the convention chatlab
introduced); then the known types, most specific first (DataFrames, Series, arrays, images,
paths, exceptions, code, text, containers, scalars); then an object that shows itself as an image
(``_repr_png_``), its ``_repr_markdown_()``, and at last a bounded ``repr()``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from tf_magics._text import exception_text, repr_text
from tf_magics.attachment import Attachment, label_line
from tf_magics.errors import AttachmentError

from .arrays import is_array, summarise_array
from .budget import Budget, Summary
from .code import Source, is_code, summarise_code
from .data import (
    is_container,
    is_scalar,
    summarise_bytes,
    summarise_container,
    summarise_scalar,
    summarise_text,
)
from .exceptions import is_exception, summarise_exception
from .files import is_path, summarise_path
from .frames import is_dataframe, is_series, summarise_frame, summarise_series
from .images import (
    data_uri,
    is_axes,
    is_figure,
    is_image_bytes,
    is_pil_image,
    repr_image,
    summarise_axes,
    summarise_figure,
    summarise_image_bytes,
    summarise_pil,
    summarise_repr_image,
)

__all__ = ["SUMMARISERS", "Summariser", "summarise"]


class Summariser(NamedTuple):
    """One entry of the registry: what it takes, and how it summarises."""

    name: str
    takes: Callable[[Any], bool]
    summarise: Callable[[Any, Budget], Summary]


def _repr_llm(value: Any, budget: Budget) -> Summary:
    text = repr_text(value, "_repr_llm_") or ""
    body, note = budget.fit(text)
    notes = [note] if note else []
    return Summary(f"{type(value).__name__}, as its _repr_llm_() describes it", body, notes)


def _repr_markdown(value: Any, budget: Budget) -> Summary:
    text = repr_text(value, "_repr_markdown_") or ""
    body, note = budget.fit(text)
    return Summary(f"{type(value).__name__} (its Markdown form)", body, [note] if note else [])


def _repr(value: Any, budget: Budget) -> Summary:
    try:
        text = repr(value)
    except Exception as error:
        text = f"<{type(value).__name__}: repr() failed: {exception_text(error)}>"
    body, note = budget.fit(text)
    return Summary(type(value).__name__, body, [note] if note else [])


#: The summarisers, in the order they are tried.
SUMMARISERS: tuple[Summariser, ...] = (
    Summariser("_repr_llm_", lambda v: repr_text(v, "_repr_llm_") is not None, _repr_llm),
    Summariser("DataFrame", is_dataframe, summarise_frame),
    Summariser("Series", is_series, summarise_series),
    Summariser("numpy array", is_array, summarise_array),
    Summariser("matplotlib figure", is_figure, summarise_figure),
    Summariser("matplotlib axes", is_axes, summarise_axes),
    Summariser("PIL image", is_pil_image, summarise_pil),
    Summariser("image bytes", is_image_bytes, summarise_image_bytes),
    Summariser("path", is_path, summarise_path),
    Summariser("exception", is_exception, summarise_exception),
    Summariser("code", lambda v: is_code(v) or isinstance(v, Source), summarise_code),
    Summariser("text", lambda v: isinstance(v, str), summarise_text),
    Summariser("bytes", lambda v: isinstance(v, (bytes, bytearray, memoryview)), summarise_bytes),
    Summariser("container", is_container, summarise_container),
    Summariser("scalar", is_scalar, summarise_scalar),
    Summariser("_repr_png_", lambda v: repr_image(v) is not None, summarise_repr_image),
    Summariser(
        "_repr_markdown_", lambda v: repr_text(v, "_repr_markdown_") is not None, _repr_markdown
    ),
    Summariser("repr", lambda v: True, _repr),
)


def _summary(value: Any, budget: Budget) -> Summary:
    if isinstance(value, Source) and not is_code(value.value):
        value = value.value  # only code has a source to show
    for summariser in SUMMARISERS:
        if not summariser.takes(value):
            continue
        try:
            return summariser.summarise(value, budget)
        except AttachmentError:
            raise
        except Exception as error:
            # A value that breaks its own summariser is still shown, as its repr, saying why.
            summary = _repr(value, budget)
            summary.notes.append(
                f"the {summariser.name} summary failed ({exception_text(error)}); showing repr()"
            )
            return summary
    raise AssertionError("the repr summariser takes everything")  # pragma: no cover


def summarise(value: Any, name: str, budget: Budget) -> Attachment:
    """One value as an :class:`~tf_magics.attachment.Attachment` within ``budget``.

    Parameters
    ----------
    value
        Anything: the registry picks the summariser.
    name
        The name the model sees (a variable's name, or a number for an unnamed value).
    budget
        The size limit, the secret scanner and the notebook's cells.

    Raises
    ------
    AttachmentError
        When the value cannot be sent (a binary file, an image too large).
    """
    summary = _summary(value, budget)
    description = budget.clean(summary.description)
    label = label_line(name, description)
    # Every summariser aims within the budget; this cut guarantees it (and says so).
    body, note = budget.fit(summary.body)
    if note is not None:
        summary.notes.append(note)
    text = f"{label}\n{body}" if body else label
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
    if summary.image is not None:
        url = data_uri(summary.image.data, summary.image.mime)
        parts.append({"type": "image_url", "image_url": {"url": url}})
    return Attachment(
        name=name,
        description=description,
        parts=tuple(parts),
        notes=tuple(summary.notes),
        redacted=tuple(dict.fromkeys(budget.found)),
        thumbnail=summary.thumbnail,
    )
