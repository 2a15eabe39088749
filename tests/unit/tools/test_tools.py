"""Tools: registering, validating arguments, running calls and serializing results."""

from __future__ import annotations

import asyncio
import datetime
import enum
import functools
import json
import math
import pathlib
import subprocess
import sys
import textwrap
import threading
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypedDict

import numpy as np
import pandas as pd
import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tf_magics.errors import (
    ToolArgumentError,
    ToolDefinitionError,
    ToolReplacedWarning,
    ToolSchemaWarning,
)
from tf_magics.tools import Tool, ToolRegistry, default_registry, tool
from tf_magics.tools.execute import run_tool_call
from tf_magics.tools.serialize import NO_RESULT_TEXT, serialize_result
from tf_magics.types import ToolCall


async def call_sync(fn: Callable[[], Any]) -> Any:
    return fn()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def call(name: str, arguments: Any = "", id: str = "call_1") -> ToolCall:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return ToolCall(id=id, name=name, arguments=text)


def run_one(registry: ToolRegistry, name: str, arguments: Any = "", **options: Any) -> Any:
    options.setdefault("call_sync", call_sync)
    return run(run_tool_call(registry, call(name, arguments), **options))


# -- types used in annotations --------------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclass
class Point:
    x: float
    y: float = 0.0


@dataclass
class Segment:
    start: Point
    end: Point
    tags: list[str] = field(default_factory=list)


@dataclass
class Positive:
    value: int

    def __post_init__(self) -> None:
        if self.value <= 0:
            raise ValueError("value must be positive")


class Options(TypedDict, total=False):
    limit: int
    sort: Literal["asc", "desc"]


class Address(pydantic.BaseModel):
    street: str
    number: int


class Tree(pydantic.BaseModel):
    name: str
    children: list[Tree] = []


def make_tool(fn: Callable[..., Any], **options: Any) -> Tool:
    return Tool.from_function(fn, **options)


# -- registering ----------------------------------------------------------------------------------


def test_bare_decorator_registers_and_returns_the_function() -> None:
    @tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    assert add(1, 2) == 3  # still an ordinary function
    registered = default_registry().get("add")
    assert registered is not None
    assert registered.function is add
    assert registered.description == "Add two numbers."
    assert not registered.confirm


def test_decorator_with_options() -> None:
    registry = ToolRegistry()

    @tool(name="remove_file", description="Delete a file.", confirm=True, registry=registry)
    def rm(path: str) -> None:
        pass

    registered = registry.get("remove_file")
    assert registered is not None
    assert registered.confirm
    assert registered.description == "Delete a file."
    assert "rm" not in registry
    assert len(default_registry()) == 0


def test_decorator_uses_an_empty_registry_given_to_it() -> None:
    registry = ToolRegistry()  # empty, so falsy: must still be used
    tool(lambda: 1, name="one", registry=registry)
    assert "one" in registry
    assert "one" not in default_registry()


def test_decorator_refuses_at_registration() -> None:
    with pytest.raises(ToolDefinitionError, match="lambda"):
        tool(lambda: 1)
    assert len(default_registry()) == 0


def test_registry_basics() -> None:
    def a() -> None:
        pass

    def b() -> None:
        pass

    registry = ToolRegistry([a])
    added = registry.add(b, confirm=True)
    assert isinstance(added, Tool)
    assert registry.names() == ["a", "b"]
    assert [t.name for t in registry] == ["a", "b"]
    assert len(registry) == 2
    assert "a" in registry
    assert "zzz" not in registry
    assert registry.get("zzz") is None
    assert registry.remove("a").name == "a"
    assert registry.names() == ["b"]
    with pytest.raises(KeyError, match=r"'a'.*registered: b"):
        registry.remove("a")
    registry.clear()
    assert len(registry) == 0
    assert repr(ToolRegistry([b])) == "ToolRegistry(['b'])"


def test_registry_accepts_a_ready_tool_but_no_options_with_it() -> None:
    def a() -> None:
        pass

    registry = ToolRegistry()
    ready = make_tool(a)
    assert registry.add(ready) is ready
    with pytest.raises(TypeError, match="options"):
        registry.add(ready, confirm=True)


