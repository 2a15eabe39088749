"""tf_magics: chat with any OpenAI-compatible model from a Jupyter notebook.

``%load_ext tf_magics`` registers the ``%%chat`` cell magic and the ``%chat`` line commands.
Everything the magic does is also available from plain Python through :class:`Chat`.

The public API is what this module exports (:data:`__all__`); every exported name reports
``tf_magics`` as its module. The subpackages are the layers behind it:

========================  ================================================================
package / module          job
========================  ================================================================
``chat``                  :class:`Chat`: the Python face (``ask``, ``aask``, ``retry``...)
``context``               notebook values summarised for the model (``context=``, ``--with``)
``conversation``          the message list and its rules
``settings``, ``options`` what to send: the settings object, generated from the options table
``reply``, ``types``,     the values that cross layers, and what a turn reports as it runs
``events``, ``errors``
``data``                  ``map``: one prompt template over the rows of a DataFrame or a list
``engine``                one turn: the request/tool loop, the private event loop
``cache``                 record and replay: replies kept beside the notebook, replayed
``client``                one HTTP request: SSE, chunk folding, retries, error bodies
``tools``                 Python callables the model may call
``schema``                types ⇄ JSON Schema, JSON → typed values
``render``                Markdown → sanitized HTML
``local``                 the embedded local model server
``notebook``              everything IPython/ipywidgets: magics, commands, live view, panel
========================  ================================================================

Importing this package is cheap: the HTTP client, the Markdown renderer and the widgets are
imported on first use, so ``%load_ext`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AttachmentError,
    AuthenticationError,
    BadRequestError,
    BatchError,
    BatchUnsupportedError,
    BudgetExceededError,
    CacheMissError,
    ConfigurationError,
    ContextLengthError,
    EmptyStreamError,
    ImagesNotSupportedError,
    IncompleteStreamError,
    MapBudgetExceeded,
    MapError,
    MapInterrupted,
    RateLimitError,
    ServerError,
    StreamError,
    StreamInterrupted,
    StructuredOutputError,
    TFMagicsError,
    TFMagicsWarning,
    ToolArgumentError,
    ToolDefinitionError,
    ToolReplacedWarning,
    ToolSchemaWarning,
    TurnInProgressError,
    ValidationError,
)
from .events import (
    BatchProgress,
    CompletionDone,
    ContentDelta,
    ContextAttached,
    Event,
    MapProgress,
    Notice,
    ReasoningDelta,
    RequestStarted,
    Retrying,
    StreamFallback,
    ToolCallDelta,
    ToolCallFinished,
    ToolCallStarted,
    VariantEvent,
)
from .reply import Reply
from .types import Completion, Message, Replayed, ToolCall, ToolResult, Usage

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from .attachment import Attachment
    from .chat import Chat
    from .context import Source
    from .conversation import Conversation
    from .data import MapSummary, RowError
    from .engine.compare import Comparison
    from .notebook import get_chat
    from .notebook.mapping import map
    from .notebook.panel import panel
    from .preview import Preview
    from .settings import ChatSettings
    from .tools import Tool, ToolRegistry, default_registry, tool

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "Attachment",
    "AttachmentError",
    "AuthenticationError",
    "BadRequestError",
    "BatchError",
    "BatchProgress",
    "BatchUnsupportedError",
    "BudgetExceededError",
    "CacheMissError",
    "Chat",
    "ChatSettings",
    "Comparison",
    "Completion",
    "CompletionDone",
    "ConfigurationError",
    "ContentDelta",
    "ContextAttached",
    "ContextLengthError",
    "Conversation",
    "EmptyStreamError",
    "Event",
    "ImagesNotSupportedError",
    "IncompleteStreamError",
    "MapBudgetExceeded",
    "MapError",
    "MapInterrupted",
    "MapProgress",
    "MapSummary",
    "Message",
    "Notice",
    "Preview",
    "RateLimitError",
    "ReasoningDelta",
    "Replayed",
    "Reply",
    "RequestStarted",
    "Retrying",
    "RowError",
    "ServerError",
    "Source",
    "StreamError",
    "StreamFallback",
    "StreamInterrupted",
    "StructuredOutputError",
    "TFMagicsError",
    "TFMagicsWarning",
    "Tool",
    "ToolArgumentError",
    "ToolCall",
    "ToolCallDelta",
    "ToolCallFinished",
    "ToolCallStarted",
    "ToolDefinitionError",
    "ToolRegistry",
    "ToolReplacedWarning",
    "ToolResult",
    "ToolSchemaWarning",
    "TurnInProgressError",
    "Usage",
    "ValidationError",
    "VariantEvent",
    "__version__",
    "default_registry",
    "get_chat",
    "load_ipython_extension",
    "map",
    "panel",
    "tool",
    "unload_ipython_extension",
]

# The heavier names, imported when first asked for: name -> the module that defines it.
_LAZY = {
    "Attachment": "attachment",
    "Chat": "chat",
    "ChatSettings": "settings",
    "Comparison": "engine.compare",
    "Conversation": "conversation",
    "MapSummary": "data",
    "RowError": "data",
    "Source": "context",
    "Tool": "tools",
    "ToolRegistry": "tools",
    "default_registry": "tools",
    "get_chat": "notebook",
    "map": "notebook.mapping",
    "Preview": "preview",
    "panel": "notebook.panel",
    "tool": "tools",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tf_magics' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


def load_ipython_extension(shell: InteractiveShell) -> None:
    """Register the magics (``%load_ext tf_magics``)."""
    from .notebook import load_ipython_extension as load

    load(shell)


def unload_ipython_extension(shell: InteractiveShell) -> None:
    """Remove the magics (``%unload_ext tf_magics``); conversations and settings are kept."""
    from .notebook import unload_ipython_extension as unload

    unload(shell)
