"""The panel's right-hand side: the conversation and the tools, and what the buttons do.

:class:`ConversationSide` shows the conversation (names, system prompt, history, usage chart) and
the tools, and runs the buttons (switch or start a conversation, new, undo, trim, retry, list the
models). :class:`~tf_magics.notebook.panel.ChatPanel` adds the settings side and the wiring. A
button has no cell to fail, so every action reports its outcome in the panel's status line.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from tf_magics.cost import format_money
from tf_magics.notebook.outputs import WidgetOutput
from tf_magics.notebook.turns import make_view, run_turn

from .controls import PanelControls, tool_switch
from .html import compact_history_html, conversation_summary_html, usage_chart_svg

if TYPE_CHECKING:
    from tf_magics.chat import Chat
    from tf_magics.conversation import Conversation
    from tf_magics.notebook.session import NotebookSession
    from tf_magics.reply import Reply
    from tf_magics.settings import ChatSettings

__all__ = ["ConversationSide"]


class ConversationSide(PanelControls):
    """The conversation and tools of the panel (the panel's widgets come from the base class)."""

    session: NotebookSession
    settings: ChatSettings
    name: str
    tool_switches: dict[str, Any]
    _shown_history: tuple[Any, ...] | None
    _shown_tools: tuple[str, ...] | None

    # Provided by the panel itself.
    @property
    def chat(self) -> Chat:
        """The panel's conversation's chat."""
        raise NotImplementedError

    @property
    def conversation(self) -> Conversation:
        """The panel's conversation."""
        raise NotImplementedError

    def say(self, text: str, level: str = "info") -> None:
        """Show a line in the panel's status area."""
        raise NotImplementedError

    def refresh(self) -> None:
        """Show everything as it is now."""
        raise NotImplementedError

    def _changed(self) -> None:
        raise NotImplementedError

    @property
    def _showing(self) -> bool:
        raise NotImplementedError

    # -- showing --

    def _show_conversation_names(self) -> None:
        names = sorted({*self.session.chats, self.name})
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
        currency = self.settings.currency
        costs = [_money(turn.cost, currency) for turn in conversation.turns()]
        self.chart.value = usage_chart_svg(
            conversation.usage_by_turn(),
            costs=costs,
            total_cost=_money(conversation.cost, currency),
        )
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
            self.tools_box.children = tuple(self.tool_switches.values()) or (_no_tools_note(),)
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

    # -- conversations --

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
        self.session.chat(name)
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
        from tf_magics.errors import TFMagicsError

        chat = self.chat
        view = make_view(chat, {}, WidgetOutput(self.replies))
        self.say("Asking the last question again…", "info")
        try:
            reply = run_turn(self.session, chat, view, text=None)
        except TFMagicsError as error:
            self._changed()
            self.say(str(error), "error")
            return None
        self._changed()
        self.say("New reply below.", "ok")
        return reply

    # -- models --

    def _show_cached_models(self) -> None:
        base_url = self.settings.endpoint().base_url or ""
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
        base_url = self.settings.endpoint().base_url
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


def _no_tools_note() -> Any:
    return widgets.HTML(
        '<span class="tf-sub">No tools: decorate a function with <code>@tf_magics.tool</code>.'
        "</span>"
    )


def _money(amount: float | None, currency: str) -> str | None:
    return None if amount is None else format_money(amount, currency)
