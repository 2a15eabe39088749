"""The panel's widgets and their layout (:mod:`~tf_magics.notebook.panel.chat_panel` wires them).

:class:`PanelControls` builds every control and lays them out in two columns (prompt and sampling
on the left, the conversation on the right) that stack on narrow screens. Nothing here talks to
the settings or the conversation. Controls carry ``tf-magics-*`` CSS classes, so the stylesheet
and the browser test can find them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import ipywidgets as widgets

from tf_magics.options import OPTIONS
from tf_magics.render import escape

from .fields import LABEL_WIDTH, OptionalSlider, field_for
from .html import PANEL_CSS, panel_message_html

__all__ = ["PanelControls", "tool_switch", "walk_widgets"]


def _layout(**kwargs: Any) -> Any:
    return widgets.Layout(**kwargs)


def _section(title: str) -> Any:
    return widgets.HTML(f'<div class="tf-section">{escape(title)}</div>')


def _button(description: str, icon: str, tooltip: str, css: str) -> Any:
    button = widgets.Button(
        description=description, icon=icon, tooltip=tooltip, layout=_layout(width="auto")
    )
    button.add_class(css)
    return button


def _column(*children: Any) -> Any:
    column = widgets.VBox(list(children), layout=_layout(width="100%", min_width="0"))
    column.add_class("tf-column")
    return column


def tool_switch(name: str, description: str, *, enabled: bool, confirm: bool) -> Any:
    """The on/off checkbox of one tool (its description as the tooltip)."""
    switch = widgets.Checkbox(
        value=enabled,
        description=name + (" (asks first)" if confirm else ""),
        tooltip=description,
        indent=False,
        layout=_layout(width="auto", margin="0 14px 0 0"),
    )
    switch.add_class("tf-magics-tool")
    return switch


class PanelControls:
    """Every control of the panel, laid out; :attr:`widget` is the root (a ``VBox``)."""

    def __init__(self) -> None:
        self._build()

    def _build(self) -> None:
        header = self._build_header()
        columns = widgets.GridBox(
            [self._build_settings_column(), self._build_conversation_column()],
            layout=_layout(
                grid_template_columns="repeat(auto-fit, minmax(360px, 1fr))",
                grid_gap="6px 22px",
                width="100%",
            ),
        )
        self.status = widgets.HTML(panel_message_html("info", ""))
        self.replies = widgets.Output(layout=_layout(width="100%"))
        self.replies.add_class("tf-magics-replies")
        self.widget = widgets.VBox(
            [header, columns, self.status, self.replies],
            layout=_layout(width="100%", max_width="1200px"),
        )
        self.widget.add_class("tf-magics-panel")

    def _build_header(self) -> Any:
        self.title = widgets.HTML(layout=_layout(flex="1 1 auto"))
        self.conversation_picker = widgets.Dropdown(
            description="Conversation",
            style={"description_width": "auto"},
            layout=_layout(width="230px"),
        )
        self.conversation_picker.add_class("tf-magics-conversation")
        self.new_name = widgets.Text(
            placeholder="new conversation",
            tooltip="A name for a new conversation (cells use it with %%chat -c NAME)",
            layout=_layout(width="150px"),
        )
        self.add_conversation = _button(
            "", "plus", "Start a conversation with this name", "tf-magics-add"
        )
        return widgets.HBox(
            [
                widgets.HTML(PANEL_CSS, layout=_layout(display="none")),
                self.title,
                self.conversation_picker,
                self.new_name,
                self.add_conversation,
            ],
            layout=_layout(width="100%", align_items="center"),
        )

    def _build_settings_column(self) -> Any:
        self.system = widgets.Textarea(
            placeholder="System prompt: who the model is and how it should answer…",
            rows=5,
            layout=_layout(width="100%"),
        )
        self.system.add_class("tf-magics-system")
        self.model = widgets.Combobox(
            description="Model",
            placeholder="the server's first model",
            ensure_option=False,
            style={"description_width": LABEL_WIDTH},
            layout=_layout(flex="1 1 auto", width="auto"),
        )
        self.model.add_class("tf-magics-model")
        self.refresh_models = _button(
            "", "sync", "List the server's models (GET /models)", "tf-magics-models"
        )
        self.hint = widgets.HTML()
        # One control per option that has a widget: sliders each on a row, then the hint, the
        # small controls side by side, and lists last.
        self.fields = {spec.name: field_for(spec) for spec in OPTIONS if spec.widget is not None}
        fields = list(self.fields.values())
        wide = [f.box for f in fields if not f.compact and isinstance(f, OptionalSlider)]
        small = [f.box for f in fields if f.compact]
        lists = [f.box for f in fields if not f.compact and not isinstance(f, OptionalSlider)]
        self.tools_box = widgets.HBox(layout=_layout(flex_flow="row wrap", width="100%"))
        return _column(
            _section("Prompt and sampling"),
            self.system,
            widgets.HBox([self.model, self.refresh_models], layout=_layout(width="100%")),
            *wide,
            self.hint,
            widgets.HBox(small, layout=_layout(width="100%", flex_flow="row wrap")),
            *lists,
            _section("Tools"),
            self.tools_box,
        )

    def _build_conversation_column(self) -> Any:
        self.summary = widgets.HTML()
        self.new_button = _button(
            "New", "file", "Forget the messages (the system prompt stays)", "tf-magics-new"
        )
        self.undo_button = _button("Undo", "undo", "Forget the last turn", "tf-magics-undo")
        self.retry_button = _button(
            "Retry",
            "redo",
            "Ask the last question again (the reply appears below)",
            "tf-magics-retry",
        )
        self.trim_keep = widgets.BoundedIntText(
            value=6,
            min=0,
            max=100_000,
            description="keep last",
            style={"description_width": "auto"},
            layout=_layout(width="125px"),
        )
        self.trim_button = _button("Trim", "cut", "Drop the oldest turns now", "tf-magics-trim")
        self.trim_auto = widgets.Checkbox(
            description="always",
            indent=False,
            tooltip="Trim to this many turns before every request (history_max_turns)",
            layout=_layout(width="auto", margin="0 0 0 6px"),
        )
        self.chart = widgets.HTML(layout=_layout(width="100%"))
        self.history = widgets.HTML(layout=_layout(width="100%"))
        return _column(
            _section("Conversation"),
            self.summary,
            widgets.HBox(
                [self.new_button, self.undo_button, self.retry_button],
                layout=_layout(width="100%", flex_flow="row wrap"),
            ),
            widgets.HBox(
                [self.trim_keep, widgets.Label("turns"), self.trim_button, self.trim_auto],
                layout=_layout(width="100%", align_items="center", flex_flow="row wrap"),
            ),
            self.chart,
            self.history,
        )


def walk_widgets(root: Any) -> Iterator[Any]:
    """The widget and every widget it refers to (children, layout, style), each once."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        widget = stack.pop()
        if id(widget) in seen:
            continue
        seen.add(id(widget))
        yield widget
        for key in widget.keys:
            value = getattr(widget, key, None)
            items = value if isinstance(value, (list, tuple)) else (value,)
            stack.extend(item for item in items if isinstance(item, widgets.Widget))