def test_schemas_offer_enabled_tools_only() -> None:
    def a(x: int) -> None:
        """A."""

    def b() -> None:
        """B."""

    registry = ToolRegistry([a, b])
    registry.get("b").enabled = False  # type: ignore[union-attr]
    assert [t.name for t in registry.enabled()] == ["a"]
    assert registry.schemas() == [
        {
            "type": "function",
            "function": {
                "name": "a",
                "description": "A.",
                "parameters": {
                    "type": "object",
                    "properties": {"x": {"type": "integer"}},
                    "required": ["x"],
                    "additionalProperties": False,
                },
            },
        }
    ]


def test_copy_is_independent() -> None:
    def a() -> None:
        pass

    original = ToolRegistry([a])
    duplicate = original.copy()
    duplicate.get("a").enabled = False  # type: ignore[union-attr]
    duplicate.add(lambda: 2, name="two")
    assert original.get("a").enabled  # type: ignore[union-attr]
    assert "two" not in original


def test_rerunning_a_cell_replaces_silently() -> None:
    registry = ToolRegistry()
    source = "def ping() -> str:\n    return 'v{}'\n"
    namespace: dict[str, Any] = {"__name__": "__main__"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for version in (1, 2):
            exec(source.format(version), namespace)
            tool(namespace["ping"], registry=registry)
    assert registry.get("ping").function() == "v2"  # type: ignore[union-attr]
    assert len(registry) == 1


def test_replacing_with_another_function_warns() -> None:
    registry = ToolRegistry()

    def first() -> None:
        pass

    def second() -> None:
        pass

    registry.add(first, name="job")
    with pytest.warns(ToolReplacedWarning, match=r"'job' now runs .*second instead of .*first"):
        registry.add(second, name="job")
    assert registry.get("job").function is second  # type: ignore[union-attr]


def test_tool_repr() -> None:
    def a() -> None:
        pass

    assert repr(make_tool(a, confirm=True)) == "Tool('a', confirm=True)"


# -- validating arguments -------------------------------------------------------------------------


def test_valid_arguments_pass_unchanged() -> None:
    def f(a: str, b: int, c: float, d: bool, e: list[int], g: dict[str, str]) -> None:
        pass

    raw = {"a": "x", "b": 1, "c": 1.5, "d": False, "e": [1, 2], "g": {"k": "v"}}
    notes: list[str] = []
    assert make_tool(f).validate(raw, notes=notes) == raw
    assert notes == []


@pytest.mark.parametrize(
    ("annotation", "raw", "expected", "note"),
    [
        (int, "3", 3, "n: converted '3' to 3"),
        (int, " -12 ", -12, "converted"),
        (int, 3.0, 3, "n: converted 3.0 to 3"),
        (float, "2.5", 2.5, "n: converted '2.5' to 2.5"),
        (float, "1e3", 1000.0, "converted"),
        (bool, "true", True, "n: converted 'true' to True"),
        (bool, "False", False, "converted"),
        (list[int], "[1, 2]", [1, 2], "n: decoded a JSON string into an array"),
        (dict[str, int], '{"a": 1}', {"a": 1}, "decoded a JSON string into an object"),
        (Literal[1, 2], "2", 2, "n: converted '2' to 2"),
        (Color, "GREEN", Color.GREEN, "the name 'GREEN'"),
        (Level, "2", Level.HIGH, "converted '2' to 2"),
    ],
)
def test_safe_coercions_are_made_and_noted(
    annotation: Any, raw: Any, expected: Any, note: str
) -> None:
    def f(n: int) -> None:
        pass

    f.__annotations__ = {"n": annotation}
    notes: list[str] = []
    result = make_tool(f).validate({"n": raw}, notes=notes)
    assert result == {"n": expected}
    assert type(result["n"]) is type(expected)
    assert len(notes) == 1
    assert note in notes[0]


def test_int_for_float_is_not_a_coercion() -> None:
    def f(x: float) -> None:
        pass

    notes: list[str] = []
    result = make_tool(f).validate({"x": 2}, notes=notes)
    assert result == {"x": 2.0}
    assert isinstance(result["x"], float)
    assert notes == []


@pytest.mark.parametrize(
    ("annotation", "raw", "message"),
    [
        (int, "three", 'n: expected an integer, got string "three"'),
        (int, 2.5, "n: expected an integer, got number 2.5"),
        (int, True, "n: expected an integer, got boolean true"),
        (float, "nan?", "expected a number"),
        (bool, 1, "n: expected a boolean, got number 1"),
        (bool, "yes", "expected a boolean"),
        (str, 12, "n: expected a string, got number 12"),
        (str, None, "n: expected a string, got null"),
        (list[int], [1, "x"], 'n[1]: expected an integer, got string "x"'),
        (list[int], 5, "n: expected an array, got number 5"),
        (dict[str, int], [], "n: expected an object, got an array"),
        (dict[str, int], {"a": "b"}, "n.a: expected an integer"),
        (tuple[int, str], [1], "n: expected an array of 2 items, got 1"),
        (set[list[int]], [[1]], "n: the items cannot form a set"),
        (Literal["a", "b"], "c", 'n: expected one of "a", "b", got string "c"'),
        (Literal[1], True, "expected one of 1"),
        (Color, "blue", 'n: expected one of "red", "green"'),
        (int | None, "x", "expected an integer"),
        (int | list[int], "x", "n: expected integer or array, got string"),
        (datetime.date, "yesterday", "expected an ISO 8601 date string"),
        (uuid.UUID, "nope", "expected a UUID string"),
        (Point, {"y": 1}, "n: missing required field 'x'"),
        (Point, {"x": 1, "z": 2}, "n: unknown field(s) 'z' (allowed: x, y)"),
        (Point, "not json", "n: expected an object"),
        (Segment, {"start": {"x": 1}, "end": {"x": "far"}}, "n.end.x: expected a number"),
        (Positive, {"value": -1}, "n: Positive: ValueError: value must be positive"),
        (Options, {"sort": "up"}, 'n.sort: expected one of "asc", "desc"'),
        (Address, {"street": "Main"}, "n.number: Field required"),
        (type(None), 0, "n: expected null"),
    ],
)
def test_invalid_values_are_reported_with_their_path(
    annotation: Any, raw: Any, message: str
) -> None:
    def f(n: int) -> None:
        pass

    f.__annotations__ = {"n": annotation}
    with pytest.raises(ToolArgumentError) as info:
        make_tool(f).validate({"n": raw})
    assert message in str(info.value)


def test_every_problem_is_listed() -> None:
    def f(a: int, b: str, c: bool = False) -> None:
        pass

    with pytest.raises(ToolArgumentError) as info:
        make_tool(f).validate({"a": "x", "d": 1, "e": 2})
    assert info.value.problems == [
        "unknown argument(s) 'd', 'e' (allowed: a, b, c)",
        'a: expected an integer, got string "x"',
        "missing required argument 'b'",
    ]


def test_unknown_arguments_for_a_tool_without_parameters() -> None:
    def f() -> None:
        pass

    with pytest.raises(ToolArgumentError, match="no arguments are accepted"):
        make_tool(f).validate({"x": 1})


def test_arguments_must_be_an_object() -> None:
    def f() -> None:
        pass

    with pytest.raises(ToolArgumentError, match="must be a JSON object, not an array"):
        make_tool(f).validate([1])


def test_omitted_optional_arguments_are_not_passed() -> None:
    def f(a: int, b: int = 5, c: str | None = "keep", d: list[int] | None = None) -> None:
        pass

    assert make_tool(f).validate({"a": 1}) == {"a": 1}


def test_null_for_a_defaulted_non_nullable_argument_means_omitted() -> None:
    def f(a: int = 5, b: int | None = 5) -> None:
        pass

    notes: list[str] = []
    assert make_tool(f).validate({"a": None, "b": None}, notes=notes) == {"b": None}
    assert notes == ["a: null treated as omitted (the default applies)"]


def test_null_for_a_required_non_nullable_argument_is_an_error() -> None:
    def f(a: int) -> None:
        pass

    with pytest.raises(ToolArgumentError, match="a: expected an integer, got null"):
        make_tool(f).validate({"a": None})


def test_objects_are_built() -> None:
    def f(
        seg: Segment,
        options: Options,
        address: Address,
        tree: Tree,
        color: Color,
        level: Level,
        when: datetime.datetime,
        day: datetime.date,
        at: datetime.time,
        path: pathlib.Path,
        key: uuid.UUID,
        unique: frozenset[int],
        pair: tuple[int, str],
        many: tuple[int, ...],
    ) -> None:
        pass

    key = uuid.uuid4()
    result = make_tool(f).validate(
        {
            "seg": {"start": {"x": 1}, "end": {"x": 2, "y": 3}, "tags": ["a"]},
            "options": {"limit": 3},
            "address": {"street": "Main", "number": 4},
            "tree": {"name": "a", "children": [{"name": "b"}]},
            "color": "red",
            "level": 2,
            "when": "2024-05-01T10:30:00Z",
            "day": "2024-05-01",
            "at": "10:30:00",
            "path": "data/file.csv",
            "key": str(key),
            "unique": [1, 2, 2],
            "pair": [1, "a"],
            "many": [1, 2, 3],
        },
    )
    assert result["seg"] == Segment(Point(1.0), Point(2.0, 3.0), ["a"])
    assert result["options"] == {"limit": 3}
    assert result["address"] == Address(street="Main", number=4)
    assert result["tree"].children[0].name == "b"
    assert result["color"] is Color.RED
    assert result["level"] is Level.HIGH
    assert result["when"] == datetime.datetime(2024, 5, 1, 10, 30, tzinfo=datetime.timezone.utc)
    assert result["day"] == datetime.date(2024, 5, 1)
    assert result["at"] == datetime.time(10, 30)
    assert result["path"] == pathlib.Path("data/file.csv")
    assert result["key"] == key
    assert result["unique"] == frozenset({1, 2})
    assert result["pair"] == (1, "a")
    assert result["many"] == (1, 2, 3)


def test_unions_prefer_an_exact_match() -> None:
    def f(a: str | int, b: int | str, c: bool | int) -> None:
        pass

    notes: list[str] = []
    result = make_tool(f).validate({"a": "3", "b": "3", "c": 1}, notes=notes)
    assert result == {"a": "3", "b": "3", "c": 1}
    assert type(result["c"]) is int
    assert notes == []


def test_union_falls_back_to_a_coercion() -> None:
    def f(a: int | list[int]) -> None:
        pass

    notes: list[str] = []
    assert make_tool(f).validate({"a": "7"}, notes=notes) == {"a": 7}
    assert notes == ["a: converted '7' to 7"]


def test_annotated_and_any_and_unannotated_values() -> None:
    def f(a: Annotated[int, "A number"], b: Any, c=None) -> None:
        pass

    with pytest.warns(ToolSchemaWarning):
        described = make_tool(f)
    raw = {"a": 1, "b": {"any": [1, None]}, "c": "anything"}
    assert described.validate(raw) == raw


def test_pydantic_field_default_is_passed_when_omitted() -> None:
    def f(
        a: int = pydantic.Field(3),
        b: list[int] = pydantic.Field(default_factory=list),  # noqa: B008 - what is tested
    ) -> None:
        pass

    assert make_tool(f).validate({}) == {"a": 3, "b": []}


def test_tool_validate_method() -> None:
    def f(a: int) -> None:
        pass

    assert make_tool(f).validate({"a": "1"}) == {"a": 1}


@given(st.integers(), st.text(), st.booleans(), st.floats(allow_nan=False, allow_infinity=False))
def test_valid_scalars_round_trip(n: int, text: str, flag: bool, number: float) -> None:
    def f(n: int, text: str, flag: bool, number: float) -> None:
        pass

    raw = {"n": n, "text": text, "flag": flag, "number": number}
    notes: list[str] = []
    assert make_tool(f).validate(json.loads(json.dumps(raw)), notes=notes) == raw
    assert notes == []


@given(
    st.lists(
        st.builds(
            Point,
            x=st.floats(allow_nan=False, allow_infinity=False),
            y=st.floats(allow_nan=False, allow_infinity=False),
        )
    )
)
def test_dataclasses_round_trip_through_json(points: list[Point]) -> None:
    def f(points: list[Point]) -> None:
        pass

    raw = json.loads(json.dumps({"points": [vars(p) for p in points]}))
    assert make_tool(f).validate(raw) == {"points": points}


# -- running --------------------------------------------------------------------------------------


def registry_with(*functions: Callable[..., Any], **options: Any) -> ToolRegistry:
    registry = ToolRegistry()
    for function in functions:
        registry.add(function, **options)
    return registry


def test_ok_result() -> None:
    def add(a: int, b: int = 10) -> int:
        return a + b

    result = run_one(registry_with(add), "add", {"a": 1})
    assert result.status == "ok"
    assert result.content == "11"
    assert result.value == 11
    assert result.call.name == "add"
    assert result.duration >= 0
    assert result.note is None


def test_defaults_are_not_overridden_when_omitted() -> None:
    seen: dict[str, Any] = {}

    def f(a: int, b: str | None = "default", c: list[int] | None = None) -> None:
        seen.update(a=a, b=b, c=c)

    run_one(registry_with(f), "f", {"a": 1})
    assert seen == {"a": 1, "b": "default", "c": None}


def test_coercion_notes_reach_the_result() -> None:
    def f(n: int) -> int:
        return n

    result = run_one(registry_with(f), "f", {"n": "4"})
    assert result.status == "ok"
    assert result.value == 4
    assert result.note == "n: converted '4' to 4"


def test_empty_and_null_arguments_mean_no_arguments() -> None:
    def f() -> str:
        return "ran"

    registry = registry_with(f)
    assert run_one(registry, "f", "").content == "ran"
    assert run_one(registry, "f", "null").content == "ran"


def test_unknown_tool_is_an_error_result_listing_the_tools() -> None:
    def a() -> None:
        pass

    def b() -> None:
        pass

    registry = registry_with(a, b)
    registry.get("b").enabled = False  # type: ignore[union-attr]
    result = run_one(registry, "nope", {})
    assert result.status == "error"
    assert result.content == "Error: unknown tool 'nope'. Available tools: a."
    disabled = run_one(registry, "b", {})
    assert disabled.status == "error"
    assert disabled.content == (
        "Error: the tool 'b' is switched off; do not call it. Available tools: a."
    )


def test_unknown_tool_in_an_empty_registry() -> None:
    result = run_one(ToolRegistry(), "print", {})
    assert result.content == "Error: unknown tool 'print'. Available tools: (none)."


def test_invalid_json_is_an_error_result_quoting_the_text() -> None:
    def f(a: int) -> None:
        pass

    result = run_one(registry_with(f), "f", '{"a": 1')
    assert result.status == "error"
    assert result.content.startswith("Error: the arguments for 'f' are not valid JSON (")
    assert result.content.endswith('Received: {"a": 1')


def test_long_invalid_json_is_quoted_truncated() -> None:
    def f(a: str) -> None:
        pass

    raw = '{"a": "' + "x" * 5000
    result = run_one(registry_with(f), "f", raw)
    assert len(result.content) < 500
    assert "… [4,807 more characters]" in result.content


def test_arguments_that_are_not_an_object_are_an_error_result() -> None:
    def f(a: int) -> None:
        pass

    result = run_one(registry_with(f), "f", "[1]")
    assert result.status == "error"
    assert "must be a JSON object" in result.content


def test_validation_failure_is_an_error_result() -> None:
    def f(city: str, days: int = 1) -> None:
        pass

    result = run_one(registry_with(f), "f", {"city": 3, "weeks": 2})
    assert result.status == "error"
    assert result.content == (
        "Error: invalid arguments for 'f': unknown argument(s) 'weeks' (allowed: city, days); "
        "city: expected a string, got number 3. "
        "Parameters: city (string, required), days (integer)."
    )


def test_exception_becomes_a_short_error_result_keeping_the_exception() -> None:
    def f() -> None:
        raise ValueError("the city\n  is unknown")

    result = run_one(registry_with(f), "f")
    assert result.status == "error"
    assert result.content == "Error: ValueError: the city is unknown"
    assert isinstance(result.value, ValueError)
    assert "Traceback" not in result.content


def test_exception_without_message() -> None:
    def f() -> None:
        raise RuntimeError

    assert run_one(registry_with(f), "f").content == "Error: RuntimeError"


def test_keyboard_interrupt_propagates() -> None:
    def f() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_one(registry_with(f), "f")


def test_sync_tools_run_through_call_sync_and_async_tools_do_not() -> None:
    used: list[str] = []

    async def recording_call_sync(fn: Callable[[], Any]) -> Any:
        used.append("call_sync")
        return await asyncio.to_thread(fn)

    def sync_tool() -> str:
        return threading.current_thread().name

    async def async_tool() -> str:
        return "async"

    registry = registry_with(sync_tool, async_tool)
    result = run_one(registry, "sync_tool", call_sync=recording_call_sync)
    assert result.content != threading.current_thread().name
    assert used == ["call_sync"]
    assert run_one(registry, "async_tool", call_sync=recording_call_sync).content == "async"
    assert used == ["call_sync"]


def test_async_tool_exception_is_an_error_result() -> None:
    async def f() -> None:
        raise LookupError("missing")

    result = run_one(registry_with(f), "f")
    assert result.status == "error"
    assert result.content == "Error: LookupError: missing"


def test_sync_function_returning_an_awaitable_is_awaited() -> None:
    async def inner() -> int:
        return 5

    def f() -> Any:
        return inner()

    assert run_one(registry_with(f), "f").content == "5"


# confirmation


def test_confirm_tool_is_declined_when_no_one_can_answer() -> None:
    ran: list[bool] = []

    def delete(path: str) -> None:
        ran.append(True)

    result = run_one(registry_with(delete, confirm=True), "delete", {"path": "x"})
    assert result.status == "declined"
    assert "no one could answer" in result.content
    assert "confirm=False" in result.content
    assert "approve" in result.content
    assert ran == []


def test_a_confirm_callback_that_cannot_reach_anyone_declines_with_the_how_to() -> None:
    registry = ToolRegistry()
    ran: list[str] = []

    @tool(confirm=True, registry=registry)
    def wipe(path: str) -> str:
        """Delete a file."""
        ran.append(path)
        return "gone"

    async def call_sync(function: Callable[[], Any]) -> Any:
        return function()

    result = asyncio.run(
        run_tool_call(
            registry,
            ToolCall("c", "wipe", '{"path": "x"}'),
            call_sync=call_sync,
            confirm=lambda _tool, _args: None,
        )
    )
    assert result.status == "declined" and "no one could answer" in result.content
    assert ran == []


def test_confirm_callback_sees_the_decoded_arguments() -> None:
    asked: list[tuple[str, dict[str, Any]]] = []

    def approve(tool: Tool, arguments: dict[str, Any]) -> bool:
        asked.append((tool.name, arguments))
        return True

    def move(point: Point) -> str:
        return "moved"

    registry = registry_with(move, confirm=True)
    result = run_one(registry, "move", {"point": {"x": 1}}, confirm=approve)
    assert result.content == "moved"
    assert asked == [("move", {"point": {"x": 1}})]


def test_user_refusal_is_a_declined_result() -> None:
    def delete(path: str) -> None:
        raise AssertionError("must not run")

    result = run_one(
        registry_with(delete, confirm=True), "delete", {"path": "x"}, confirm=lambda t, a: False
    )
    assert result.status == "declined"
    assert result.content == "Declined by the user: 'delete' was not run."


def test_async_confirm_callback() -> None:
    async def approve(tool: Tool, arguments: dict[str, Any]) -> bool:
        await asyncio.sleep(0)
        return bool(arguments["path"] == "ok")

    def delete(path: str) -> str:
        return "deleted"

    registry = registry_with(delete, confirm=True)
    assert run_one(registry, "delete", {"path": "ok"}, confirm=approve).status == "ok"
    assert run_one(registry, "delete", {"path": "no"}, confirm=approve).status == "declined"


def test_confirm_is_not_asked_for_invalid_calls_or_plain_tools() -> None:
    asked: list[str] = []

    def approve(tool: Tool, arguments: dict[str, Any]) -> bool:
        asked.append(tool.name)
        return True

    def guarded(n: int) -> None:
        pass

    def free() -> None:
        pass

    registry = ToolRegistry()
    registry.add(guarded, confirm=True)
    registry.add(free)
    assert run_one(registry, "guarded", {"n": "x"}, confirm=approve).status == "error"
    assert run_one(registry, "free", {}, confirm=approve).status == "ok"
    assert asked == []


def test_a_failing_confirm_callback_is_an_error_result() -> None:
    def broken(tool: Tool, arguments: dict[str, Any]) -> bool:
        raise RuntimeError("no display")

    def delete() -> None:
        pass

    result = run_one(registry_with(delete, confirm=True), "delete", {}, confirm=broken)
    assert result.status == "error"
    assert result.content == "Error: could not ask the user to confirm: RuntimeError: no display"


# cancellation


def test_cancellation_of_a_single_call_propagates() -> None:
    async def wait_forever() -> None:
        await asyncio.sleep(3600)

    async def main() -> None:
        task = asyncio.ensure_future(
            run_tool_call(registry_with(wait_forever), call("wait_forever"), call_sync=call_sync)
        )
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())


