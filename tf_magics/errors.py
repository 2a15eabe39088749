"""Every exception and warning tf_magics raises.

Every error derives from :class:`TFMagicsError`, whose ``str()`` is one line that says what went
wrong and, where there is one, how to fix it (``hint``). The magic shows exactly that line
instead of a traceback, and still fails the cell so Run All and papermill stop.

::

    TFMagicsError
    ├── ConfigurationError        bad settings, caught before any request (also a ValueError)
    ├── AttachmentError           a value cannot be attached to a message (also a ValueError)
    ├── ToolDefinitionError       a callable that cannot be described as a tool (also a TypeError)
    ├── ValidationError           a JSON value does not fit its Python type (also a ValueError)
    │   ├── ToolArgumentError     the arguments of a tool call do not fit its parameters
    │   └── StructuredOutputError a reply does not fit the schema it was asked for
    ├── MapError                  a map over rows stopped early; ``result`` keeps the rows done
    │   ├── MapInterrupted        the user interrupted it
    │   └── MapBudgetExceeded     it reached the spending cap (also a BudgetExceededError)
    ├── TurnInProgressError       a conversation is already waiting for a reply
    ├── BudgetExceededError       a request whose worst case does not fit the spending cap
    ├── BatchError                a batch job that cannot be submitted, followed or collected
    ├── CacheMissError            replay mode: the request is not in the recording (nothing sent)
    └── APIError                  anything the server or the network did
        ├── APIConnectionError    could not reach the base URL
        │   └── APITimeoutError   connect/read timed out
        ├── APIStatusError        the server answered with an error (status, code, body message)
        │   ├── BatchUnsupportedError     404/405 on the Batch API: the server has none
        │   ├── BadRequestError           400, 404, 405, 409, 413, 415, 422 (not context length)
        │   │   ├── ContextLengthError    the prompt is longer than the model's context
        │   │   └── ImagesNotSupportedError   the model does not take images
        │   ├── AuthenticationError       401, 403
        │   ├── RateLimitError            429
        │   └── ServerError               5xx
        └── StreamError           the reply stream broke; ``partial`` keeps what arrived
            ├── IncompleteStreamError     the stream stopped before the reply was finished
            ├── EmptyStreamError          HTTP 200 with an empty body
            └── StreamInterrupted         the user interrupted (Ctrl-C / the kernel's stop button)

Errors that happen while a reply is streaming carry what had arrived in ``partial`` (a
:class:`tf_magics.Completion`), so nothing the model sent is lost.

Warnings derive from :class:`TFMagicsWarning` (a ``UserWarning``)::

    TFMagicsWarning
    ├── ToolReplacedWarning       a tool name now runs another function
    └── ToolSchemaWarning         a tool was registered, but described loosely
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._public import publish
from ._text import truncate

if TYPE_CHECKING:
    from .reply import Reply
    from .types import Completion

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AttachmentError",
    "AuthenticationError",
    "BadRequestError",
    "BatchError",
    "BatchUnsupportedError",
    "BudgetExceededError",
    "CacheMissError",
    "ConfigurationError",
    "ContextLengthError",
    "EmptyStreamError",
    "ImagesNotSupportedError",
    "IncompleteStreamError",
    "MapBudgetExceeded",
    "MapError",
    "MapInterrupted",
    "RateLimitError",
    "ServerError",
    "StreamError",
    "StreamInterrupted",
    "StructuredOutputError",
    "TFMagicsError",
    "TFMagicsWarning",
    "ToolArgumentError",
    "ToolDefinitionError",
    "ToolReplacedWarning",
    "ToolSchemaWarning",
    "TurnInProgressError",
    "ValidationError",
]


class TFMagicsError(Exception):
    """Base class of every tf_magics error.

    Parameters
    ----------
    message
        What went wrong, in one sentence.
    hint
        How to fix it, in one sentence; appended to ``str(error)``.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        text = " ".join(self.message.split())
        if self.hint:
            return f"{text} {self.hint}"
        return text

    def _render_traceback_(self) -> list[str]:
        # IPython calls this instead of printing a traceback: the user gets one line.
        return [f"\x1b[31m{type(self).__name__}\x1b[0m: {self}"]


class ConfigurationError(TFMagicsError, ValueError):
    """A setting is missing or out of range; raised before any request is made."""


class AttachmentError(TFMagicsError, ValueError):
    """A value cannot be attached to a message (a binary file, an image too large to send).

    Raised before anything is sent or added to the history.
    """


class ToolDefinitionError(TFMagicsError, TypeError):
    """A callable cannot be described honestly as a tool (raised at registration)."""


class ValidationError(TFMagicsError, ValueError):
    """A decoded JSON value does not fit the Python type it must become.

    Attributes
    ----------
    problems
        One line per problem, each naming where it is (``"city: expected a string, got 3"``).
    """

    def __init__(self, problems: list[str], *, hint: str | None = None) -> None:
        super().__init__("; ".join(problems), hint=hint)
        self.problems = problems


class ToolArgumentError(ValidationError):
    """The arguments of a tool call do not fit the tool's parameters."""


