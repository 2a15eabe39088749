"""Callable → JSON schema: every supported type, docstring style and refusal."""

from __future__ import annotations

import datetime
import enum
import functools
import pathlib
import subprocess
import sys
import textwrap
import uuid
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, NewType, Optional

import pydantic
import pytest
from typing_extensions import NotRequired, Required, TypedDict

from tf_magics.errors import ToolDefinitionError, ToolSchemaWarning
from tf_magics.schema.json_schema import type_schema
from tf_magics.tools.describe import FunctionSchema, function_schema

jsonschema = pytest.importorskip("jsonschema")


def params(fn: Any, **options: Any) -> Any:
    return function_schema(fn, **options).parameters


def prop(fn: Any, name: str) -> Any:
    return params(fn)["properties"][name]


def check_valid_schema(schema: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator.check_schema(schema)


# -- types used in annotations (module level so postponed annotations resolve) --------------------


class Color(enum.Enum):
    """A primary colour."""

    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Weird(enum.Enum):
    A = (1, 2)


@dataclass
class Point:
    """A point in the plane.

    Attributes
    ----------
    x : float
        Horizontal position.
    y : float
        Vertical position.
    """

    x: float
    y: float = 0.0


@dataclass
class Tree:
    value: int
    children: list[Tree] = field(default_factory=list)


@dataclass
class Labelled:
    label: Annotated[str, "Shown to people"]
    point: Point


class Options(TypedDict, total=False):
    """Search options."""

    limit: Required[int]
    sort: str
    reverse: NotRequired[bool]


class Movie(TypedDict):
    title: str
    year: NotRequired[int]


class Address(pydantic.BaseModel):
    street: str


class Person(pydantic.BaseModel):
    """A person."""

    name: str
    address: Address


class Category(pydantic.BaseModel):
    name: str
    children: list[Category] = []


# Another model that pydantic also calls "Address".
OtherAddress: Any = pydantic.create_model("Address", zip_code=(str, ...))


class Company(pydantic.BaseModel):
    address: OtherAddress


UserId = NewType("UserId", int)


# -- basics ---------------------------------------------------------------------------------------


def test_scalars_and_required() -> None:
    def f(a: str, b: int, c: float, d: bool, e: None) -> None:
        """Do it."""

    schema = params(f)
    assert schema == {
        "type": "object",
        "properties": {
            "a": {"type": "string"},
            "b": {"type": "integer"},
            "c": {"type": "number"},
            "d": {"type": "boolean"},
            "e": {"type": "null"},
        },
        "required": ["a", "b", "c", "d", "e"],
        "additionalProperties": False,
    }
    check_valid_schema(schema)


def test_to_wire_is_an_openai_tools_entry() -> None:
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        return city

    wire = function_schema(get_weather).to_wire()
    assert wire == {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
                "additionalProperties": False,
            },
        },
    }


def test_no_parameters() -> None:
    def now() -> str:
        return ""

    assert params(now) == {"type": "object", "properties": {}, "additionalProperties": False}
    assert function_schema(now).description == ""


def test_defaults_are_not_required_and_recorded() -> None:
    def f(a: int, b: int = 3, c: str = "x", d: tuple[int, int] = (1, 2), e: object = object()):
        pass

    schema = params(f)
    assert schema["required"] == ["a"]
    assert schema["properties"]["b"] == {"type": "integer", "default": 3}
    assert schema["properties"]["c"]["default"] == "x"
    assert schema["properties"]["d"]["default"] == [1, 2]
    assert "default" not in schema["properties"]["e"]  # not JSON


def test_enum_default_is_written_as_its_value() -> None:
    def f(color: Color = Color.GREEN) -> None:
        pass

    assert prop(f, "color")["default"] == "green"


def test_any_and_object_mean_any_json_value() -> None:
    def f(a: Any, b: object) -> None:
        pass

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        schema = params(f)
    assert schema["properties"] == {"a": {}, "b": {}}


