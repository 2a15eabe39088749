"""One panel control per setting, generated from the options table (``Option.widget``).

Each field shows a setting's value (:meth:`SettingField.show`) and reports a person's change as
the value to store (:meth:`SettingField.on_change`), or why the input cannot be one
(:class:`FieldInputError`). The panel writes the value through the shared settings object, whose
option check has the last word.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from tf_magics.options import Option

__all__ = [
    "CapField",
    "ChoiceField",
    "FieldInputError",
    "OptionalSlider",
    "PricesField",
    "SeedField",
    "SettingField",
    "TagsField",
    "ToggleField",
    "WholeField",
    "field_for",
]

LABEL_WIDTH = "86px"
_UNSET_HANDLE = "#b0b0b0"

OnChange = Callable[[Any], None]


class FieldInputError(ValueError):
    """What was typed cannot be a value of the setting (the message says why, in one line)."""


def _layout(**kwargs: Any) -> Any:
    return widgets.Layout(**kwargs)


class SettingField:
    """A control bound to one option.

    Attributes
    ----------
    option
        The option it edits.
    widget
        The input widget (slider, text box, checkbox...).
    box
        What the panel lays out (the widget, or the widget with its companions).
    compact
        Small enough to share a row with other compact fields.
    """

    compact = True

    def __init__(self, option: Option, widget: Any, box: Any | None = None) -> None:
        self.option = option
        self.widget = widget
        self.box = box if box is not None else widget
        self.box.add_class(option.css_class)
        self.widget.tooltip = option.help

    def show(self, value: Any) -> None:
        """Show the setting's value."""
        self.widget.value = value

    def read(self, raw: Any) -> Any:
        """The setting value for what the widget now holds."""
        return raw

    def on_change(self, callback: OnChange, failed: Callable[[str], None]) -> None:
        """Call ``callback(value)`` when a person changes the control, ``failed(why)`` if bad."""

        def changed(change: dict[str, Any]) -> None:
            try:
                value = self.read(change["new"])
            except FieldInputError as error:
                failed(str(error))
                return
            callback(value)

        self.widget.observe(changed, names="value")


class OptionalSlider(SettingField):
    """A slider for a setting that may be unset.

    Moving the slider sets the value; ticking "server default" unsets it (nothing is sent). While
    unset, the slider rests at the option's ``resting`` value with a grey handle and no readout.
    """

    compact = False

    def __init__(self, option: Option) -> None:
        self.resting = option.resting if option.resting is not None else option.low or 0.0
        self.slider = widgets.FloatSlider(
            value=self.resting,
            min=option.low,
            max=option.high,
            step=0.05,
            description=option.title,
            readout_format=".2f",
            continuous_update=False,  # one change when the handle is let go, not one per pixel
            style={"description_width": LABEL_WIDTH},
            layout=_layout(flex="1 1 auto", width="auto", min_width="220px"),
        )
        self.default = widgets.Checkbox(
            value=True,
            description="server default",
            indent=False,
            tooltip="Leave it unset: nothing is sent and the server's default applies.",
            layout=_layout(width="auto", flex="0 0 auto", margin="0 0 0 8px"),
        )
        box = widgets.HBox([self.slider, self.default], layout=_layout(width="100%"))
        super().__init__(option, self.slider, box)

    def show(self, value: float | None) -> None:
        """Show a setting's value (``None`` = unset)."""
        if value is not None:
            self.slider.value = value
        self.default.value = value is None
        self.slider.readout = value is not None
        self.slider.style.handle_color = _UNSET_HANDLE if value is None else None

    def on_change(self, callback: OnChange, failed: Callable[[str], None]) -> None:
        """The slider sets a value; the "server default" box unsets it (or sets it again)."""
        self.slider.observe(lambda change: callback(change["new"]), names="value")
        self.default.observe(
            lambda change: callback(None if change["new"] else self.slider.value), names="value"
        )


class WholeField(SettingField):
    """A whole number within the option's range."""

    def __init__(self, option: Option) -> None:
        widget = widgets.BoundedIntText(
            description=option.title,
            min=int(option.low) if option.low is not None else -(10**9),
            max=int(option.high) if option.high is not None else 10_000_000,
            continuous_update=False,
            style={"description_width": LABEL_WIDTH},
            layout=_layout(width="190px"),
        )
        super().__init__(option, widget)


class SeedField(SettingField):
    """A whole number, or blank for "not set" (a seed: blank means random)."""

    def __init__(self, option: Option) -> None:
        widget = widgets.Text(
            description=option.title,
            placeholder="random",
            continuous_update=False,
            style={"description_width": "40px"},
            layout=_layout(width="140px"),
        )
        super().__init__(option, widget)

    def show(self, value: int | None) -> None:
        """Show the number, or nothing when unset."""
        shown = "" if value is None else str(value)
        if self.widget.value.strip() != shown:
            self.widget.value = shown

    def read(self, raw: Any) -> int | None:
        """The typed number (blank = unset)."""
        text = str(raw).strip()
        if not text:
            return None
        try:
            return int(text)
        except ValueError:
            raise FieldInputError(
                f"The {self.option.name} must be a whole number (or blank for random), "
                f"not {text!r}."
            ) from None


