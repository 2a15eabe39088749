"""Keeping the notebook's conversations beside it, and offering them back after a restart.

:class:`ConversationKeeper` belongs to a notebook session (``NotebookSession``):

- :meth:`~ConversationKeeper.save` runs after every cell, command and panel action: it writes the
  named conversations (:mod:`~tf_magics.notebook.saved_conversations`) when they changed, if
  ``ChatSettings.autosave`` is on and the notebook's place is known (its path, or a file named
  with ``ChatSettings.cache_file``/``TF_MAGICS_CACHE_FILE``: a headless run that cannot tell
  which notebook it is writes nothing);
- :meth:`~ConversationKeeper.earlier_notice`, on the first ``%%chat`` of a kernel whose
  conversations are empty, says when a file from an earlier session is there;
- :meth:`~ConversationKeeper.restore` brings them back (``%chat restore``).

The file as it was before this kernel first wrote it is kept in memory, so ``%chat restore``
still brings back the earlier session after this one has started saving its own turns.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from tf_magics.cache.location import Location, locate
from tf_magics.errors import ConfigurationError

from .saved_conversations import Snapshot, describe, dump_text, read_snapshot, write_atomically

if TYPE_CHECKING:
    from tf_magics.chat import Chat
    from tf_magics.settings import ChatSettings

__all__ = ["ConversationKeeper", "Keeps"]


class Keeps(Protocol):
    """What the keeper needs of a notebook session (its settings and named chats)."""

    settings: ChatSettings
    chats: dict[str, Chat]

    def chat(self, name: str | None = None) -> Chat:
        """The chat of a named conversation (created on first use)."""


class ConversationKeeper:
    """Saves and restores the conversations of one notebook session."""

    def __init__(self, session: Keeps) -> None:
        self.session = session
        self._written: str | None = None
        self._earlier: Snapshot | None = None
        self._looked = False
        self._failure_told = False

    def location(self) -> Location:
        """Where the conversations file of this notebook is."""
        return locate(self.session.settings.cache_file)

    # -- saving --

    def save(self) -> str | None:
        """Write the conversations if they changed; a warning line when that failed (once)."""
        if not self.session.settings.autosave:
            return None
        try:
            location = self.location()
        except (OSError, ConfigurationError):
            return None
        if not location.known:
            return None
        text = dump_text({name: chat.conversation for name, chat in self.session.chats.items()})
        if text is None or text == self._written:
            return None
        self._remember_earlier(location.conversations)
        try:
            write_atomically(location.conversations, text)
        except OSError as error:
            if self._failure_told:
                return None
            self._failure_told = True
            return (
                f"The conversations could not be saved to {location.conversations.name} "
                f"({error.strerror or type(error).__name__}); they will not survive a restart."
            )
        self._written = text
        return None

    def _remember_earlier(self, path: Path) -> None:
        """Before the first write: keep what an earlier session saved, for ``%chat restore``."""
        if self._looked:
            return
        self._looked = True
        try:
            snapshot = read_snapshot(path)
        except (OSError, ValueError):
            return
        if snapshot.conversations:
            self._earlier = snapshot

    # -- offering and restoring --

    def earlier_notice(self) -> str | None:
        """On a fresh kernel's first turn: the line that offers the saved conversations."""
        if self._looked:
            return None
        if any(chat.conversation.messages for chat in self.session.chats.values()):
            self._looked = True
            return None
        try:
            location = self.location()
        except (OSError, ConfigurationError):
            return None
        if not location.known or not location.conversations.exists():
            return None
        self._remember_earlier(location.conversations)
        if self._earlier is None:
            return None
        return (
            f"Conversations from an earlier session are saved beside this notebook "
            f"({describe(self._earlier)}{_when(self._earlier)}): %chat restore brings them back."
        )

    def restore(self, path: Path | None = None) -> tuple[Snapshot, list[str]]:
        """Put the saved conversations back; returns them and the names that were replaced.

        ``path``: another file than this notebook's. All or nothing: nothing changes unless the
        whole file is valid.

        Raises
        ------
        FileNotFoundError
            When there is nothing to restore.
        ValueError
            Naming the first problem in the file.
        """
        if path is None and self._earlier is not None:
            snapshot = self._earlier
        else:
            target = path if path is not None else self.location().conversations
            snapshot = read_snapshot(target)
        self._looked = True
        replaced = []
        for name, conversation in snapshot.conversations.items():
            chat = self.session.chat(name)
            if chat.conversation.messages:
                replaced.append(name)
            chat.conversation = conversation.fork(name)
            chat.last_reply = None
        if path is None:
            self._earlier = None
        return snapshot, replaced


def _when(snapshot: Snapshot) -> str:
    if snapshot.saved_at is None:
        return ""
    return time.strftime(", saved %Y-%m-%d %H:%M UTC", time.gmtime(snapshot.saved_at))