def test_dates_paths_and_uuids_are_strings() -> None:
    def f(
        when: datetime.datetime,
        day: datetime.date,
        at: datetime.time,
        path: pathlib.Path,
        key: uuid.UUID,
    ) -> None:
        pass

    properties = params(f)["properties"]
    assert properties["when"] == {"type": "string", "format": "date-time"}
    assert properties["day"] == {"type": "string", "format": "date"}
    assert properties["at"] == {"type": "string", "format": "time"}
    assert properties["path"] == {"type": "string"}
    assert properties["key"] == {"type": "string", "format": "uuid"}


def test_newtype_is_its_base_type() -> None:
    def f(user: UserId) -> None:
        pass

    assert prop(f, "user") == {"type": "integer"}


# -- containers -----------------------------------------------------------------------------------


def test_lists_sets_and_tuples() -> None:
    def f(
        a: list[int],
        b: list,  # type: ignore[type-arg]
        c: set[str],
        d: frozenset[int],
        e: tuple[int, ...],
        g: tuple[int, str],
        h: Sequence[float],
    ) -> None:
        pass

    properties = params(f)["properties"]
    assert properties["a"] == {"type": "array", "items": {"type": "integer"}}
    assert properties["b"] == {"type": "array"}
    assert properties["c"] == {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
    assert properties["d"]["uniqueItems"] is True
    assert properties["e"] == {"type": "array", "items": {"type": "integer"}}
    assert properties["g"] == {
        "type": "array",
        "prefixItems": [{"type": "integer"}, {"type": "string"}],
        "minItems": 2,
        "maxItems": 2,
    }
    assert properties["h"] == {"type": "array", "items": {"type": "number"}}


def test_dicts_are_objects_with_additional_properties() -> None:
    def f(a: dict[str, int], b: dict, c: Mapping[str, list[str]], d: dict[str, Any]) -> None:  # type: ignore[type-arg]
        pass

    properties = params(f)["properties"]
    assert properties["a"] == {"type": "object", "additionalProperties": {"type": "integer"}}
    assert properties["b"] == {"type": "object"}
    assert properties["c"]["additionalProperties"] == {"type": "array", "items": {"type": "string"}}
    assert properties["d"] == {"type": "object"}


def test_nested_combination_is_valid_json_schema() -> None:
    def f(data: dict[str, list[Point | None]], picks: list[Literal["a", "b"]] | None = None):
        pass

    schema = params(f)
    check_valid_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid({"data": {"k": [{"x": 1.0}, None]}, "picks": ["a"]})
    assert not validator.is_valid({"data": {"k": [{"x": "no"}]}})
    assert not validator.is_valid({"data": {}, "picks": ["c"]})


# -- optional and unions --------------------------------------------------------------------------


def test_optional_is_nullable_not_required_only_with_default() -> None:
    def f(a: Optional[int], b: str | None = None) -> None:  # noqa: UP045 - the old spelling
        pass

    schema = params(f)
    assert schema["properties"]["a"] == {"type": ["integer", "null"]}
    assert schema["properties"]["b"] == {"type": ["string", "null"], "default": None}
    assert schema["required"] == ["a"]


def test_default_none_makes_the_parameter_nullable() -> None:
    def f(a: int = None) -> None:  # type: ignore[assignment]  # noqa: RUF013 - on purpose
        pass

    assert prop(f, "a") == {"type": ["integer", "null"], "default": None}


def test_nullable_complex_types_use_anyof() -> None:
    def f(p: Point | None, items: list[int] | None, c: Color | None) -> None:
        pass

    properties = params(f)["properties"]
    assert properties["p"]["anyOf"][1] == {"type": "null"}
    assert properties["p"]["anyOf"][0]["type"] == "object"
    assert properties["p"]["description"] == "A point in the plane."
    assert properties["items"] == {
        "anyOf": [{"type": "array", "items": {"type": "integer"}}, {"type": "null"}]
    }
    assert properties["c"]["anyOf"][1] == {"type": "null"}


def test_unions_are_anyof() -> None:
    def f(a: int | str, b: int | str | None) -> None:
        pass

    properties = params(f)["properties"]
    assert properties["a"] == {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert properties["b"] == {"anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}]}


# -- enums and literals ---------------------------------------------------------------------------


def test_literal_is_an_enum() -> None:
    def f(a: Literal["x", "y"], b: Literal[1, 2], c: Literal["auto", 0], d: Literal["a", None]):
        pass

    properties = params(f)["properties"]
    assert properties["a"] == {"type": "string", "enum": ["x", "y"]}
    assert properties["b"] == {"type": "integer", "enum": [1, 2]}
    assert properties["c"] == {"type": ["string", "integer"], "enum": ["auto", 0]}
    assert properties["d"] == {"type": ["string", "null"], "enum": ["a", None]}


def test_enum_classes_list_their_values() -> None:
    def f(color: Color, level: Level) -> None:
        pass

    properties = params(f)["properties"]
    assert properties["color"] == {
        "type": "string",
        "enum": ["red", "green"],
        "description": "A primary colour.",
    }
    assert properties["level"] == {"type": "integer", "enum": [1, 2]}


# -- objects --------------------------------------------------------------------------------------


def test_dataclass_is_a_nested_object_with_docstring_descriptions() -> None:
    def f(point: Point) -> None:
        pass

    assert prop(f, "point") == {
        "type": "object",
        "properties": {
            "x": {"type": "number", "description": "Horizontal position."},
            "y": {"type": "number", "description": "Vertical position.", "default": 0.0},
        },
        "required": ["x"],
        "additionalProperties": False,
        "description": "A point in the plane.",
    }


def test_dataclass_field_annotated_description_and_nesting() -> None:
    def f(item: Labelled) -> None:
        pass

    schema = prop(f, "item")
    assert schema["properties"]["label"] == {"type": "string", "description": "Shown to people"}
    assert schema["properties"]["point"]["type"] == "object"
    assert "description" not in schema  # the generated dataclass docstring is not a description


def test_recursive_dataclass_uses_defs() -> None:
    def f(tree: Tree) -> None:
        pass

    schema = params(f)
    assert schema["properties"]["tree"] == {"$ref": "#/$defs/Tree"}
    assert schema["$defs"]["Tree"]["properties"]["children"]["items"] == {"$ref": "#/$defs/Tree"}
    check_valid_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid({"tree": {"value": 1, "children": [{"value": 2}]}})
    assert not validator.is_valid({"tree": {"value": 1, "children": [{"value": "x"}]}})


def test_typeddict_required_keys_with_postponed_annotations() -> None:
    def f(options: Options, movie: Movie) -> None:
        pass

    properties = params(f)["properties"]
    assert properties["options"] == {
        "type": "object",
        "properties": {
            "limit": {"type": "integer"},
            "sort": {"type": "string"},
            "reverse": {"type": "boolean"},
        },
        "required": ["limit"],
        "additionalProperties": False,
        "description": "Search options.",
    }
    assert properties["movie"]["required"] == ["title"]


def test_pydantic_model_defs_are_hoisted_and_valid() -> None:
    def f(person: Person) -> None:
        pass

    schema = params(f)
    person = schema["properties"]["person"]
    assert person["properties"]["address"] == {"$ref": "#/$defs/Address"}
    assert schema["$defs"]["Address"]["properties"]["street"]["type"] == "string"
    assert person["description"] == "A person."
    check_valid_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid({"person": {"name": "Ada", "address": {"street": "Main"}}})
    assert not validator.is_valid({"person": {"name": "Ada", "address": {}}})


def test_pydantic_defs_with_clashing_names_are_renamed() -> None:
    def f(person: Person, company: Company) -> None:
        pass

    schema = params(f)
    refs = {
        schema["properties"]["person"]["properties"]["address"]["$ref"],
        schema["properties"]["company"]["properties"]["address"]["$ref"],
    }
    assert refs == {"#/$defs/Address", "#/$defs/Address_2"}
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid(
        {
            "person": {"name": "A", "address": {"street": "s"}},
            "company": {"address": {"zip_code": "1"}},
        }
    )
    assert not validator.is_valid(
        {
            "person": {"name": "A", "address": {"zip_code": "1"}},
            "company": {"address": {"street": "s"}},
        }
    )


def test_recursive_pydantic_model() -> None:
    def f(category: Category, other: Category | None = None) -> None:
        pass

    schema = params(f)
    check_valid_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid({"category": {"name": "a", "children": [{"name": "b"}]}})
    assert not validator.is_valid({"category": {"name": "a", "children": [{}]}})
    assert list(schema["$defs"]) == ["Category"]


# -- descriptions ---------------------------------------------------------------------------------


def google(city: str, days: int = 1) -> None:
    """Forecast for a city.

    Uses the public weather service.

    Args:
        city (str): The city name,
            for example "Paris".
        days: How many days ahead.

    Returns:
        Nothing.
    """


def numpy_style(city: str, days: int = 1) -> None:
    """Forecast for a city.

    Uses the public weather service.

    Parameters
    ----------
    city : str
        The city name,
        for example "Paris".
    days
        How many days ahead.
    """


def rest(city: str, days: int = 1) -> None:
    """Forecast for a city.

    Uses the public weather service.

    :param city: The city name,
        for example "Paris".
    :param int days: How many days ahead.
    :returns: nothing
    """


def epydoc(city: str, days: int = 1) -> None:
    """Forecast for a city.

    Uses the public weather service.

    @param city: The city name,
        for example "Paris".
    @param days: How many days ahead.
    """


@pytest.mark.parametrize("fn", [google, numpy_style, rest, epydoc])
def test_docstring_styles(fn: Any) -> None:
    described = function_schema(fn)
    assert described.description == "Forecast for a city.\n\nUses the public weather service."
    properties = described.parameters["properties"]
    assert properties["city"]["description"] == 'The city name, for example "Paris".'
    assert properties["days"]["description"] == "How many days ahead."


def test_annotated_description_wins_over_docstring() -> None:
    def f(
        city: Annotated[str, "From Annotated"],
        n: Annotated[int, pydantic.Field(description="From Field")],
    ):
        """Do it.

        Args:
            city: From the docstring.
            n: From the docstring too.
        """

    properties = params(f)["properties"]
    assert properties["city"]["description"] == "From Annotated"
    assert properties["n"]["description"] == "From Field"


def test_explicit_description_wins_over_docstring() -> None:
    def f() -> None:
        """From the docstring."""

    assert function_schema(f, description="Given").description == "Given"


def test_parameter_description_overrides_the_types_own() -> None:
    def f(point: Point) -> None:
        """Do it.

        Args:
            point: Where to go.
        """

    assert prop(f, "point")["description"] == "Where to go."


def test_pydantic_field_as_default() -> None:
    def f(
        a: int = pydantic.Field(3, description="A number"),
        b: list[int] = pydantic.Field(default_factory=list),  # noqa: B008 - what is tested
        c: str = pydantic.Field(description="Required"),
    ) -> None:
        pass

    described = function_schema(f)
    assert described.parameters["properties"]["a"] == {
        "type": "integer",
        "description": "A number",
        "default": 3,
    }
    assert described.parameters["required"] == ["c"]
    a, b, _ = described.fields
    assert a.omitted is not None
    assert a.omitted() == 3
    assert b.omitted is not None
    assert b.omitted() == []


def test_unparsable_docstring_is_kept_whole() -> None:
    def f(x: int) -> None:
        """Summary.

        :param x: first
        :raises: broken: : :
        """

    assert function_schema(f).description.startswith("Summary.")


# -- callables ------------------------------------------------------------------------------------


class Calculator:
    factor: int = 2

    def scale(self, value: float) -> float:
        """Scale a value.

        Args:
            value: The value.
        """
        return value * self.factor

    async def ascale(self, value: float) -> float:
        return value * self.factor


class Greeter:
    """Say hello."""

    def __call__(self, name: str) -> str:
        return f"hello {name}"


def test_bound_method_skips_self() -> None:
    described = function_schema(Calculator().scale)
    assert described.name == "scale"
    assert described.description == "Scale a value."
    assert list(described.parameters["properties"]) == ["value"]
    assert described.parameters["properties"]["value"]["description"] == "The value."


def test_async_functions_and_methods_are_detected() -> None:
    async def fetch(url: str) -> str:
        return url

    def plain() -> None:
        pass

    assert function_schema(fetch).is_async
    assert function_schema(Calculator().ascale).is_async
    assert function_schema(functools.partial(fetch, "x"), name="fetch_x").is_async
    assert not function_schema(plain).is_async


def test_partial_with_a_name_hides_bound_arguments() -> None:
    def convert(amount: float, currency: str, rounding: int = 2) -> float:
        """Convert money."""
        return amount

    described = function_schema(functools.partial(convert, currency="EUR"), name="to_euro")
    assert described.name == "to_euro"
    assert described.description == "Convert money."
    assert list(described.parameters["properties"]) == ["amount", "rounding"]


def test_callable_object_needs_nothing_but_a_name() -> None:
    described = function_schema(Greeter(), name="greet")
    assert described.description == "Say hello."
    assert list(described.parameters["properties"]) == ["name"]


def test_lambda_with_a_name_is_allowed() -> None:
    with pytest.warns(ToolSchemaWarning):
        described = function_schema(lambda x: x, name="identity")
    assert described.name == "identity"


def test_names_with_hyphens_and_digits_are_allowed() -> None:
    def f() -> None:
        pass

    assert function_schema(f, name="get-weather_2").name == "get-weather_2"


def test_postponed_annotations_in_a_notebook_main_namespace() -> None:
    source = textwrap.dedent(
        '''
        from __future__ import annotations
        from dataclasses import dataclass

        @dataclass
        class Box:
            width: int

        def pack(box: Box, label: str | None = None) -> str:
            """Pack a box."""
            return label or ""
        '''
    )
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(source, "<cell>", "exec"), namespace)
    schema = params(namespace["pack"])
    assert schema["properties"]["box"]["properties"] == {"width": {"type": "integer"}}
    assert schema["properties"]["label"] == {"type": ["string", "null"], "default": None}


def test_type_schema_for_one_annotation() -> None:
    assert type_schema(list[int]) == {"type": "array", "items": {"type": "integer"}}
    assert type_schema(Tree)["$ref"] == "#/$defs/Tree"
    assert "Tree" in type_schema(Tree)["$defs"]
    with pytest.raises(ToolDefinitionError, match="bytes"):
        type_schema(bytes)


def test_function_schema_is_a_value() -> None:
    def f(x: int) -> None:
        pass

    described = function_schema(f)
    assert isinstance(described, FunctionSchema)
    wire = described.to_wire()
    wire["function"]["parameters"]["properties"].clear()
    assert described.parameters["properties"]  # to_wire returns a copy


# -- warnings -------------------------------------------------------------------------------------


def test_unannotated_parameter_warns_and_accepts_any_json() -> None:
    def f(a, b: int = 1):
        pass

    with pytest.warns(ToolSchemaWarning, match=r"'f'.*'a'.*no type annotation") as record:
        schema = params(f)
    assert schema["properties"]["a"] == {}
    assert schema["required"] == ["a"]
    assert record[0].filename == __file__  # points at the caller, not at tf_magics


def test_unannotated_parameter_with_default_keeps_it() -> None:
    def f(a=3):
        pass

    with pytest.warns(ToolSchemaWarning):
        assert prop(f, "a") == {"default": 3}


# -- refusals -------------------------------------------------------------------------------------


def test_refuses_lambda_without_name() -> None:
    with pytest.raises(ToolDefinitionError, match=r"lambda.*name="):
        function_schema(lambda: None)


def test_refuses_partial_without_name() -> None:
    def f(a: int, b: int) -> None:
        pass

    with pytest.raises(ToolDefinitionError, match=r"partial of 'f'.*name="):
        function_schema(functools.partial(f, 1))


def test_refuses_var_positional() -> None:
    def f(*items: int) -> None:
        pass

    with pytest.raises(ToolDefinitionError, match=r"'f'.*\*items.*explicitly"):
        function_schema(f)


def test_refuses_var_keyword() -> None:
    def f(a: int, **options: Any) -> None:
        pass

    with pytest.raises(ToolDefinitionError, match=r"\*\*options.*dict\[str, \.\.\.\]"):
        function_schema(f)


def test_refuses_positional_only() -> None:
    def f(a: int, /, b: int) -> None:
        pass

    with pytest.raises(ToolDefinitionError, match=r"'a' is positional-only.*'/'"):
        function_schema(f)


def test_refuses_builtin_positional_only_functions() -> None:
    with pytest.raises(ToolDefinitionError, match=r"positional-only|signature"):
        function_schema(len)


@pytest.mark.parametrize(
    ("annotation", "shown"),
    [
        (bytes, "bytes"),
        (complex, "complex"),
        (list[bytes], r"list\[bytes\].*because of bytes"),
        (dict[int, str], r"dict\[int, str\].*keys are strings"),
        (Literal[Color.RED], "not a JSON value"),
        (Weird, "not a JSON value"),
        (Optional[set[complex]], "because of complex"),  # noqa: UP045
    ],
)
def test_refuses_unsupported_types_naming_parameter_and_type(annotation: Any, shown: str) -> None:
    def f(value: int) -> None:
        pass

    f.__annotations__ = {"value": annotation}
    with pytest.raises(
        ToolDefinitionError, match=rf"'f': parameter 'value' has type .*{shown}"
    ) as info:
        function_schema(f)
    assert "Any" in str(info.value)  # the hint names what works


def test_refuses_unsupported_custom_class() -> None:
    class Secret:
        pass

    def f(secret: Secret) -> None:
        pass

    f.__annotations__ = {"secret": Secret}
    with pytest.raises(ToolDefinitionError, match=r"parameter 'secret' has type .*Secret"):
        function_schema(f)


@pytest.mark.parametrize("name", ["", "has space", "x" * 65, "größe", "a.b", "ok\n"])
def test_refuses_invalid_names(name: str) -> None:
    def f() -> None:
        pass

    with pytest.raises(ToolDefinitionError, match="not a valid tool name"):
        function_schema(f, name=name)


def test_refuses_a_function_name_that_is_not_a_valid_tool_name() -> None:
    namespace: dict[str, Any] = {}
    exec("def größe() -> None: pass", namespace)
    with pytest.raises(ToolDefinitionError, match=r"'größe'.*name="):
        function_schema(namespace["größe"])


def test_refuses_unresolvable_annotations() -> None:
    def f(x: NotDefinedAnywhere) -> None:  # type: ignore[name-defined]  # noqa: F821
        pass

    with pytest.raises(ToolDefinitionError, match=r"'f'.*NotDefinedAnywhere.*top level"):
        function_schema(f)


def test_refuses_classes_and_generators() -> None:
    def numbers(n: int) -> Any:
        yield from range(n)

    with pytest.raises(ToolDefinitionError, match="class"):
        function_schema(Point)
    with pytest.raises(ToolDefinitionError, match="generator"):
        function_schema(numbers)


def test_refuses_objects_that_are_not_callable() -> None:
    with pytest.raises(ToolDefinitionError, match="not callable"):
        function_schema(42)  # type: ignore[arg-type]


def test_importing_the_tools_modules_imports_neither_pydantic_nor_pandas() -> None:
    code = (
        "import sys, tf_magics.tools.describe, tf_magics.tools.execute, tf_magics.schema\n"
        "heavy = [m for m in ('pydantic', 'pandas', 'numpy') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