def test_result_is_capped() -> None:
    def big() -> str:
        return "x" * 50

    result = run(
        run_tool_call(registry_with(big), call("big"), call_sync=call_sync, max_result_chars=10)
    )
    assert result.content == "x" * 10 + "\n… [truncated: 50 characters, showing the first 10]"
    assert result.note == "truncated: 50 characters, showing the first 10"
    assert result.value == "x" * 50


# -- serializing results --------------------------------------------------------------------------


class WithLLM:
    def _repr_llm_(self) -> str:
        return "for the model"

    def _repr_markdown_(self) -> str:
        return "*markdown*"


class WithMarkdown:
    def _repr_markdown_(self) -> tuple[str, dict[str, Any]]:
        return "*markdown*", {}


class BrokenLLM:
    def _repr_llm_(self) -> str:
        raise RuntimeError("boom")

    def __repr__(self) -> str:
        return "BrokenLLM()"


class NoRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class Opaque:
    def __repr__(self) -> str:
        return "Opaque()"


class FakeFrame:
    """Duck-types a pandas DataFrame whose to_markdown lacks tabulate."""

    __module__ = "pandas.core.frame"

    def __init__(self, rows: int) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return self.rows

    def head(self, n: int) -> FakeFrame:
        return FakeFrame(min(n, self.rows))

    def to_markdown(self) -> str:
        raise ImportError("Missing optional dependency 'tabulate'.")

    def to_csv(self) -> str:
        return "a\n" + "".join(f"{i}\n" for i in range(self.rows))


