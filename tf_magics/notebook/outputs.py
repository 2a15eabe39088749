"""Where a live view puts its outputs: the cell (display ids), or a widget of the panel.

:class:`Output` is the small protocol a view writes to, injected so tests can record what a view
shows. :class:`IPythonOutput` writes to the running cell with IPython's display machinery;
:class:`WidgetOutput` writes into an ``ipywidgets.Output`` (a button callback has no cell).
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["Bundle", "IPythonOutput", "Output", "WidgetOutput", "in_kernel"]

#: A display bundle: mimetype -> content.
Bundle = dict[str, str]


def in_kernel() -> bool:
    """Whether the running IPython is a Jupyter kernel (rich output), not a terminal."""
    from IPython import get_ipython

    return getattr(get_ipython(), "kernel", None) is not None


class Output(Protocol):
    """Where a view puts its outputs (injected, so tests can record them)."""

    def show(self, bundle: Bundle) -> Any:
        """Create a new output and return a handle to update it."""

    def update(self, handle: Any, bundle: Bundle) -> None:
        """Replace the content of an output created by :meth:`show`."""

    def clear(self, *, wait: bool = True) -> None:
        """Remove the cell's outputs (with ``wait``, when the next output arrives: no flicker)."""


class IPythonOutput:
    """Outputs through IPython's display machinery (``display_id`` handles)."""

    def __init__(self) -> None:
        from IPython.display import clear_output, display

        self._display = display
        self._clear = clear_output

    def show(self, bundle: Bundle) -> Any:
        """Display a raw mimebundle with a fresh display id."""
        return self._display(bundle, raw=True, display_id=True)

    def update(self, handle: Any, bundle: Bundle) -> None:
        """Update a displayed bundle in place."""
        handle.update(bundle, raw=True)

    def clear(self, *, wait: bool = True) -> None:
        """Clear the cell's outputs (when the next one arrives, with ``wait``)."""
        self._clear(wait=wait)


class WidgetOutput:
    """Where a reply started from the panel is shown: an ``ipywidgets.Output`` in the panel.

    A button callback has no cell output to stream into, so the live view writes to the
    widget's ``outputs`` instead (the :class:`Output` protocol). Updates replace
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
