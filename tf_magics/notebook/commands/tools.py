"""``%chat tools``: list the tools, add notebook functions, remove them, switch them on or off."""

from __future__ import annotations

from typing import TYPE_CHECKING

from IPython.core.error import UsageError

from .base import Command, CommandParser

if TYPE_CHECKING:
    from tf_magics.notebook.session import NotebookSession

__all__ = ["COMMANDS"]


def _tools_parser() -> CommandParser:
    parser = CommandParser("tools", "List tools, or add/remove/enable/disable notebook functions.")
    parser.add_argument(
        "action", nargs="?", default="list", choices=["list", "add", "remove", "on", "off"]
    )
    parser.add_argument("names", nargs="*")
    return parser


def _tools(session: NotebookSession, argv: list[str]) -> None:
    args = _tools_parser().parse_args(argv)
    registry = session.chat(None).tools
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
            function = session.user_ns.get(name)
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


COMMANDS = {"tools": Command("list/add/remove/on/off tools", _tools_parser, _tools)}