FakeFrame.__name__ = "DataFrame"


@dataclass
class Reading:
    city: str
    temps: list[float]
    when: datetime.date


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("plain text", "plain text"),
        ("", ""),
        (None, NO_RESULT_TEXT),
        (True, "true"),
        (3, "3"),
        (2.5, "2.5"),
        ({"a": [1, None]}, '{"a": [1, null]}'),
        ([1, "é"], '[1, "é"]'),
        ((1, 2), "[1, 2]"),
        ({3, 1, 2}, "[1, 2, 3]"),
        (
            Reading("Oslo", [1.5], datetime.date(2024, 1, 2)),
            '{"city": "Oslo", "temps": [1.5], "when": "2024-01-02"}',
        ),
        (Address(street="Main", number=1), '{"street": "Main", "number": 1}'),
        ({"c": Color.RED, "p": pathlib.Path("a")}, '{"c": "red", "p": "a"}'),
        ({"x": Opaque()}, '{"x": "Opaque()"}'),
        ({(1, 2): "tuple key"}, "{(1, 2): 'tuple key'}"),
        (datetime.datetime(2024, 1, 2, 3, 4), "2024-01-02T03:04:00"),
        (np.int64(7), "7"),
        (np.float64(0.5), "0.5"),
        ({"n": np.int32(1), "a": np.arange(3)}, '{"n": 1, "a": [0, 1, 2]}'),
        (WithLLM(), "for the model"),
        (WithMarkdown(), "*markdown*"),
        (BrokenLLM(), "BrokenLLM()"),
        (Opaque(), "Opaque()"),
        (Color.GREEN, "<Color.GREEN: 'green'>"),
    ],
)
def test_serialize_each_kind(value: Any, text: str) -> None:
    assert serialize_result(value) == (text, None)


