"""The panel's widgets and their layout (:mod:`tf_magics.control_panel` wires them).

:class:`PanelControls` builds every control and lays them out in two columns (prompt and sampling
on the left, the conversation on the right) that stack on narrow screens. Nothing here talks to
the settings or the conversation. Controls carry ``tf-magics-*`` CSS classes, so the stylesheet
and the browser test can find them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from ._panel_html import PANEL_CSS, status_html
from .render import escape

if TYPE_CHECKING:
    from .view import Bundle

__all__ = ["OptionalSlider", "PanelControls", "WidgetOutput", "tool_switch", "walk_widgets"]

_LABEL_WIDTH = "86px"
_UNSET_HANDLE = "#b0b0b0"


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


class OptionalSlider:
    """A slider for a setting that may be unset.

    Moving the slider sets the value; ticking "server default" unsets it (nothing is sent). While
    unset, the slider rests at ``resting`` with a grey handle and no readout.

    Parameters
    ----------
    label
        The description shown left of the slider.
    low, high
        The range.
    resting
        Where the slider sits while the value is unset (the usual server default).
    css
        A CSS class for the row (tests and the browser test find controls by class).
    """

    def __init__(self, label: str, low: float, high: float, resting: float, css: str) -> None:
        self.resting = resting
        self.slider = widgets.FloatSlider(
            value=resting,
            min=low,
            max=high,
            step=0.05,
            description=label,
            readout_format=".2f",
            continuous_update=False,  # one change when the handle is let go, not one per pixel
            style={"description_width": _LABEL_WIDTH},
            layout=_layout(flex="1 1 auto", width="auto", min_width="220px"),
        )
        self.default = widgets.Checkbox(
            value=True,
            description="server default",
            indent=False,
            tooltip="Leave it unset: nothing is sent and the server's default applies.",
            layout=_layout(width="auto", flex="0 0 auto", margin="0 0 0 8px"),
        )
        self.box = widgets.HBox([self.slider, self.default], layout=_layout(width="100%"))
        self.box.add_class(css)

    def show(self, value: float | None) -> None:
        """Show a setting's value (``None`` = unset)."""
        if value is not None:
            self.slider.value = value
        self.default.value = value is None
        self.slider.readout = value is not None
        self.slider.style.handle_color = _UNSET_HANDLE if value is None else None


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


class WidgetOutput:
    """Where a reply started from the panel is shown: an ``ipywidgets.Output`` in the panel.

    A button callback has no cell output to stream into, so the live view writes to the
    widget's ``outputs`` instead (the :class:`tf_magics.view.Output` protocol). Updates replace
    one entry; the view rate-limits them.
    """

    def __init__(self, widget: Any) -> None:
        self.widget = widget
        self._clear_pending = False

    def show(self, bundle: Bundle) -> int:
        """Append an output; its position is the handle."""
        if self._clear_pending:
            self.widget.outputs = ()
            self._clear_pending = False
        self.widget.outputs = (*self.widget.outputs, _display_data(bundle))
        return len(self.widget.outputs) - 1

    def update(self, handle: int, bundle: Bundle) -> None:
        """Replace the output at ``handle``."""
        outputs = list(self.widget.outputs)
        if 0 <= handle < len(outputs):
            outputs[handle] = _display_data(bundle)
            self.widget.outputs = tuple(outputs)

    def clear(self, *, wait: bool = True) -> None:
        """Remove the outputs (with ``wait``, when the next output arrives: no flicker)."""
        if wait:
            self._clear_pending = True
        else:
            self.widget.outputs = ()
            self._clear_pending = False


def _display_data(bundle: Bundle) -> dict[str, Any]:
    return {"output_type": "display_data", "data": dict(bundle), "metadata": {}}


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
        self.status = widgets.HTML(status_html("info", ""))
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
            style={"description_width": _LABEL_WIDTH},
            layout=_layout(flex="1 1 auto", width="auto"),
        )
        self.model.add_class("tf-magics-model")
        self.refresh_models = _button(
            "", "sync", "List the server's models (GET /models)", "tf-magics-models"
        )
        self.temperature = OptionalSlider("Temperature", 0.0, 2.0, 1.0, "tf-magics-temperature")
        self.top_p = OptionalSlider("Top p", 0.0, 1.0, 1.0, "tf-magics-top-p")
        self.hint = widgets.HTML()
        self.max_tokens = widgets.BoundedIntText(
            description="Max tokens",
            min=1,
            max=10_000_000,
            continuous_update=False,
            style={"description_width": _LABEL_WIDTH},
            layout=_layout(width="190px"),
        )
        self.seed = widgets.Text(
            description="Seed",
            placeholder="random",
            continuous_update=False,
            style={"description_width": "40px"},
            layout=_layout(width="140px"),
        )
        self.stream = widgets.Checkbox(
            description="stream", indent=False, layout=_layout(width="auto", margin="0 0 0 12px")
        )
        self.stop = widgets.TagsInput(
            allowed_tags=[],
            allow_duplicates=False,
            placeholder="a stop sequence, then Enter",
            layout=_layout(flex="1 1 auto", width="auto"),
        )
        self.stop.add_class("tf-magics-stop")
        stop_label = widgets.Label("Stop", layout=_layout(width=_LABEL_WIDTH, flex="0 0 auto"))
        stop_label.add_class("tf-label")
        self.tools_box = widgets.HBox(layout=_layout(flex_flow="row wrap", width="100%"))
        return _column(
            _section("Prompt and sampling"),
            self.system,
            widgets.HBox([self.model, self.refresh_models], layout=_layout(width="100%")),
            self.temperature.box,
            self.top_p.box,
            self.hint,
            widgets.HBox([self.max_tokens, self.seed, self.stream], layout=_layout(width="100%")),
            widgets.HBox(
                [stop_label, self.stop], layout=_layout(width="100%", align_items="center")
            ),
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
