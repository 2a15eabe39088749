"""The flags of a ``%%chat`` cell (and of ``%chat retry``), generated from the options table.

Request settings get their flags from :data:`tf_magics.options.OPTIONS` (``flags``), so a new
sampling parameter shows up here without a change. What a cell asks for comes out of the parser
as a typed :class:`CellRequest`: the per-cell setting overrides, and the cell's own switches
(conversation, tools, output variable...).
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument

from tf_magics.options import OPTIONS, Option

__all__ = ["CellRequest", "CommandParser", "option_arguments", "parse_cell_line", "request_from"]

F = TypeVar("F", bound=Callable[..., Any])

#: The flags a ``%%chat`` cell has besides the request options: (flags, argparse keywords).
CELL_FLAGS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (("-s", "--system"), {"help": "Set the conversation's system prompt (it stays set)."}),
    (("-c", "--conversation"), {"help": "Named conversation to use (default: 'default')."}),
    (("--new",), {"action": "store_true", "help": "Start the conversation afresh first."}),
    (
        ("--no-history",),
        {
            "action": "store_true",
            "help": "One-off question: the history is neither sent nor changed.",
        },
    ),
    (("-o", "--output"), {"metavar": "VAR", "help": "Also store the reply text in VAR."}),
    (("--tools",), {"metavar": "F,G", "help": "Offer these notebook functions as tools."}),
    (("--tool-choice",), {"help": "auto, none, required, or a tool name to force it."}),
    (
        ("-i", "--interpolate"),
        {
            "action": "store_true",
            "help": "Replace {name} with notebook variables ({{ and }} for braces).",
        },
    ),
    (
        ("--schema",),
        {
            "metavar": "NAME",
            "help": "Ask for JSON that fits NAME (a class, list[Class] or a JSON-schema dict "
            "of the notebook); -o VAR then receives the object.",
        },
    ),
    (
        ("--map",),
        {
            "metavar": "DATA",
            "help": "Send the cell as a template once per row of DATA (a DataFrame, a list of "
            "dicts or of strings), {column} filled from the row; -o VAR receives the result.",
        },
    ),
    (
        ("--concurrency",),
        {"type": int, "metavar": "N", "help": "With --map: at most N requests at once (8)."},
    ),
    (
        ("--rpm",),
        {"type": float, "metavar": "N", "help": "With --map: at most N requests per minute."},
    ),
    (
        ("--batch",),
        {
            "action": "store_true",
            "help": "With --map: send the rows through the provider's Batch API (about half "
            "the price, within a day) and wait; the job is saved (%%chat batch finds it again).",
        },
    ),
    (
        ("--on-error",),
        {
            "choices": ("record", "raise"),
            "help": "With --map: record a failed row's error and go on (default), or stop.",
        },
    ),
    (
        ("--with",),
        {
            "dest": "attach",
            "metavar": "A,B",
            "help": "Attach notebook values: DataFrames, arrays, figures, images, files (Path), "
            "functions (NAME:source for their code), 'error' for the last exception.",
        },
    ),
    (
        ("--dry-run",),
        {
            "action": "store_true",
            "help": "Show the exact request without sending it (the history is not changed).",
        },
    ),
    (
        ("--code",),
        {
            "nargs": "?",
            "const": "all",
            "metavar": "N",
            "help": "Put the reply's code blocks (or only the Nth) into a new cell below; "
            "nothing is run.",
        },
    ),
    (
        ("--compare",),
        {
            "metavar": "M1,M2",
            # argparse formats help with %: "%%" shows one.
            "help": "Ask these models at once and show the replies side by side (none is kept: "
            "%%chat keep N). A comma list of temperatures (-t 0,0.7,1.4) compares too.",
        },
    ),
)


@dataclass(frozen=True)
class CellRequest:
    """What one ``%%chat`` cell (or ``%chat retry``) asks for, parsed from its line.

    Attributes
    ----------
    overrides
        Settings for this cell only, by option name (only those given).
    conversation
        The named conversation (``None``: the default one).
    """

    overrides: dict[str, Any] = field(default_factory=dict)
    conversation: str | None = None
    system: str | None = None
    new: bool = False
    no_history: bool = False
    output: str | None = None
    tools: str | None = None
    tool_choice: str | None = None
    interpolate: bool = False
    schema: str | None = None
    map: str | None = None
    concurrency: int | None = None
    rpm: float | None = None
    on_error: str | None = None
    batch: bool = False
    attach: str | None = None
    dry_run: bool = False
    code: str | None = None
    compare: str | None = None
    #: Settings given as comma lists (``-t 0,0.7``): a comparison of their values.
    variants: dict[str, list[Any]] = field(default_factory=dict)

    def check_map_flags(self) -> None:
        """Refuse the flags of ``--map`` on a cell without it.

        Raises
        ------
        UsageError
            Naming the flags given in vain.
        """
        if self.map is not None:
            return
        given = [
            flag
            for flag, value in (
                ("--batch", self.batch),
                ("--concurrency", self.concurrency),
                ("--rpm", self.rpm),
                ("--on-error", self.on_error),
            )
            if value is not None and value is not False
        ]
        if given:
            raise UsageError(
                f"%%chat: {', '.join(given)} only apply with --map DATA (one request per row)."
            )

    def comparison(self) -> list[dict[str, Any]]:
        """The variants to compare, one dict of settings each (empty: not a comparison).

        ``--compare A,B`` varies the model and a comma list varies its setting; several give
        every combination, models first.
        """
        dimensions = dict(self.variants)
        if self.compare is not None:
            models = [m.strip() for m in self.compare.split(",") if m.strip()]
            dimensions = {"model": models, **dimensions}
        combos: list[dict[str, Any]] = [{}] if dimensions else []
        for name, values in dimensions.items():
            combos = [{**combo, name: value} for combo in combos for value in values]
        return combos


def _dest(spec: Option) -> str:
    return spec.name


def _argument_for(spec: Option) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The argparse spelling and keywords of one option's flag."""
    help_text = spec.help
    if spec.range_text() and spec.kind in ("float", "int"):
        help_text = f"{help_text} ({spec.range_text()})."
    keywords: dict[str, Any] = {"dest": _dest(spec), "help": help_text, "default": None}
    if spec.flag_value is not None:
        keywords.update(action="store_const", const=spec.flag_value)
    elif spec.kind == "strings":
        keywords.update(action="append", metavar=spec.name.upper())
    elif spec.kind in ("float", "int") and spec.wire:
        keywords.update(type=_numbers(spec.kind), metavar="X[,Y…]")
    elif spec.kind in ("float", "int"):
        keywords["type"] = float if spec.kind == "float" else int
    return spec.flags, keywords