def test_serialize_survives_a_failing_repr() -> None:
    text, note = serialize_result(NoRepr())
    assert text.startswith(f"<{__name__}.NoRepr object at")
    assert note is None


def test_serialize_numpy_array_uses_numpys_elided_repr() -> None:
    text, _ = serialize_result(np.arange(100_000))
    assert text.startswith("array([    0,     1,     2, ..., 99997, 99998, 99999]")
    assert len(text) < 200


def test_serialize_small_dataframe_as_markdown() -> None:
    frame = pd.DataFrame({"city": ["Oslo", "Rome"], "temp": [3, 18]})
    text, note = serialize_result(frame)
    assert note is None
    assert text.splitlines()[0].replace(" ", "") == "||city|temp|"
    assert "Rome" in text


def test_serialize_long_dataframe_shows_the_first_rows() -> None:
    frame = pd.DataFrame({"n": range(1234)})
    text, note = serialize_result(frame, max_rows=5)
    assert note == "showing 5 of 1,234 rows"
    assert text.endswith("\n(showing 5 of 1,234 rows)")
    assert len(text.splitlines()) == 2 + 5 + 1


def test_serialize_series() -> None:
    text, note = serialize_result(pd.Series([1, 2, 3], name="n"), max_rows=2)
    assert note == "showing 2 of 3 rows"
    assert text == "|    |   n |\n|---:|----:|\n|  0 |   1 |\n|  1 |   2 |\n(showing 2 of 3 rows)"