class TagsField(SettingField):
    """A list of strings, typed one at a time (Enter adds one)."""

    compact = False

    def __init__(self, option: Option) -> None:
        widget = widgets.TagsInput(
            allowed_tags=[],
            allow_duplicates=False,
            placeholder=f"a {option.name} value, then Enter",
            layout=_layout(flex="1 1 auto", width="auto"),
        )
        label = widgets.Label(option.title, layout=_layout(width=LABEL_WIDTH, flex="0 0 auto"))
        label.add_class("tf-label")
        box = widgets.HBox([label, widget], layout=_layout(width="100%", align_items="center"))
        super().__init__(option, widget, box)

    def show(self, value: list[str] | None) -> None:
        """Show the strings (none when unset)."""
        self.widget.value = list(value or [])

    def read(self, raw: Any) -> list[str] | None:
        """The strings (``None`` when there are none); too many is refused here already."""
        items = [s for s in raw if s]
        if self.option.high is not None and len(items) > self.option.high:
            raise FieldInputError(
                f"At most {self.option.high:g} {self.option.name} values are allowed."
            )
        return items or None


class ToggleField(SettingField):
    """An on/off setting."""

    def __init__(self, option: Option) -> None:
        widget = widgets.Checkbox(
            description=option.name.replace("_", " "),
            indent=False,
            layout=_layout(width="auto", margin="0 0 0 12px"),
        )
        super().__init__(option, widget)


class CapField(SettingField):
    """A spending cap: a number, or blank for none."""

    def __init__(self, option: Option) -> None:
        widget = widgets.Text(
            description=option.title,
            placeholder="no cap",
            continuous_update=False,
            style={"description_width": LABEL_WIDTH},
            layout=_layout(width="190px"),
        )
        super().__init__(option, widget)

    def show(self, value: float | None) -> None:
        """Show the cap, or nothing when there is none."""
        shown = "" if value is None else f"{value:g}"
        if self.widget.value.strip() != shown:
            self.widget.value = shown

    def read(self, raw: Any) -> float | int | None:
        """The typed cap (blank = none)."""
        text = str(raw).strip().replace(",", "").replace("_", "")
        if not text:
            return None
        try:
            number = float(text)
        except ValueError:
            raise FieldInputError(
                f"The {self.option.name} must be a number (or blank for no cap), not {text!r}."
            ) from None
        if self.option.kind == "int":
            if not number.is_integer():
                raise FieldInputError(f"The {self.option.name} must be a whole number of tokens.")
            return int(number)
        return number


class PricesField(SettingField):
    """Prices by model, typed as ``model: input / output`` per million tokens, ``;`` between."""

    compact = False

    def __init__(self, option: Option) -> None:
        widget = widgets.Text(
            placeholder="my-model: 0.15 / 0.60; other-model: 1 / 2  (per million tokens)",
            continuous_update=False,
            layout=_layout(flex="1 1 auto", width="auto"),
        )
        label = widgets.Label(option.title, layout=_layout(width=LABEL_WIDTH, flex="0 0 auto"))
        label.add_class("tf-label")
        box = widgets.HBox([label, widget], layout=_layout(width="100%", align_items="center"))
        super().__init__(option, widget, box)

    def show(self, value: dict[str, Any] | None) -> None:
        """Show every model's price."""
        shown = "; ".join(
            f"{model}: {' / '.join(f'{float(p):g}' for p in price)}"
            for model, price in (value or {}).items()
            if isinstance(price, (list, tuple))
        )
        if self.widget.value.strip() != shown:
            self.widget.value = shown

    def read(self, raw: Any) -> dict[str, list[float]]:
        """The prices typed (a model's name may itself hold colons: ``llama3:8b: 0 / 0``)."""
        prices: dict[str, list[float]] = {}
        for entry in str(raw).split(";"):
            if not entry.strip():
                continue
            model, colon, numbers = entry.rpartition(":")
            try:
                values = [float(n) for n in numbers.split("/")]
            except ValueError:
                values = []
            if not colon or not model.strip() or len(values) not in (2, 3):
                raise FieldInputError(
                    f"Prices look like 'my-model: 0.15 / 0.60' (input / output per million "
                    f"tokens, ';' between models), not {entry.strip()!r}."
                )
            prices[model.strip()] = values
        return prices


class ChoiceField(SettingField):
    """One of a few named values (the option's ``choices``)."""

    def __init__(self, option: Option) -> None:
        widget = widgets.Dropdown(
            options=list(option.choices),
            description=option.title,
            style={"description_width": "auto"},
            layout=_layout(width="auto", margin="0 0 0 12px"),
        )
        super().__init__(option, widget)


_FIELDS: dict[str, type[SettingField]] = {
    "slider": OptionalSlider,
    "whole": WholeField,
    "seed": SeedField,
    "tags": TagsField,
    "toggle": ToggleField,
    "cap": CapField,
    "prices": PricesField,
    "choice": ChoiceField,
}


def field_for(option: Option) -> SettingField:
    """The control for an option that has a ``widget``.

    Raises
    ------
    ValueError
        If the option has no widget.
    """
    if option.widget is None:
        raise ValueError(f"the option {option.name!r} has no panel control")
    factory: Callable[[Option], SettingField] = _FIELDS[option.widget]
    return factory(option)
