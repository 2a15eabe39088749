"""The control panel: ipywidgets bound to the notebook's settings and one conversation.

========================  ================================================================
module                    job
========================  ================================================================
``chat_panel``            :class:`ChatPanel`: binds widgets and settings both ways
``conversation_side``     the conversation, the tools, and what the buttons do
``controls``              every widget, laid out in two columns
``fields``                one control per setting, from the options table
``html``                  hints, the usage chart, the compact history, the text fallback
========================  ================================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tf_magics._public import public

from .chat_panel import ChatPanel

if TYPE_CHECKING:
    from tf_magics.notebook.session import NotebookSession

__all__ = ["ChatPanel", "panel", "show_panel"]


def show_panel(session: NotebookSession, conversation: str | None = None) -> None:
    """Display a panel for a conversation (``%chat panel`` and ``%chat_panel``).

    It displays the panel rather than returning it, so ``%chat panel`` works anywhere in a cell;
    use :func:`panel` to get the object.
    """
    from IPython.display import display

    display(ChatPanel(session, conversation))


@public
def panel(conversation: str | None = None) -> ChatPanel:
    """A control panel for a conversation of the running notebook (``tf_magics.panel()``).

    Loads the extension when it is not loaded yet (the panel drives the same conversations as
    ``%%chat`` cells, so it needs them).

    Parameters
    ----------
    conversation
        The conversation's name (default: the default conversation).

    Returns
    -------
    ChatPanel
        Display it (a cell's last expression) to see it.

    Raises
    ------
    RuntimeError
        Outside IPython / Jupyter.
    """
    from IPython import get_ipython

    from tf_magics.notebook.session import session_for

    shell = get_ipython()
    if shell is None:
        raise RuntimeError("tf_magics.panel() needs IPython or Jupyter: run it in a notebook.")
    session = session_for(shell)
    assert session is not None
    if not session.loaded:
        shell.extension_manager.load_extension("tf_magics")
    return ChatPanel(session, conversation)
