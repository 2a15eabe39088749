"""Everything that imports IPython or ipywidgets: the magics, their commands, live output, panel.

========================  ================================================================
module                    job
========================  ================================================================
``session``               :class:`NotebookSession`: settings, conversations, panels, last reply
``magics``                ``%%chat`` and ``%chat`` (thin: parse, pick the chat, run the turn)
``flags``                 the ``%%chat`` flags, generated from the options table
``commands``              the ``%chat COMMAND`` line commands
``turns``                 running one turn into a view (cells, retries, the panel)
``live_view``             the reply streaming into the cell, rate-limited
``terminal_view``         the same for terminal IPython
``outputs``               where a view writes: the cell, or a widget
``reply_output``          the one final output of a reply (HTML, Markdown, text)
``layout``                the reply's chrome: tool blocks, notes, footer (pure)
``history_view``          a whole conversation, shown by ``%chat history`` (pure)
``interpolate``           ``%%chat -i``: notebook values in a cell's text
``values``                ``--with`` names, the last error, cells named in tracebacks
``cell_flows``            ``--dry-run``, ``--compare``, ``--code``
``attachments_view``      what was attached, collapsed (pure)
``preview_view``          a dry run shown (pure)
``compare_layout``        a comparison's columns (pure)
``compare_view``          a comparison streaming into the cell; the Keep buttons
``panel``                 the ipywidgets control panel
========================  ================================================================
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING

from tf_magics._public import public

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from tf_magics.chat import Chat

__all__ = ["get_chat", "load_ipython_extension", "unload_ipython_extension"]

_MAGIC_NAMES = ("chat", "chat_panel")


def load_ipython_extension(shell: InteractiveShell) -> None:
    """Register the magics (``%load_ext tf_magics``) on the shell's session."""
    from .magics import ChatMagics
    from .session import session_for

    session = session_for(shell)
    assert session is not None
    session.attach()
    shell.register_magics(ChatMagics(session))
    # Loading stays instant; the first %%chat should not pay for imports either.
    if not os.environ.get("TF_MAGICS_NO_PREWARM"):
        threading.Thread(target=_prewarm, name="tf_magics-prewarm", daemon=True).start()


def unload_ipython_extension(shell: InteractiveShell) -> None:
    """Remove the magics (``%unload_ext tf_magics``); the conversations and settings stay."""
    from .session import session_for

    manager = shell.magics_manager
    magics = manager.registry.pop("ChatMagics", None)
    if magics is not None:
        for kind in ("line", "cell"):
            table = manager.magics[kind]
            for name in _MAGIC_NAMES:
                if getattr(table.get(name), "__self__", None) is magics:
                    del table[name]
    session = session_for(shell, create=False)
    if session is not None:
        session.detach()


@public
def get_chat(name: str = "default") -> Chat:
    """The notebook's :class:`~tf_magics.Chat` for a conversation (the one ``%%chat`` cells use).

    Raises
    ------
    RuntimeError
        If the extension is not loaded in the running IPython.
    """
    from IPython import get_ipython

    from .session import session_for

    shell = get_ipython()
    session = session_for(shell, create=False) if shell is not None else None
    if session is None or not session.loaded:
        raise RuntimeError("Load the extension first: %load_ext tf_magics")
    return session.chat(name)


def _prewarm() -> None:
    """Import and build, in the background, what the first ``%%chat`` needs.

    The HTTP client, the Markdown renderer, pygments, the sanitizer and the TLS context cost a
    few hundred milliseconds the first time; done here while the user types the first prompt.
    A failure is harmless: the same work simply happens later, on first use.
    """
    time.sleep(0.2)  # let the %load_ext cell finish first: this thread competes for the GIL
    try:
        from tf_magics import chat  # noqa: F401
        from tf_magics.client import http
        from tf_magics.render import render_markdown

        from . import live_view, turns  # noqa: F401

        http._ssl_context()
        render_markdown("*warm*\n\n```python\nx = 1\n```\n\n| a |\n|---|\n| 1 |\n")
    except Exception:  # never let a background warm-up disturb the notebook
        return