def test_serialize_dataframe_falls_back_to_csv_without_tabulate() -> None:
    text, note = serialize_result(FakeFrame(100), max_rows=3)
    assert text == "a\n0\n1\n2\n(showing 3 of 100 rows)"
    assert note == "showing 3 of 100 rows"


def test_serialize_caps_long_text_with_a_note() -> None:
    text, note = serialize_result("y" * 123_456)
    assert text == "y" * 20_000 + "\n… [truncated: 123,456 characters, showing the first 20,000]"
    assert note == "truncated: 123,456 characters, showing the first 20,000"


def test_serialize_notes_combine() -> None:
    frame = pd.DataFrame({"text": ["z" * 100] * 10})
    _, note = serialize_result(frame, 50, max_rows=3)
    assert note == "showing 3 of 10 rows; truncated: 572 characters, showing the first 50"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=30,
)


@given(st.dictionaries(st.text(), json_values))
def test_any_json_dict_round_trips(value: dict[str, Any]) -> None:
    text, note = serialize_result(value, max_chars=10**9)
    assert note is None
    assert json.loads(text) == value


@given(st.text(), st.integers(min_value=1, max_value=100))
def test_capped_text_starts_with_the_original(value: str, limit: int) -> None:
    text, note = serialize_result(value, max_chars=limit)
    assert text.startswith(value[:limit])
    assert (note is None) == (len(value) <= limit)
    if note is None:
        assert text == value


