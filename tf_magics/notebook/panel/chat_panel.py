"""The control panel: widgets for the system prompt, sampling, the conversation and the tools.

Show it with ``%chat panel`` (or ``%chat_panel``, ``%chat panel -c NAME`` for a named
conversation), or from Python::

    import tf_magics
    tf_magics.panel()            # the panel of the default conversation, as a cell's result
    tf_magics.panel("draft")     # another conversation

What it shows and changes:

- **System prompt** of the panel's conversation (index 0 of its history).
- **Model**: type a name or pick one the server lists (``↻`` asks ``GET /models``).
- **The sampling settings** that the options table gives a control (temperature and top_p as
  sliders that can be left at the server's default, max tokens, seed, stop sequences, stream).
  A hint says what the temperature and top_p values are good for.
- **Conversation**: switch to another named conversation or start one; *New* forgets the
  messages (the system prompt stays), *Undo* forgets the last turn, *Retry* asks the last
  question again (the new reply appears at the bottom of the panel); token usage per turn and
  in total, with a chart of the tokens each turn sent; *Trim* keeps the last N turns (now, or
  before every request).
- **Tools** registered with ``@tf_magics.tool``, each with an on/off switch.

There is one settings object (:class:`~tf_magics.ChatSettings`): the panel, ``%config
ChatSettings...``, ``%chat set ...`` and Python read and write the same values, and every open
panel shows a change at once. A cell flag (``%%chat -t 0``) applies to that cell only and does
not move the panel. The panel catches up with conversation changes made by cells after every
cell.

The API key is never shown or stored in widget state: the panel shows where the key comes from,
never its value. Where widgets cannot render (terminal IPython, a notebook viewed on GitHub or
nbviewer) the panel's output carries a text and HTML summary of the settings instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

from traitlets import TraitError

from tf_magics.budget import caps_for, kernel_ledger
from tf_magics.render import NO_MATH, escape

from .controls import walk_widgets
from .conversation_side import ConversationSide
from .html import hint_html, panel_message_html, sampling_hint, settings_summary

if TYPE_CHECKING:
    from tf_magics.chat import Chat
    from tf_magics.conversation import Conversation
    from tf_magics.notebook.session import NotebookSession

__all__ = ["ChatPanel"]

_MODELS_TIMEOUT = 2.0  # seconds: the panel must never hang on a slow /models


class ChatPanel(ConversationSide):
    """Widgets bound to the notebook's :class:`~tf_magics.ChatSettings` and one conversation.

    Build one with :func:`tf_magics.panel` or ``%chat panel``; display it like any object (it is
    not a widget itself: :attr:`widget` is the root to embed in your own layouts).

    Parameters
    ----------
    session
        The notebook's session (its settings and conversations).
    conversation
        The conversation's name (``None`` = the default one).
    fetch_models
        Ask the server for its models when none are known yet (with a short timeout).

    Attributes
    ----------
    widget
        The root widget (a ``VBox``).
    system, model
        The system prompt and the model controls.
    fields
        One control per setting that the options table gives a ``widget``, by setting name.
    conversation_picker, new_name, add_conversation
        Switch conversation, or start a named one.
    new_button, undo_button, retry_button, trim_button, trim_keep, trim_auto
        Conversation controls.
    tool_switches
        One checkbox per registered tool, by tool name.
    replies
        An ``ipywidgets.Output`` that shows replies started from the panel (retry).
    """

    def __init__(
        self,
        session: NotebookSession,
        conversation: str | None = None,
        *,
        fetch_models: bool = True,
    ) -> None:
        self.session = session
        self.settings = session.settings
        self.name = conversation or "default"
        self._quiet_depth = 0
        self._shown_history: tuple[Any, ...] | None = None
        self._shown_tools: tuple[str, ...] | None = None
        self.tool_switches: dict[str, Any] = {}
        session.chat(self.name)  # the conversation exists from now on
        super().__init__()
        self._connect()
        self.refresh()
        if fetch_models and not self.model.options:
            self.load_models(timeout=_MODELS_TIMEOUT, quiet=True)
        session.panels.append(self)
        session.shell.events.register("post_run_cell", self._after_cell)

    # -- what it is bound to --

    @property
    def chat(self) -> Chat:
        """The panel's :class:`~tf_magics.Chat` (looked up each time: cells may replace it)."""
        return self.session.chat(self.name)

    @property
    def conversation(self) -> Conversation:
        """The panel's conversation."""
        return self.chat.conversation

    @property
    def watched(self) -> list[str]:
        """The settings the panel shows (and follows)."""
        return ["base_url", "model", "history_max_turns", *self.fields]

    # -- wiring --

    def _connect(self) -> None:
        self.settings.observe(self._on_setting, names=self.watched)
        for name, field in self.fields.items():
            field.on_change(partial(self._field_changed, name), self._field_refused(name))
        self.model.observe(self._model_typed, names="value")
        self.system.observe(self._system_typed, names="value")
        self.conversation_picker.observe(self._conversation_picked, names="value")
        self.trim_keep.observe(self._trim_keep_changed, names="value")
        self.trim_auto.observe(self._trim_auto_ticked, names="value")
        self.add_conversation.on_click(self._guarded(self._add_conversation))
        self.refresh_models.on_click(self._guarded(lambda: self.load_models()))
        self.new_button.on_click(self._guarded(self.new_conversation))
        self.undo_button.on_click(self._guarded(self.undo))
        self.retry_button.on_click(self._guarded(self.retry))
        self.trim_button.on_click(self._guarded(self.trim))

    def _guarded(self, action: Callable[[], Any]) -> Callable[[Any], None]:
        """A button callback that reports failures in the status line instead of losing them."""

        def on_click(_button: Any) -> None:
            try:
                action()
            except Exception as error:  # a button has no cell to fail: show it in the panel
                self.say(f"{type(error).__name__}: {error}", "error")

        return on_click

    @contextlib.contextmanager
    def _quiet(self) -> Iterator[None]:
        """Widget changes made while showing a value must not be written back."""
        self._quiet_depth += 1
        try:
            yield
        finally:
            self._quiet_depth -= 1

    @property
    def _showing(self) -> bool:
        return self._quiet_depth > 0

    # -- settings -> widgets --

    def _on_setting(self, change: dict[str, Any]) -> None:
        self._show_setting(change["name"])

    def _show_setting(self, name: str) -> None:
        settings = self.settings
        with self._quiet():
            if name in self.fields:
                self.fields[name].show(getattr(settings, name))
                if name in ("temperature", "top_p"):
                    self._show_hint()
                elif name in ("budget", "budget_tokens"):
                    self._show_title()
            elif name == "model":
                if (self.model.value.strip() or None) != settings.model:
                    self.model.value = settings.model or ""
            elif name == "history_max_turns":
                limit = settings.history_max_turns
                self.trim_auto.value = limit is not None
                if limit is not None:
                    self.trim_keep.value = limit
            elif name == "base_url":
                self._show_title()
                self._show_cached_models()

    def _show_hint(self) -> None:
        level, text = sampling_hint(self.settings.temperature, self.settings.top_p)
        self.hint.value = hint_html(level, text)

    def _show_title(self) -> None:
        endpoint = self.settings.endpoint()
        if endpoint.problem is not None:
            where = endpoint.problem
        elif endpoint.base_url:
            where = f"{endpoint.base_url} (from {endpoint.source})"
        else:
            where = "no endpoint configured"
        settings = self.settings
        caps = caps_for(settings.budget, settings.budget_tokens, settings.currency)
        spent = f" · spent {kernel_ledger().spent_text(caps)}" if caps else ""
        self.title.value = (
            '<div class="tf-title">tf_magics</div>'
            f'<div class="tf-sub">{escape(where)} · API key {escape(settings.key_status())}'
            f'<span class="tf-magics-budget {NO_MATH}">{escape(spent)}</span></div>'
        )

    # -- widgets -> settings --

    def _set(self, name: str, value: Any) -> None:
        """Write one setting; a refused value is explained and the control shows the old one."""
        try:
            setattr(self.settings, name, value)
        except TraitError as error:
            self.say(str(error), "error")
            self._show_setting(name)
        else:
            self.say("", "info")

    def _field_changed(self, name: str, value: Any) -> None:
        if not self._showing:
            self._set(name, value)

    def _field_refused(self, name: str) -> Callable[[str], None]:
        def refused(why: str) -> None:
            if not self._showing:
                self.say(why, "error")
                self._show_setting(name)

        return refused

    def _model_typed(self, change: dict[str, Any]) -> None:
        if not self._showing:
            self._set("model", change["new"].strip() or None)

    def _trim_keep_changed(self, change: dict[str, Any]) -> None:
        if not self._showing and self.trim_auto.value:
            self._set("history_max_turns", max(1, change["new"]))

    def _trim_auto_ticked(self, change: dict[str, Any]) -> None:
        if not self._showing:
            self._set("history_max_turns", max(1, self.trim_keep.value) if change["new"] else None)

    def _system_typed(self, change: dict[str, Any]) -> None:
        if self._showing:
            return
        self.chat.system = change["new"]
        self._changed()

    def _conversation_picked(self, change: dict[str, Any]) -> None:
        if self._showing or not change["new"]:
            return
        self.switch(change["new"])

    # -- keeping up --

    def _changed(self) -> None:
        """Show a change this panel made (conversation, tools) in every panel, and save it."""
        self.session.changed()
        if self not in self.session.panels:
            self.refresh()

    def _after_cell(self, result: Any = None) -> None:
        if not self.session.loaded:
            self.close()  # the extension was unloaded: this panel is stale
            return
        self.refresh()

    def refresh(self) -> None:
        """Show the conversation, the tools and the settings as they are now.

        The magic calls this after every ``%%chat`` cell and ``%chat`` command, and the panel
        after every cell, so changes made by cells and Python show without a click.
        """
        with self._quiet():
            self._show_conversation_names()
            self._show_system()
            self._show_history()
            self._show_tools()
            self._show_title()
            for name in self.watched:
                self._show_setting(name)

    # -- output --

    def say(self, text: str, level: str = "info") -> None:
        """Show a line in the panel's status area (``level``: info, ok, warning, error)."""
        self.status.value = panel_message_html(level, text)

    def summary_text(self) -> tuple[str, str]:
        """The settings and the conversation as ``(text, html)`` (the key as a status only)."""
        return settings_summary(self.settings, self.conversation)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        # The widget view for live frontends, plus a summary for everything else (terminal
        # IPython prints text/plain; nbconvert/GitHub fall back to text/html without widget state).
        bundle: dict[str, Any] = dict(self.widget._repr_mimebundle_(**kwargs) or {})
        text, html = self.summary_text()
        bundle["text/plain"] = text
        bundle["text/html"] = html
        return bundle

    def __repr__(self) -> str:
        return f"<ChatPanel for conversation {self.name!r}>"

    def all_widgets(self) -> Iterator[Any]:
        """Every widget in the panel (for tests and tools that inspect widget state)."""
        return walk_widgets(self.widget)

    def close(self) -> None:
        """Stop following the settings and close every widget of the panel."""
        with contextlib.suppress(ValueError):
            self.settings.unobserve(self._on_setting, names=self.watched)
        with contextlib.suppress(ValueError):
            self.session.shell.events.unregister("post_run_cell", self._after_cell)
        if self in self.session.panels:
            self.session.panels.remove(self)
        for widget in list(self.all_widgets()):
            widget.close()
