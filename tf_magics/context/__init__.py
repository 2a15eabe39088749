"""Notebook values as context for the model: each value summarised into labelled content parts.

``%%chat --with df,fig`` and ``chat.ask(..., context=[df, fig])`` attach values to a question.
Each value goes through the summariser its type calls for (:mod:`~tf_magics.context.registry`),
within a size budget (``ChatSettings.context_max_tokens``), with every piece of text masked for
secrets before it could be cut; the result is an :class:`~tf_magics.attachment.Attachment`
whose parts go into the user message.

========================  ================================================================
module                    job
========================  ================================================================
``registry``              which summariser takes which value; :func:`summarise`
``budget``                the size limit, the secret scanner, what a summariser returns
``frames``                pandas DataFrames and Series
``arrays``                numpy arrays
``images``                matplotlib figures, PIL images, image bytes, ``_repr_png_``
``files``                 ``pathlib.Path``: text files, images, folders
``exceptions``            exceptions, with the traceback trimmed to the user's code
``code``                  functions, classes, modules (and :class:`Source`)
``data``                  text, bytes, containers (as JSON), scalars
========================  ================================================================

Nothing here imports IPython, pandas, numpy, matplotlib or PIL: values are recognised by the
module of their type, and those packages are used only on values that come from them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tf_magics._secrets import SecretScanner
from tf_magics.attachment import Attachment

from .budget import Budget, CodeCells, Summary
from .code import Source
from .registry import SUMMARISERS, Summariser, summarise

__all__ = [
    "SUMMARISERS",
    "Budget",
    "CodeCells",
    "Source",
    "Summariser",
    "Summary",
    "attach",
    "context_items",
    "summarise",
]


def context_items(context: Any) -> list[tuple[str | None, Any]]:
    """``context`` as ``(name, value)`` pairs.

    A list holds values or ``(name, value)`` pairs; a mapping maps names to values; anything else
    is one value (a DataFrame is not iterated over its columns).
    """
    if context is None:
        return []
    if isinstance(context, Mapping):
        return [(str(name), value) for name, value in context.items()]
    if _is_pair(context):
        return [(context[0], context[1])]
    if not isinstance(context, (list, tuple)):
        return [(None, context)]
    return [(item[0], item[1]) if _is_pair(item) else (None, item) for item in context]


def _is_pair(item: Any) -> bool:
    return isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)


def attach(
    context: Any,
    *,
    max_tokens: int,
    scanner: SecretScanner | None = None,
    code_cells: CodeCells | None = None,
) -> list[Attachment]:
    """Summarise every value of ``context`` (see :func:`context_items`) into an attachment.

    Parameters
    ----------
    context
        Values, ``(name, value)`` pairs, or a mapping of names to values; an
        :class:`~tf_magics.attachment.Attachment` is taken as it is.
    max_tokens
        The budget of each attachment's text, in tokens.
    scanner
        Masks secrets in the text (before anything is cut).
    code_cells
        Names notebook cells in tracebacks.

    Raises
    ------
    AttachmentError
        When a value cannot be sent.
    """
    attachments = []
    items: Iterable[tuple[str | None, Any]] = context_items(context)
    for position, (name, value) in enumerate(items, 1):
        if isinstance(value, Attachment):
            attachments.append(value)  # already made (a retry sends it again as it was)
            continue
        budget = Budget.of_tokens(
            max_tokens, scanner=scanner or SecretScanner(), code_cells=code_cells
        )
        attachments.append(summarise(value, name or str(position), budget))
    return attachments