def test_float_results_are_json_numbers() -> None:
    assert serialize_result(math.pi)[0] == repr(math.pi)


def test_sync_wrapper_around_a_coroutine_function_runs_through_call_sync() -> None:
    used: list[str] = []

    async def recording_call_sync(fn: Callable[[], Any]) -> Any:
        used.append("call_sync")
        return fn()

    async def fetch() -> str:
        return "fetched"

    @functools.wraps(fetch)
    def wrapper() -> Any:
        return fetch()

    registry = registry_with(wrapper)
    assert not registry.get("fetch").is_async  # type: ignore[union-attr]
    assert run_one(registry, "fetch", call_sync=recording_call_sync).content == "fetched"
    assert used == ["call_sync"]


def test_to_wire_returns_a_copy() -> None:
    def f(x: int) -> None:
        pass

    described = make_tool(f)
    described.to_wire()["function"]["parameters"]["properties"].clear()
    assert described.schema["properties"]


def test_works_without_pydantic_installed() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["pydantic"] = None  # makes "import pydantic" fail
        import asyncio
        from dataclasses import dataclass
        from tf_magics.tools import ToolRegistry
        from tf_magics.tools.execute import run_tool_call
        from tf_magics.types import ToolCall

        @dataclass
        class Point:
            x: float

        def norm(p: Point, scale: int = 1) -> float:
            return abs(p.x) * scale

        async def call_sync(fn):
            return fn()

        registry = ToolRegistry([norm])
        call = ToolCall("1", "norm", '{"p": {"x": -2}, "scale": "3"}')
        result = asyncio.run(run_tool_call(registry, call, call_sync=call_sync))
        assert (result.status, result.content) == ("ok", "6.0"), result
        assert "pydantic" not in sys.modules or sys.modules["pydantic"] is None
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)
