"""The notebook's state: its settings, named conversations, open panels and last reply.

One :class:`NotebookSession` per IPython shell. The magics, the line commands and the panel all
work on it (none of them holds state of its own), and :func:`tf_magics.get_chat` reads it. It
outlives the extension being unloaded and loaded again (``%reload_ext tf_magics``): loading again
picks up the same conversations and settings.
"""

from __future__ import annotations

import json
import weakref
from typing import TYPE_CHECKING, Any, Protocol

from tf_magics.settings import ChatSettings

from .values import cell_lookup

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from tf_magics.chat import Chat
    from tf_magics.engine.compare import Comparison
    from tf_magics.reply import Reply
    from tf_magics.tools import Tool

__all__ = ["NotebookSession", "Refreshable", "discard_session", "session_for"]


class Refreshable(Protocol):
    """Something that shows the session's state and must catch up when it changes (a panel)."""

    def refresh(self) -> None:
        """Show the state as it is now."""

    def close(self) -> None:
        """Stop following the session."""


class NotebookSession:
    """Everything the notebook's ``%%chat`` cells share.

    Parameters
    ----------
    shell
        The IPython shell (its namespace, events and configuration).

    Attributes
    ----------
    settings
        The one :class:`~tf_magics.ChatSettings` of the notebook (``%config``, panel, Python).
    chats
        The named conversations, by name (created on first use by :meth:`chat`).
    panels
        The open control panels, refreshed after every cell.
    last_reply
        The reply of the last turn run from the notebook (a cell, a retry, a panel button).
    last_comparison
        The last ``%%chat --compare`` (or ``-t 0,1``) result, until the next one; ``%chat
        keep N`` keeps one of its replies.
    last_error
        The last exception a cell raised (``%chat explain``, ``--with error``), not counting
        usage errors of magics: a mistyped ``%chat explian`` must not hide the error to explain.
    """

    def __init__(self, shell: InteractiveShell) -> None:
        self.shell: Any = shell
        self.settings = ChatSettings(parent=shell)
        self.chats: dict[str, Chat] = {}
        self.panels: list[Refreshable] = []
        self.last_reply: Reply | None = None
        self.last_comparison: Comparison | None = None
        self.last_error: BaseException | None = None
        self.loaded = False

    def __repr__(self) -> str:
        return f"<NotebookSession: {len(self.chats)} conversations, {len(self.panels)} panels>"

    # -- lifecycle --

    def attach(self) -> None:
        """Make the settings configurable (``%config ChatSettings...``) while loaded."""
        if self.settings not in self.shell.configurables:
            self.shell.configurables.append(self.settings)
        if self._remember_error not in self.shell.events.callbacks["post_run_cell"]:
            self.shell.events.register("post_run_cell", self._remember_error)
        self.loaded = True

    def detach(self) -> None:
        """Close the panels and stop taking ``%config`` (the conversations are kept)."""
        for panel in list(self.panels):
            panel.close()
        if self.settings in self.shell.configurables:
            self.shell.configurables.remove(self.settings)
        if self._remember_error in self.shell.events.callbacks["post_run_cell"]:
            self.shell.events.unregister("post_run_cell", self._remember_error)
        self.loaded = False

    def _remember_error(self, result: Any) -> None:
        from IPython.core.error import UsageError

        error = getattr(result, "error_in_exec", None) or getattr(result, "error_before_exec", None)
        if isinstance(error, BaseException) and not isinstance(error, UsageError):
            self.last_error = error

    # -- state --

    @property
    def user_ns(self) -> dict[str, Any]:
        """The notebook's namespace."""
        namespace: dict[str, Any] = self.shell.user_ns
        return namespace

    def chat(self, name: str | None = None) -> Chat:
        """The :class:`~tf_magics.Chat` of a named conversation (created on first use)."""
        name = name or "default"
        chat = self.chats.get(name)
        if chat is None:
            from tf_magics.chat import Chat  # the HTTP client loads with the first conversation

            chat = self.chats[name] = Chat(settings=self.settings, name=name, confirm=self.confirm)
            chat.code_cells = cell_lookup(self.shell)  # tracebacks name the notebook's cells
        return chat

    def refresh_panels(self) -> None:
        """Let open panels show changes made by cells (history, system prompt, usage)."""
        for panel in list(self.panels):
            panel.refresh()

    def confirm(self, tool: Tool, arguments: dict[str, Any]) -> bool | None:
        """Ask the person at the notebook before a ``confirm=True`` tool runs.

        ``None`` when no one can answer (a notebook run headless, where input is disabled).
        """
        from IPython.core.error import StdinNotImplementedError

        shown = json.dumps(arguments, ensure_ascii=False)
        try:
            answer = input(f"Run tool {tool.name}({shown})? [y/N] ")
        except (StdinNotImplementedError, EOFError, RuntimeError):
            return None
        return answer.strip().lower() in ("y", "yes")


# One session per shell, kept while the shell lives (so unloading the extension loses nothing).
_SESSIONS: weakref.WeakKeyDictionary[Any, NotebookSession] = weakref.WeakKeyDictionary()


def session_for(shell: InteractiveShell, *, create: bool = True) -> NotebookSession | None:
    """The shell's session (made on first use unless ``create`` is false)."""
    session = _SESSIONS.get(shell)
    if session is None and create:
        session = _SESSIONS[shell] = NotebookSession(shell)
    return session


def discard_session(shell: InteractiveShell) -> None:
    """Forget the shell's session (its conversations and settings); the next one starts afresh."""
    session = _SESSIONS.pop(shell, None)
    if session is not None:
        session.detach()
