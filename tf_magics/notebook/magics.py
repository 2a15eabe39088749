"""``%%chat`` and ``%chat``: talk to an OpenAI-compatible model from a notebook.

Load with ``%load_ext tf_magics``. Then::

    %%chat
    What is the capital of France?

sends the cell's text, verbatim, as the next user message of the notebook's conversation; the reply
streams into the cell's output and stays in the history, so the next ``%%chat`` cell can refer to
it. Flags on the ``%%chat`` line apply to that cell only (``%%chat -t 0 --max-tokens 200``);
persistent settings live in one :class:`~tf_magics.ChatSettings` object shared with the panel,
``%config ChatSettings.temperature = 0.2`` and the Python API. ``%chat help`` lists the line
commands (history, undo, retry, system prompt, models, settings, save/load, tools, panel...).

Variable interpolation is opt-in: with ``-i``/``--interpolate``, ``{name}`` or ``{name.attr}`` is
replaced by the value of a notebook variable, once (``{{`` and ``}}`` give literal braces).
Without it, braces in code or JSON are sent as they are. ``--with df,fig`` attaches values
instead (summarised: a DataFrame's shape, columns and a few rows; a figure as an image), and
``--with error`` the last exception. ``--dry-run`` shows the request without sending it,
``--code`` puts the reply's code into a new cell below, and ``--compare A,B`` (or ``-t 0,1``)
asks several models or temperatures at once.

Errors fail the cell with one line that says what to do. Ctrl-C (the kernel's stop button) stops a
stream at once: the partial reply stays visible and in the history, marked as interrupted.
"""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import magic_arguments

from tf_magics.errors import CacheMissError
from tf_magics.events import Notice

from .cell_flows import check_comparison, code_to_next_cell, run_comparison, show_dry_run
from .flags import CellRequest, cell_arguments, option_arguments, parse_cell_line
from .interpolate import interpolate
from .session import NotebookSession
from .values import notebook_values

__all__ = ["ChatMagics"]


@magics_class
class ChatMagics(Magics):
    """The ``%%chat`` cell magic and the ``%chat`` line commands, working on one session.

    Parameters
    ----------
    session
        The notebook's state (settings, conversations, panels).
    """

    def __init__(self, session: NotebookSession) -> None:
        super().__init__(session.shell)
        self.session = session

    @no_var_expand
    @magic_arguments()
    @option_arguments
    @cell_arguments
    @line_cell_magic
    def chat(self, line: str, cell: str | None = None) -> Any:
        """Chat with an OpenAI-compatible model.

        As a cell magic, ``%%chat [flags]`` sends the cell's text as the next user message and
        streams the reply. As a line magic, ``%chat COMMAND`` manages conversations; ``%chat help``
        lists the commands: history, reset, undo, retry, system, explain, keep, models,
        settings, set, unset, save, load, export, tools, trim, usage, conversations, local,
        panel, cache, restore, batch.
        """
        if cell is None:
            from .commands import run_line_command

            try:
                return run_line_command(self.session, line)
            finally:
                self.session.changed()
        request = parse_cell_line(self.chat.parser, line, "%%chat")
        text = cell.strip("\n")
        if not text.strip():
            raise UsageError("The cell is empty: write your message below the %%chat line.")
        request.check_map_flags()
        if request.map is not None:
            from .mapping import run_cell_map

            try:
                return run_cell_map(self.session, text, request)
            finally:
                self.session.changed()
        if request.interpolate:
            text = interpolate(text, self.session.user_ns)
        try:
            self._send(text, request)
        finally:
            self.session.changed()
        return None

    @line_magic
    def chat_panel(self, line: str) -> Any:
        """Show the control panel: ``%chat_panel [-c NAME]`` (same as ``%chat panel``)."""
        from .commands import run_line_command

        return run_line_command(self.session, f"panel {line}")

    def _send(self, text: str, request: CellRequest) -> None:
        chat = self.session.chat(request.conversation)
        chat.settings.resolve(**request.overrides)  # bad values fail before anything changes
        tools = self._cell_tools(request.tools)
        variants = check_comparison(request)
        schema = self._schema(request.schema)
        if schema is not None and (variants or request.dry_run or request.code is not None):
            raise UsageError(
                "%%chat --schema does not combine with a comparison, --dry-run or --code."
            )
        context = (
            notebook_values(self.session.user_ns, request.attach, self.session.last_error) or None
        )
        if request.dry_run:
            shown = show_dry_run(chat, text, request, variants, tools=tools, context=context)
            self._store(request, shown)
            return
        if request.new:
            chat.reset()
        if request.system is not None:
            chat.system = request.system
        if variants:
            self._store(
                request,
                run_comparison(
                    self.session, chat, text, request, variants, tools=tools, context=context
                ),
            )
            return
        # The engine loads with the first turn, not with %load_ext.
        from .turns import make_view, run_turn

        view = make_view(chat, request.overrides, structured=schema is not None)
        earlier = self.session.keeper.earlier_notice()
        if earlier is not None:
            view.handle(Notice(earlier))  # shown under the reply, with its other notes
        after = code_to_next_cell(self.shell, request.code) if request.code is not None else None
        try:
            reply = run_turn(
                self.session,
                chat,
                view,
                text=text,
                request=request,
                tools=tools,
                context=context,
                after=after,
                schema=schema,
            )
        except CacheMissError as error:
            if self.session.cell_number is not None:  # which cell, for headless logs
                error.cell = f"In [{self.session.cell_number}]"
            raise
        self._store(request, reply.value if schema is not None else reply.text)

    def _store(self, request: CellRequest, value: Any) -> None:
        """``-o VAR``: the reply's text (a preview or a comparison for those cells)."""
        if request.output:
            self.session.user_ns[request.output] = value

    def _schema(self, name: str | None) -> Any:
        if not name:
            return None
        from tf_magics.schema import ResponseSchema

        from .mapping import notebook_schema

        # Checked now, so a schema that cannot be described fails before the history changes.
        return ResponseSchema.of(notebook_schema(self.session.user_ns, name))

    def _cell_tools(self, names: str | None) -> list[Any] | None:
        if not names:
            return None
        tools = []
        for name in (n.strip() for n in names.split(",")):
            if not name:
                continue
            value = self.session.user_ns.get(name)
            if value is None or not callable(value):
                raise UsageError(f"--tools: no function named {name!r} in the notebook.")
            tools.append(value)
        return tools
