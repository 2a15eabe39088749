"""``tf_magics.map`` and ``%%chat --map`` / ``--schema``: data work from a notebook.

:func:`map` is :meth:`Chat.map <tf_magics.Chat.map>` with the notebook's conveniences: the
notebook's chat when the extension is loaded (its system prompt and settings), and a progress bar
that ends as a one-line summary. :func:`run_cell_map` is the same for a ``%%chat --map DATA``
cell, whose text is the template; :func:`notebook_schema` reads ``--schema NAME``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from tf_magics._public import public
from tf_magics.errors import MapError

from .flags import CellRequest
from .map_view import MapView, progress_display

if TYPE_CHECKING:
    from tf_magics.chat import Chat

    from .session import NotebookSession

__all__ = ["map", "notebook_schema", "notebook_value", "run_cell_map"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_LIST_OF = re.compile(r"list\[\s*(.+?)\s*\]")


@public
def map(  # tf_magics.map: the name the docs use, though it shadows the builtin here
    template: str,
    data: Any,
    *,
    schema: Any = None,
    concurrency: int = 8,
    requests_per_minute: float | None = None,
    on_error: str = "record",
    batch: bool = False,
    chat: Chat | None = None,
    progress: bool = True,
    **overrides: Any,
) -> Any:
    """Ask the same question of every row of ``data``: one request per row, many at once.

    Takes the parameters of :meth:`Chat.map <tf_magics.Chat.map>`, plus:

    Parameters
    ----------
    chat
        The chat whose system prompt and settings apply (by default the notebook's, when the
        extension is loaded, else a new :class:`~tf_magics.Chat`).
    progress
        Show a progress bar (a line on stderr outside a notebook), then a one-line summary.

    Returns the same as :meth:`Chat.map <tf_magics.Chat.map>`.

    Examples
    --------
    >>> reviews = tf_magics.map(  # doctest: +SKIP
    ...     "Is this review positive or negative? {text}", df, schema=Sentiment, concurrency=16
    ... )
    """
    chat = chat if chat is not None else _default_chat()
    view = MapView(progress_display()) if progress else None
    try:
        result = chat.map(
            template,
            data,
            schema=schema,
            concurrency=concurrency,
            requests_per_minute=requests_per_minute,
            on_error=on_error,
            batch=batch,
            observer=view,
            **overrides,
        )
    except MapError as error:
        if view is not None:
            view.finish(error.summary, error=error)
        raise
    except Exception as error:
        if view is not None:
            view.finish(None, error=error)
        raise
    if view is not None:
        view.finish(chat.last_map)
    return result


def _default_chat() -> Chat:
    from IPython import get_ipython

    from .session import session_for

    shell = get_ipython()
    session = session_for(shell, create=False) if shell is not None else None
    if session is not None and session.loaded:
        return session.chat()
    from tf_magics.chat import Chat

    return Chat()


def run_cell_map(session: NotebookSession, template: str, request: CellRequest) -> Any:
    """Run a ``%%chat --map DATA`` cell: the cell is the template, ``-o VAR`` gets the result.

    Returns
    -------
    Any
        The result when no ``-o`` was given (the cell shows it), else ``None``.

    Raises
    ------
    UsageError
        For flags that do not apply to a map, or names the notebook does not have.
    """
    for flag, given in (("--tools", request.tools), ("-i", request.interpolate)):
        if given:
            raise UsageError(
                f"%%chat --map: {flag} does not apply (each row is one request without tools; "
                "{column} placeholders are filled from the rows)."
            )
    assert request.map is not None
    data = notebook_value(session.user_ns, request.map, "--map")
    schema = notebook_schema(session.user_ns, request.schema) if request.schema else None
    chat = session.chat(request.conversation)
    chat.settings.resolve(**request.overrides)  # bad values fail before anything changes
    if request.new:
        chat.reset()
    if request.system is not None:
        chat.system = request.system
    try:
        result = map(
            template,
            data,
            schema=schema,
            concurrency=8 if request.concurrency is None else request.concurrency,
            requests_per_minute=request.rpm,
            on_error=request.on_error or "record",
            batch=request.batch,
            chat=chat,
            **request.overrides,
        )
    except MapError as error:
        if request.output and error.result is not None:
            session.user_ns[request.output] = error.result
            error.hint = f"The rows done are in {request.output}."
        raise
    if request.output:
        session.user_ns[request.output] = result
        return None
    return result


def notebook_value(namespace: dict[str, Any], name: str, flag: str) -> Any:
    """The value of a notebook variable (``name`` or ``name.attr``) named on a ``%%chat`` line.

    Raises
    ------
    UsageError
        When the name is not a plain (dotted) name, or not defined.
    """
    if not _NAME.fullmatch(name):
        raise UsageError(f"{flag}: {name!r} is not a variable name.")
    first, *attributes = name.split(".")
    if first not in namespace:
        raise UsageError(f"{flag}: no variable named {first!r} in the notebook.")
    value = namespace[first]
    for attribute in attributes:
        if attribute.startswith("_") or not hasattr(value, attribute):
            raise UsageError(
                f"{flag}: {name!r} cannot be read (no public attribute {attribute!r})."
            )
        value = getattr(value, attribute)
    return value


def notebook_schema(namespace: dict[str, Any], spec: str) -> Any:
    """The schema ``--schema`` names: a class or dict of the notebook, or ``list[Name]``.

    Raises
    ------
    UsageError
        When the name is not defined.
    """
    inner = _LIST_OF.fullmatch(spec.strip())
    if inner is not None:
        return list[notebook_value(namespace, inner.group(1), "--schema")]  # type: ignore[misc]
    return notebook_value(namespace, spec.strip(), "--schema")
