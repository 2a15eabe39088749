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
Without it, braces in code or JSON are sent as they are.

Errors fail the cell with one line that says what to do. Ctrl-C (the kernel's stop button) stops a
stream at once: the partial reply stays visible and in the history, marked as interrupted.
"""

from __future__ import annotations

import os
import re
import threading
import time
from typing import TYPE_CHECKING, Any, cast

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments

from .settings import ChatSettings

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from ._tools import Tool
    from .chat import Chat
    from .reply import Reply

__all__ = ["ChatMagics", "interpolate"]

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\}")


def interpolate(text: str, namespace: dict[str, Any]) -> str:
    """Replace ``{name}`` / ``{name.attr}`` with notebook values, once; ``{{``/``}}`` escape.

    Only names and attribute lookups are allowed (no calls, no indexing), so interpolation can
    never run code, and replaced values are not scanned again.

    Raises
    ------
    UsageError
        If a name is not defined.
    """

    def substitute(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        name, *attributes = match.group(1).split(".")
        if name not in namespace:
            raise UsageError(
                f"--interpolate: {{{match.group(1)}}} names no notebook variable; define "
                f"{name!r} or write {{{{{match.group(1)}}}}} for literal braces."
            )
        value = namespace[name]
        for attribute in attributes:
            if attribute.startswith("_"):
                raise UsageError(f"--interpolate: private attribute {attribute!r} is not allowed.")
            value = getattr(value, attribute)
        return str(value)

    return _PLACEHOLDER.sub(substitute, text)


def _prewarm() -> None:
    """Import and build, in the background, what the first ``%%chat`` needs.

    The HTTP client, the Markdown renderer, pygments, the sanitizer and the TLS context cost a
    few hundred milliseconds the first time; done here while the user types the first prompt.
    A failure is harmless: the same work simply happens later, on first use.
    """
    time.sleep(0.2)  # let the %load_ext cell finish first: this thread competes for the GIL
    try:
        from . import _client, chat, view  # noqa: F401
        from .render import render_markdown

        _client._ssl_context()
        render_markdown("*warm*\n\n```python\nx = 1\n```\n\n| a |\n|---|\n| 1 |\n")
    except Exception:  # never let a background warm-up disturb the notebook
        return


def _in_kernel(shell: Any) -> bool:
    return getattr(shell, "kernel", None) is not None


@magics_class
class ChatMagics(Magics):
    """The ``%%chat`` cell magic and the ``%chat`` line commands."""

    def __init__(self, shell: InteractiveShell) -> None:
        super().__init__(shell)
        self.ip: Any = cast(Any, shell)  # never None here (Magics types it as optional)
        self.settings = ChatSettings(parent=shell)
        self.ip.configurables.append(self.settings)
        self.chats: dict[str, Chat] = {}
        self.last_reply: Reply | None = None
        self.panels: list[Any] = []
        # Loading stays instant; the first %%chat should not pay for imports either.
        if not os.environ.get("TF_MAGICS_NO_PREWARM"):
            threading.Thread(target=_prewarm, name="tf_magics-prewarm", daemon=True).start()

    def close(self) -> None:
        """Undo what loading did (``%unload_ext``)."""
        for panel in list(self.panels):
            panel.close()
        if self.settings in self.ip.configurables:
            self.ip.configurables.remove(self.settings)

    # -- conversations --

    def chat_for(self, name: str | None = None) -> Chat:
        """The :class:`Chat` of a named conversation (created on first use)."""
        from .chat import Chat

        name = name or "default"
        chat = self.chats.get(name)
        if chat is None:
            chat = self.chats[name] = Chat(settings=self.settings, name=name, confirm=self._confirm)
        return chat

    def _confirm(self, tool: Tool, arguments: dict[str, Any]) -> bool | None:
        """Ask the person at the notebook before a ``confirm=True`` tool runs.

        ``None`` when no one can answer (a notebook run headless, where input is disabled).
        """
        import json

        from IPython.core.error import StdinNotImplementedError

        shown = json.dumps(arguments, ensure_ascii=False)
        try:
            answer = input(f"Run tool {tool.name}({shown})? [y/N] ")
        except (StdinNotImplementedError, EOFError, RuntimeError):
            return None
        return answer.strip().lower() in ("y", "yes")

    # -- the magic --

    @no_var_expand
    @magic_arguments()
    @argument("-m", "--model", help="Model for this cell.")
    @argument("-t", "--temperature", type=float, help="Sampling temperature (0-2).")
    @argument("--top-p", type=float, help="Nucleus sampling (0-1).")
    @argument("--max-tokens", type=int, help="Cap on the reply length in tokens.")
    @argument("--seed", type=int, help="Sampling seed.")
    @argument("--stop", action="append", help="Stop sequence (repeat for several).")
    @argument("--presence-penalty", type=float, help="-2 to 2.")
    @argument("--frequency-penalty", type=float, help="-2 to 2.")
    @argument("-s", "--system", help="Set the conversation's system prompt (it stays set).")
    @argument("-c", "--conversation", help="Named conversation to use (default: 'default').")
    @argument("--new", action="store_true", help="Start the conversation afresh first.")
    @argument(
        "--no-history",
        action="store_true",
        help="One-off question: the history is neither sent nor changed.",
    )
    @argument("--no-stream", action="store_true", help="Wait for the whole reply.")
    @argument("-o", "--output", metavar="VAR", help="Also store the reply text in VAR.")
    @argument("--tools", metavar="F,G", help="Offer these notebook functions as tools.")
    @argument("--tool-choice", help="auto, none, required, or a tool name to force it.")
    @argument("--max-rounds", type=int, help="Limit of model requests when tools are called.")
    @argument("--base-url", help="Send this cell to another OpenAI-compatible server.")
    @argument(
        "-i",
        "--interpolate",
        action="store_true",
        help="Replace {name} with notebook variables ({{ and }} for braces).",
    )
    @line_cell_magic
    def chat(self, line: str, cell: str | None = None) -> Any:
        """Chat with an OpenAI-compatible model.

        As a cell magic, ``%%chat [flags]`` sends the cell's text as the next user message and
        streams the reply. As a line magic, ``%chat COMMAND`` manages conversations; ``%chat help``
        lists the commands: history, reset, undo, retry, system, models, settings, set, unset,
        save, load, export, tools, trim, usage, conversations, local, panel.
        """
        if cell is None:
            from ._line_commands import run_line_command

            try:
                return run_line_command(self, line)
            finally:
                self.refresh_panels()
        args = _parse_flags(self.chat, line)
        text = cell.strip("\n")
        if not text.strip():
            raise UsageError("The cell is empty: write your message below the %%chat line.")
        if args.interpolate:
            text = interpolate(text, self.ip.user_ns)
        try:
            self.send(text, args)
        finally:
            self.refresh_panels()
        return None

    @line_magic
    def chat_panel(self, line: str) -> Any:
        """Show the control panel: ``%chat_panel [-c NAME]`` (same as ``%chat panel``)."""
        from ._line_commands import run_line_command

        return run_line_command(self, f"panel {line}")

    def refresh_panels(self) -> None:
        """Let open panels show changes made by cells (history, system prompt, usage)."""
        for panel in list(self.panels):
            refresh = getattr(panel, "refresh", None)
            if callable(refresh):
                refresh()

    def send(self, text: str, args: Any, *, retry: bool = False) -> Reply:
        """Run one turn with the live view (shared by ``%%chat`` and ``%chat retry``)."""
        chat = self.chat_for(getattr(args, "conversation", None))
        overrides = _overrides(args)
        chat.settings.resolve(**overrides)  # bad values fail before anything changes
        tools = self._cell_tools(getattr(args, "tools", None))
        if getattr(args, "new", False):
            chat.reset()
        if getattr(args, "system", None) is not None:
            chat.system = args.system
        view = self._view(chat, overrides)
        try:
            if retry:
                reply = chat.retry(
                    on_event=view.handle, on_idle=view.tick, call_wrapper=view.capture, **overrides
                )
            else:
                reply = chat.ask(
                    text,
                    on_event=view.handle,
                    on_idle=view.tick,
                    call_wrapper=view.capture,
                    history=not getattr(args, "no_history", False),
                    tools=tools,
                    tool_choice=getattr(args, "tool_choice", None),
                    **overrides,
                )
        except Exception as error:
            from .errors import TFMagicsError

            if isinstance(error, TFMagicsError):
                failed = getattr(error, "reply", None)
                self.last_reply = failed or self.last_reply
                view.finish(failed, error=error, conversation_usage=chat.conversation.usage)
            raise
        # A one-off question is not part of the conversation: no running total under it.
        one_off = getattr(args, "no_history", False)
        view.finish(reply, conversation_usage=None if one_off else chat.conversation.usage)
        self.last_reply = reply
        output = getattr(args, "output", None)
        if output:
            self.ip.user_ns[output] = reply.text
        return reply

    def _view(self, chat: Chat, overrides: dict[str, Any]) -> Any:
        from .view import IPythonOutput, LiveView, TerminalView

        options = chat.settings.resolve(**overrides)
        if not _in_kernel(self.ip):
            return TerminalView(max_tokens=options.max_tokens)
        return LiveView(
            IPythonOutput(), max_tokens=options.max_tokens, target=options.base_url or ""
        )

    def _cell_tools(self, names: str | None) -> list[Any] | None:
        if not names:
            return None
        tools = []
        for name in (n.strip() for n in names.split(",")):
            if not name:
                continue
            value = self.ip.user_ns.get(name)
            if value is None or not callable(value):
                raise UsageError(f"--tools: no function named {name!r} in the notebook.")
            tools.append(value)
        return tools


def _parse_flags(magic: Any, line: str) -> Any:
    """Parse the ``%%chat`` line with shell-like quoting (``-s "You are terse."``)."""
    import shlex

    try:
        argv = shlex.split(line)
    except ValueError as error:
        raise UsageError(f"%%chat: {error} (check the quotes on the %%chat line).") from None
    return magic.parser.parse_args(argv)


def _overrides(args: Any) -> dict[str, Any]:
    """Settings given on the ``%%chat`` line (``None`` = not given)."""
    return {
        "model": getattr(args, "model", None),
        "temperature": getattr(args, "temperature", None),
        "top_p": getattr(args, "top_p", None),
        "max_tokens": getattr(args, "max_tokens", None),
        "seed": getattr(args, "seed", None),
        "stop": getattr(args, "stop", None),
        "presence_penalty": getattr(args, "presence_penalty", None),
        "frequency_penalty": getattr(args, "frequency_penalty", None),
        "stream": False if getattr(args, "no_stream", False) else None,
        "max_tool_rounds": getattr(args, "max_rounds", None),
        "base_url": getattr(args, "base_url", None),
    }