def _numbers(kind: str) -> Callable[[str], Any]:
    """An argparse type: one number, or a comma list of them (``0,0.7,1.4``: a comparison)."""
    convert: Callable[[str], Any] = float if kind == "float" else int

    def number(text: str) -> Any:
        values = [convert(item) for item in text.split(",") if item.strip()]
        if not values:
            raise ValueError(text)
        return values if "," in text else values[0]

    number.__name__ = "number" if kind == "float" else "whole number"  # argparse's error names it
    return number


def option_arguments(function: F) -> F:
    """Decorate a magic with one ``@argument`` per option that has flags (table order)."""
    for spec in reversed([s for s in OPTIONS if s.flags]):
        flags, keywords = _argument_for(spec)
        function = argument(*flags, **keywords)(function)
    return function


def cell_arguments(function: F) -> F:
    """Decorate a magic with the cell's own flags (conversation, tools, output...)."""
    for flags, keywords in reversed(CELL_FLAGS):
        function = argument(*flags, **keywords)(function)
    return function


def request_from(namespace: argparse.Namespace) -> CellRequest:
    """The typed request in a parsed namespace (options given, then the cell's own flags)."""
    values = vars(namespace)
    given = {
        spec.name: values[_dest(spec)]
        for spec in OPTIONS
        if spec.flags and values.get(_dest(spec)) is not None
    }
    # A comma list of a number (-t 0,0.7) asks for a comparison of its values.
    variants = {
        spec.name: given.pop(spec.name)
        for spec in OPTIONS
        if spec.kind in ("float", "int") and isinstance(given.get(spec.name), list)
    }
    own = {name: values[name] for name in CellRequest.__dataclass_fields__ if name in values}
    own.pop("overrides", None)
    own.pop("variants", None)
    return CellRequest(overrides=given, variants=variants, **own)


def parse_cell_line(parser: argparse.ArgumentParser, line: str, prog: str) -> CellRequest:
    """Parse a magic's line with shell-like quoting (``-s "You are terse."``).

    Raises
    ------
    UsageError
        For unbalanced quotes or unknown flags, in one line.
    """
    try:
        argv = shlex.split(line)
    except ValueError as error:
        raise UsageError(f"{prog}: {error} (check the quotes on the {prog} line).") from None
    return request_from(parser.parse_args(argv))


class CommandParser(argparse.ArgumentParser):
    """argparse for a ``%chat`` command that reports mistakes as one-line UsageErrors."""

    def __init__(self, command: str, description: str) -> None:
        super().__init__(prog=f"%chat {command}", description=description, add_help=False)

    def error(self, message: str) -> NoReturn:
        """Raise a one-line :class:`UsageError` instead of exiting."""
        raise UsageError(f"{self.prog}: {message}. See `%chat help {self.prog.split()[-1]}`.")

    def add_options(self) -> CommandParser:
        """Add every option's flag (as on a ``%%chat`` line); returns the parser."""
        for spec in OPTIONS:
            if spec.flags:
                flags, keywords = _argument_for(spec)
                self.add_argument(*flags, **keywords)
        return self
