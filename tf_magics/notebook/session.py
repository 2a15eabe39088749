"""The notebook's state: its settings, named conversations, open panels and last reply.

One :class:`NotebookSession` per IPython shell. The magics, the line commands and the panel all
work on it (none of them holds state of its own), and :func:`tf_magics.get_chat` reads it. It
outlives the extension being unloaded and loaded again (``%reload_ext tf_magics``): loading again
picks up the same conversations and settings.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from tf_magics.cache.location import register_notebook_path, unregister_notebook_path
from tf_magics.settings import ChatSettings

from .values import cell_lookup

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from tf_magics.chat import Chat
    from tf_magics.cost import MapEstimate
    from tf_magics.engine.compare import Comparison
    from tf_magics.reply import Reply
    from tf_magics.tools import Tool

    from .autosave import ConversationKeeper

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
    keeper
        Saves the conversations beside the notebook and brings them back (``%chat restore``).
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
        self._keeper: ConversationKeeper | None = None
        self._notebook_path = _notebook_path_of(shell)
        #: The running cell's number (``In [7]``), for messages that must say which cell.
        self.cell_number: int | None = None

    @property
    def keeper(self) -> ConversationKeeper:
        """Saves the conversations beside the notebook and brings them back (made on first use)."""
        if self._keeper is None:
            from .autosave import ConversationKeeper  # not needed to load the extension

            self._keeper = ConversationKeeper(self)
        return self._keeper

    def __repr__(self) -> str:
        return f"<NotebookSession: {len(self.chats)} conversations, {len(self.panels)} panels>"

    # -- lifecycle --

    def attach(self) -> None:
        """Make the settings configurable (``%config ChatSettings...``) while loaded."""
        if self.settings not in self.shell.configurables:
            self.shell.configurables.append(self.settings)
        register_notebook_path(self._notebook_path)
        if not self._watching_cells():
            self.shell.events.register("pre_run_cell", self._cell_starts)
            # Python cells change conversations too (tf_magics.get_chat().ask(...)).
            self.shell.events.register("post_run_cell", self._cell_ended)
        if self._remember_error not in self.shell.events.callbacks["post_run_cell"]:
            self.shell.events.register("post_run_cell", self._remember_error)
        self.loaded = True

    def detach(self) -> None:
        """Close the panels and stop taking ``%config`` (the conversations are kept)."""
        for panel in list(self.panels):
            panel.close()
        if self.settings in self.shell.configurables:
            self.shell.configurables.remove(self.settings)
        unregister_notebook_path(self._notebook_path)
        if self._watching_cells():
            self.shell.events.unregister("pre_run_cell", self._cell_starts)
            self.shell.events.unregister("post_run_cell", self._cell_ended)
        if self._remember_error in self.shell.events.callbacks["post_run_cell"]:
            self.shell.events.unregister("post_run_cell", self._remember_error)
        self.loaded = False

    def _watching_cells(self) -> bool:
        return self._cell_starts in self.shell.events.callbacks.get("pre_run_cell", [])

    def _cell_starts(self, info: Any) -> None:
        # The count was already moved on for a cell that is stored in the history.
        count = self.shell.execution_count
        self.cell_number = count - 1 if getattr(info, "store_history", False) else count

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
            chat.confirm_spend = self.confirm_spend
            chat.code_cells = cell_lookup(self.shell)  # tracebacks name the notebook's cells
        return chat

    def _cell_ended(self, result: Any = None) -> None:
        if self.chats:  # nothing to save before the first conversation
            self._save()

    def changed(self) -> None:
        """After a cell, a command or a panel action: save the conversations, update the panels."""
        self._save()
        self.refresh_panels()

    def _save(self) -> None:
        warning = self.keeper.save()  # nothing is written when nothing changed
        if warning is not None:
            from IPython.display import display

            from .layout import notes_html

            display(
                {"text/html": notes_html([("warning", warning)]), "text/plain": warning}, raw=True
            )

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

    def confirm_spend(self, estimate: MapEstimate) -> bool | None:
        """Ask the person at the notebook before a large map, showing its estimate.

        ``None`` when no one can answer (a notebook run headless).
        """
        from IPython.core.error import StdinNotImplementedError

        try:
            answer = input(f"This map: {estimate.text()}. Run it? [y/N] ")
        except (StdinNotImplementedError, EOFError, RuntimeError):
            return None
        return answer.strip().lower() in ("y", "yes")


def _notebook_path_of(shell: InteractiveShell) -> Callable[[], str | None]:
    """A function that reads the notebook's path from the shell's namespace, as front ends set it.

    VS Code sets ``__vsc_ipynb_file__``; ipykernel copies JupyterLab's and Notebook 7's
    ``JPY_SESSION_NAME`` into ``__session__``.
    """
    reference = weakref.ref(shell)

    def notebook_path() -> str | None:
        alive = reference()
        namespace = getattr(alive, "user_ns", None) or {}
        for name in ("__vsc_ipynb_file__", "__session__"):
            value = namespace.get(name)
            if isinstance(value, str) and value.strip():
                return value
        return None

    return notebook_path


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
