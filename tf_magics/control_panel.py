"""The control panel: widgets for the system prompt, sampling, the conversation and the tools.

Show it with ``%chat panel`` (or ``%chat_panel``, ``%chat panel -c NAME`` for a named
conversation), or from Python::

    import tf_magics
    tf_magics.panel()            # the panel of the default conversation, as a cell's result
    tf_magics.panel("draft")     # another conversation

What it shows and changes:

- **System prompt** of the panel's conversation (index 0 of its history).
- **Model**: type a name or pick one the server lists (``↻`` asks ``GET /models``).
- **Temperature** (0 to 2) and **top_p** (0 to 1): moving a slider sets the value; ticking
  "server default" leaves it unset, so nothing is sent and the server decides. A hint says
  what the value is good for and warns when both are set (change one, not both).
- **Max tokens**, **seed** (blank = random), **stop** sequences (type one, press Enter),
  **stream** on/off.
- **Conversation**: switch to another named conversation or start one; *New* forgets the
  messages (the system prompt stays), *Undo* forgets the last turn, *Retry* asks the last
  question again (the new reply appears at the bottom of the panel); token usage per turn and
  in total, with a chart of the tokens each turn sent; *Trim* keeps the last N turns (now, or
  before every request).
- **Tools** registered with ``@tf_magics.tool``, each with an on/off switch.

There is one settings object (:class:`~tf_magics.ChatSettings`): the panel, ``%config
ChatSettings...``, ``%chat set ...`` and Python (``get_ipython().magics_manager.registry
["ChatMagics"].settings``) read and write the same values, and every open panel shows a change
at once. A cell flag (``%%chat -t 0``) applies to that cell only and does not move the panel.
The panel catches up with conversation changes made by cells after every cell.

The API key is never shown or stored in widget state: the panel shows where the key comes from,
never its value. Where widgets cannot render (terminal IPython, a notebook viewed on GitHub or
nbviewer) the panel's output carries a text and HTML summary of the settings instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
from traitlets import TraitError

from ._panel_controls import OptionalSlider, PanelControls, WidgetOutput, tool_switch, walk_widgets
from ._panel_html import (
    compact_history_html,
    conversation_summary_html,
    hint_html,
    sampling_hint,
    settings_summary,
    status_html,
    usage_chart_svg,
)
from .render import escape

if TYPE_CHECKING:
    from .chat import Chat
    from .conversation import Conversation
    from .magics import ChatMagics
    from .reply import Reply

__all__ = ["ChatPanel", "panel", "show_panel"]

#: Settings the panel shows (and watches).
WATCHED = (
    "base_url",
    "model",
    "temperature",
    "top_p",
    "max_tokens",
    "seed",
    "stop",
    "stream",
    "history_max_turns",
)
_MODELS_TIMEOUT = 2.0  # seconds: the panel must never hang on a slow /models
_MAX_STOP = 4


class ChatPanel(PanelControls):
    """Widgets bound to the notebook's :class:`~tf_magics.ChatSettings` and one conversation.

    Build one with :func:`panel` or ``%chat panel``; display it like any object (it is not a
    widget itself: :attr:`widget` is the root to embed in your own layouts).

    Parameters
    ----------
    magics
        The loaded :class:`~tf_magics.magics.ChatMagics` (its settings and conversations).
    conversation
        The conversation's name (``None`` = the default one).
    fetch_models
        Ask the server for its models when none are known yet (with a short timeout).

    Attributes
    ----------
    widget
        The root widget (a ``VBox``).
    system, model, temperature, top_p, max_tokens, seed, stop, stream
        The setting controls (``temperature`` and ``top_p`` are :class:`OptionalSlider`).
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
        self, magics: ChatMagics, conversation: str | None = None, *, fetch_models: bool = True
    ) -> None:
        self.magics = magics
        self.settings = magics.settings
        self.name = conversation or "default"
        self._quiet_depth = 0
        self._shown_history: tuple[Any, ...] | None = None
        self._shown_tools: tuple[str, ...] | None = None
        self.tool_switches: dict[str, Any] = {}
        magics.chat_for(self.name)  # the conversation exists from now on
        super().__init__()
        self._connect()
        self.refresh()
        if fetch_models and not self.model.options:
            self.load_models(timeout=_MODELS_TIMEOUT, quiet=True)
        magics.panels.append(self)
        magics.ip.events.register("post_run_cell", self._after_cell)

    # -- what it is bound to --

    @property
    def chat(self) -> Chat:
        """The panel's :class:`~tf_magics.Chat` (looked up each time: cells may replace it)."""
        return self.magics.chat_for(self.name)

    @property
    def conversation(self) -> Conversation:
        """The panel's conversation."""
        return self.chat.conversation

    # -- wiring --

    def _connect(self) -> None:
        self.settings.observe(self._on_setting, names=list(WATCHED))
        for name, control in (("temperature", self.temperature), ("top_p", self.top_p)):
            control.slider.observe(partial(self._slider_moved, name), names="value")
            control.default.observe(partial(self._default_ticked, name), names="value")
        self.model.observe(self._model_typed, names="value")
        self.max_tokens.observe(self._max_tokens_typed, names="value")
        self.seed.observe(self._seed_typed, names="value")
        self.stop.observe(self._stop_changed, names="value")
        self.stream.observe(self._stream_ticked, names="value")
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
            if name in ("temperature", "top_p"):
                getattr(self, name).show(getattr(settings, name))
                self._show_hint()
            elif name == "model":
                if (self.model.value.strip() or None) != settings.model:
                    self.model.value = settings.model or ""
            elif name == "max_tokens":
                self.max_tokens.value = settings.max_tokens
            elif name == "seed":
                shown = "" if settings.seed is None else str(settings.seed)
                if self.seed.value.strip() != shown:
                    self.seed.value = shown
            elif name == "stop":
                self.stop.value = list(settings.stop or [])
            elif name == "stream":
                self.stream.value = settings.stream
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
        base_url, _, source = self.settings.endpoint()
        where = f"{base_url} (from {source})" if base_url else "no endpoint configured"
        self.title.value = (
            '<div class="tf-title">tf_magics</div>'
            f'<div class="tf-sub">{escape(where)} · API key {escape(self.settings.key_status())}'
            "</div>"
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

    def _slider_moved(self, name: str, change: dict[str, Any]) -> None:
        if not self._showing:
            self._set(name, change["new"])

    def _default_ticked(self, name: str, change: dict[str, Any]) -> None:
        if not self._showing:
            control: OptionalSlider = getattr(self, name)
            self._set(name, None if change["new"] else control.slider.value)

    def _model_typed(self, change: dict[str, Any]) -> None:
        if not self._showing:
            self._set("model", change["new"].strip() or None)

    def _max_tokens_typed(self, change: dict[str, Any]) -> None:
        if not self._showing:
            self._set("max_tokens", change["new"])

    def _seed_typed(self, change: dict[str, Any]) -> None:
        if self._showing:
            return
        text = change["new"].strip()
        try:
            seed = _parse_seed(text)
        except ValueError:
            self.say(
                f"The seed must be a whole number (or blank for random), not {text!r}.", "error"
            )
            self._show_setting("seed")
            return
        self._set("seed", seed)

    def _stop_changed(self, change: dict[str, Any]) -> None:
        if self._showing:
            return
        stops = [s for s in change["new"] if s]
        if len(stops) > _MAX_STOP:
            self.say(f"At most {_MAX_STOP} stop sequences are allowed.", "error")
            self._show_setting("stop")
            return
        self._set("stop", stops or None)

    def _stream_ticked(self, change: dict[str, Any]) -> None:
        if not self._showing:
            self._set("stream", change["new"])

    def _trim_keep_changed(self, change: dict[str, Any]) -> None:
        if not self._showing and self.trim_auto.value:
            self._set("history_max_turns", max(1, change["new"]))

    def _trim_auto_ticked(self, change: dict[str, Any]) -> None:
        if not self._showing:
            self._set("history_max_turns", max(1, self.trim_keep.value) if change["new"] else None)

    # -- the conversation --

    def _system_typed(self, change: dict[str, Any]) -> None:
        if self._showing:
            return
        self.chat.system = change["new"]
        self._changed()

    def _conversation_picked(self, change: dict[str, Any]) -> None:
        if self._showing or not change["new"]:
            return
        self.switch(change["new"])

    def _add_conversation(self) -> None:
        name = self.new_name.value.strip()
        if not name:
            self.say("Type a name for the new conversation first.", "warning")
            return
        self.new_name.value = ""
        self.switch(name)
        self._changed()  # other panels list the new name too

    def switch(self, name: str) -> None:
        """Bind the panel to another conversation (created if new).

        Cells keep using the default conversation unless they say ``%%chat -c NAME``.
        """
        self.name = name
        self.magics.chat_for(name)
        self._shown_history = None
        self.refresh()
        self.say(f"Showing conversation {name!r}; cells use it with %%chat -c {name}.", "info")

    def new_conversation(self) -> None:
        """Forget the messages (the system prompt stays)."""
        self.chat.reset()
        self._changed()
        self.say(f"Conversation {self.name!r} starts afresh.", "ok")

    def undo(self) -> None:
        """Forget the last turn."""
        turn = self.chat.undo()
        self._changed()
        if turn is None:
            self.say("Nothing to undo: the conversation is empty.", "warning")
        else:
            self.say(f"Removed the last turn ({len(turn.messages)} messages).", "ok")

    def trim(self) -> None:
        """Keep only the last ``trim_keep`` turns (the system prompt always stays)."""
        report = self.conversation.trim(max_turns=self.trim_keep.value, keep_last=0)
        self._changed()
        self.say(str(report), "ok" if report else "info")

    def retry(self) -> Reply | None:
        """Ask the last question again; the reply streams into :attr:`replies`.

        Runs to completion like a cell (the kernel's interrupt stops it); a failure is shown in
        the panel, and the old turn is kept.
        """
        from .errors import TFMagicsError
        from .view import LiveView

        chat = self.chat
        options = chat.settings.resolve()
        view = LiveView(
            WidgetOutput(self.replies), max_tokens=options.max_tokens, target=options.base_url or ""
        )
        self.say("Asking the last question again…", "info")
        try:
            reply = chat.retry(on_event=view.handle, on_idle=view.tick, call_wrapper=view.capture)
        except TFMagicsError as error:
            failed = getattr(error, "reply", None)
            view.finish(failed, error=error, conversation_usage=chat.conversation.usage)
            self._changed()
            self.say(str(error), "error")
            return None
        view.finish(reply, conversation_usage=chat.conversation.usage)
        self.magics.last_reply = reply
        self._changed()
        self.say("New reply below.", "ok")
        return reply

    # -- models --

    def _show_cached_models(self) -> None:
        base_url = self.settings.endpoint()[0] or ""
        models = self.chat.client.models_cache.get(base_url)
        self.model.options = tuple(m.id for m in models or ())

    def load_models(self, *, timeout: float = 10.0, quiet: bool = False) -> list[str]:
        """Fill the model list from the server's ``/models``.

        Parameters
        ----------
        timeout
            Seconds to wait for the server (no retries).
        quiet
            Do not report a failure (used when the panel is first shown).

        Returns
        -------
        list of str
            The model ids (empty when the server does not list any or cannot be reached).
        """
        base_url = self.settings.endpoint()[0]
        if base_url is None or base_url == "local":
            if not quiet:
                self.say(
                    "Set a base URL first (the local model lists itself when started).", "warning"
                )
            return []
        try:
            models = self.chat.models(connect_timeout=timeout, read_timeout=timeout, max_retries=0)
        except Exception as error:  # /models is optional; the panel must stay usable without it
            if not quiet:
                self.say(f"Could not list the models: {error}", "warning")
            return []
        ids = [m.id for m in models]
        self.model.options = tuple(ids)
        if not quiet:
            self.say(f"{len(ids)} models listed." if ids else "The server lists no models.", "info")
        return ids

    # -- keeping up --

    def _changed(self) -> None:
        """Show a change this panel made (conversation, tools) in every panel."""
        self.magics.refresh_panels()
        if self not in self.magics.panels:
            self.refresh()

    def _after_cell(self, result: Any = None) -> None:
        registry = self.magics.ip.magics_manager.registry
        if registry.get("ChatMagics") is not self.magics:
            self.close()  # the extension was unloaded or reloaded: this panel is stale
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
            for name in WATCHED:
                self._show_setting(name)

    def _show_conversation_names(self) -> None:
        names = sorted({*self.magics.chats, self.name})
        if tuple(self.conversation_picker.options) != tuple(names):
            self.conversation_picker.options = names
        self.conversation_picker.value = self.name

    def _show_system(self) -> None:
        system = self.conversation.system
        if (self.system.value if self.system.value.strip() else None) != system:
            self.system.value = system or ""

    def _show_history(self) -> None:
        conversation = self.conversation
        messages = conversation.messages
        signature = (
            id(conversation),
            len(messages),
            id(messages[-1]) if messages else None,
            len(messages[-1].content) if messages else 0,
            conversation.system,
        )
        if signature == self._shown_history:
            return
        self._shown_history = signature
        self.summary.value = conversation_summary_html(conversation)
        self.chart.value = usage_chart_svg(conversation.usage_by_turn())
        self.history.value = compact_history_html(conversation)
        has_turns = bool(conversation.turns())
        self.undo_button.disabled = not has_turns
        self.retry_button.disabled = not has_turns

    def _show_tools(self) -> None:
        registry = self.chat.tools
        names = tuple(tool.name for tool in registry)
        if names != self._shown_tools:
            self._shown_tools = names
            self.tool_switches = {tool.name: self._tool_switch(tool) for tool in registry}
            self.tools_box.children = tuple(self.tool_switches.values()) or (
                widgets.HTML(
                    '<span class="tf-sub">No tools: decorate a function with '
                    "<code>@tf_magics.tool</code>.</span>"
                ),
            )
        for tool in registry:
            self.tool_switches[tool.name].value = tool.enabled

    def _tool_switch(self, tool: Any) -> Any:
        switch = tool_switch(
            tool.name, tool.description, enabled=tool.enabled, confirm=tool.confirm
        )
        switch.observe(partial(self._tool_ticked, tool.name), names="value")
        return switch

    def _tool_ticked(self, name: str, change: dict[str, Any]) -> None:
        if self._showing:
            return
        tool = self.chat.tools.get(name)
        if tool is not None:
            tool.enabled = change["new"]
            self._changed()
            state = "on" if tool.enabled else "off"
            self.say(f"Tool {name} is {state} (for every conversation).", "ok")

    # -- output --

    def say(self, text: str, level: str = "info") -> None:
        """Show a line in the panel's status area (``level``: info, ok, warning, error)."""
        self.status.value = status_html(level, text)

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
            self.settings.unobserve(self._on_setting, names=list(WATCHED))
        with contextlib.suppress(ValueError):
            self.magics.ip.events.unregister("post_run_cell", self._after_cell)
        if self in self.magics.panels:
            self.magics.panels.remove(self)
        for widget in list(self.all_widgets()):
            widget.close()


def _parse_seed(text: str) -> int | None:
    text = text.strip()
    return int(text) if text else None


# -- entry points ----------------------------------------------------------------------------------


def show_panel(magics: ChatMagics, conversation: str | None = None) -> None:
    """Display a panel for a conversation (``%chat panel`` and ``%chat_panel``).

    It displays the panel rather than returning it, so ``%chat panel`` works anywhere in a cell;
    use :func:`panel` to get the object.
    """
    from IPython.display import display

    display(ChatPanel(magics, conversation))


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

    shell = get_ipython()
    if shell is None:
        raise RuntimeError("tf_magics.panel() needs IPython or Jupyter: run it in a notebook.")
    magics = shell.magics_manager.registry.get("ChatMagics")
    if magics is None:
        shell.extension_manager.load_extension("tf_magics")
        magics = shell.magics_manager.registry["ChatMagics"]
    return ChatPanel(magics, conversation)