class StructuredOutputError(ValidationError):
    """A reply does not fit the schema it was asked for, even after asking again.

    Attributes
    ----------
    problems
        One line per problem (``"label: expected one of 'pos', 'neg', got string 'good'"``).
    reply
        The turn's :class:`~tf_magics.Reply`: its ``text`` is the raw answer, kept as it came.
    """

    def __init__(
        self,
        problems: list[str],
        *,
        hint: str | None = None,
        reply: Reply | None = None,
        schema_name: str | None = None,
    ) -> None:
        super().__init__(problems, hint=hint)
        self.reply = reply
        self.schema_name = schema_name
        if schema_name is not None:
            listed = truncate("; ".join(problems), 400)
            self.message = f"The reply does not fit the schema {schema_name}: {listed}"


class BudgetExceededError(TFMagicsError):
    """A request was not sent: its worst case does not fit under the kernel's spending cap."""


class MapError(TFMagicsError):
    """A map over rows stopped before every row was done (``on_error="raise"``, or Ctrl-C).

    Attributes
    ----------
    result
        What the map returns, with the rows done so far: a DataFrame (or list) in input order,
        the rows that did not finish marked in their ``error``.
    summary
        The :class:`~tf_magics.data.MapSummary` of the run (rows done and failed, tokens, time).
    """

    def __init__(
        self, message: str, *, hint: str | None = None, result: Any = None, summary: Any = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.result = result
        self.summary = summary


class MapInterrupted(MapError):
    """The user interrupted a map (Ctrl-C / the kernel's stop button); ``result`` keeps its rows."""


class MapBudgetExceeded(MapError, BudgetExceededError):
    """A map stopped at the spending cap: ``result`` keeps the rows done, the others not run."""


class TurnInProgressError(TFMagicsError, RuntimeError):
    """A turn was started on a conversation that is already waiting for a reply.

    Two turns at once would interleave their messages; the second is refused instead.
    """


class BatchError(TFMagicsError):
    """A batch job cannot be submitted, followed or collected (it says why, and what to do)."""


class CacheMissError(TFMagicsError, LookupError):
    """Replay mode: a request is not in the recording file, so it cannot be answered.

    Nothing was sent: replay mode never touches the network. The message names what differs
    from the closest recorded request.

    Attributes
    ----------
    differences
        What differs from the closest recorded request, one short phrase each
        (``"temperature 0.7 vs 0"``, ``"the system prompt changed"``).
    path
        The recording file that was searched.
    cell
        Which notebook cell sent the request (``"In [7]"``), when the notebook layer knows it.
    """

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        differences: tuple[str, ...] = (),
        path: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.differences = differences
        self.path = path
        self.cell: str | None = None

    def __str__(self) -> str:
        text = super().__str__()
        return f"{self.cell}: {text}" if self.cell else text


class APIError(TFMagicsError):
    """Something went wrong talking to the server.

    ``partial`` is the reply of the failed request as far as it arrived; ``reply`` (set when the
    error ends a turn) is the whole turn so far, tool results included.
    """

    partial: Completion | None = None
    reply: Reply | None = None


class APIConnectionError(APIError):
    """The server could not be reached."""


class APITimeoutError(APIConnectionError):
    """The server took too long to connect or to send the next bytes."""


class APIStatusError(APIError):
    """The server answered with an error status (or an error object inside a 200 stream).

    Attributes
    ----------
    status_code
        HTTP status, or ``None`` for an error reported inside a stream.
    code
        The provider's error code (``"context_length_exceeded"``, ``429``...), when it gave one.
    error_type
        The provider's error type (``"invalid_request_error"``...), when it gave one.
    body
        The decoded error body (a dict, a list or text), for debugging.
    partial
        What had streamed before the error, if anything.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | int | None = None,
        error_type: str | None = None,
        body: Any = None,
        hint: str | None = None,
        partial: Completion | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status_code = status_code
        self.code = code
        self.error_type = error_type
        self.body = body
        self.partial = partial


class BatchUnsupportedError(APIStatusError):
    """The server has no Batch API (it answered 404 or 405 on ``/files`` or ``/batches``)."""


class BadRequestError(APIStatusError):
    """The server refused the request as invalid (not retried)."""


class ContextLengthError(BadRequestError):
    """The conversation no longer fits the model's context window."""


class ImagesNotSupportedError(BadRequestError):
    """The model (or the server) does not take images, and the request carried one.

    ``status_code`` is ``None`` when tf_magics knew it before sending (the built-in demo model).
    """


class AuthenticationError(APIStatusError):
    """The API key is missing, invalid, or not allowed to use this model."""


class RateLimitError(APIStatusError):
    """Too many requests, or the quota is used up."""


class ServerError(APIStatusError):
    """The server failed (5xx)."""


class StreamError(APIError):
    """The reply stream broke off; ``partial`` holds what had arrived."""

    def __init__(
        self, message: str, *, hint: str | None = None, partial: Completion | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.partial = partial


class IncompleteStreamError(StreamError):
    """The connection closed before the reply was finished."""


class EmptyStreamError(StreamError):
    """The server answered 200 but sent no events at all."""


class StreamInterrupted(StreamError):
    """The user stopped the reply (Ctrl-C or the kernel's interrupt button)."""


# -- warnings -------------------------------------------------------------------------------------


class TFMagicsWarning(UserWarning):
    """Base class of every tf_magics warning."""


class ToolReplacedWarning(TFMagicsWarning):
    """A tool was registered under a name that another function already used."""


class ToolSchemaWarning(TFMagicsWarning):
    """A tool was registered, but part of it could only be described loosely."""


publish(globals(), __all__)
