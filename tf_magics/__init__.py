"""tf_magics: chat with any OpenAI-compatible model from a Jupyter notebook.

``%load_ext tf_magics`` registers the ``%%chat`` cell magic and the ``%chat`` line commands (see
:mod:`tf_magics.magics` for the manual). Everything the magic does is also available from plain
Python through :class:`Chat`.

Importing this package is cheap: the HTTP client, the Markdown renderer and the widgets are
imported on first use, so ``%load_ext`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0.dev0"

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from ._tools import Tool, ToolRegistry, default_registry, tool
    from ._types import Completion, Message, ToolCall, ToolResult, Usage
    from .chat import Chat
    from .control_panel import panel
    from .conversation import Conversation
    from .reply import Reply
    from .settings import ChatSettings

__all__ = [
    "Chat",
    "ChatSettings",
    "Completion",
    "Conversation",
    "Message",
    "Reply",
    "Tool",
    "ToolCall",
    "ToolRegistry",
    "ToolResult",
    "Usage",
    "__version__",
    "default_registry",
    "get_chat",
    "load_ipython_extension",
    "panel",
    "tool",
    "unload_ipython_extension",
]

# name -> module that defines it; imported when first asked for.
_LAZY = {
    "Chat": "chat",
    "ChatSettings": "settings",
    "Completion": "_types",
    "Conversation": "conversation",
    "Message": "_types",
    "Reply": "reply",
    "Tool": "_tools",
    "ToolCall": "_types",
    "ToolRegistry": "_tools",
    "ToolResult": "_types",
    "Usage": "_types",
    "default_registry": "_tools",
    "panel": "control_panel",
    "tool": "_tools",
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
    from .magics import ChatMagics

    shell.register_magics(ChatMagics(shell))


def unload_ipython_extension(shell: InteractiveShell) -> None:
    """Remove the magics (``%unload_ext tf_magics``)."""
    manager = shell.magics_manager
    magics = manager.registry.pop("ChatMagics", None)
    if magics is None:
        return
    for kind in ("line", "cell"):
        table = manager.magics[kind]
        for name in ("chat", "chat_panel"):
            if getattr(table.get(name), "__self__", None) is magics:
                del table[name]
    magics.close()


def get_chat(name: str = "default") -> Chat:
    """The notebook's :class:`Chat` for a conversation (the one ``%%chat`` cells use).

    Raises
    ------
    RuntimeError
        If the extension is not loaded in the running IPython.
    """
    from IPython import get_ipython

    shell = get_ipython()
    magics = shell.magics_manager.registry.get("ChatMagics") if shell is not None else None
    if magics is None:
        raise RuntimeError("Load the extension first: %load_ext tf_magics")
    chat: Chat = magics.chat_for(name)
    return chat
