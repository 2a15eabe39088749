"""What a structured reply is asked to be, and how a reply is read back: ResponseSchema."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tf_magics.errors import ConfigurationError, ValidationError
from tf_magics.schema import ResponseSchema, validate_json
from tf_magics.schema.response import decode_json, is_strict_schema


class Mood(enum.Enum):
    HAPPY = "happy"
    SAD = "sad"


@dataclass
class Review:
    """A product review, read.

    Args:
        label: The sentiment.
        stars: From 1 to 5.
    """

    label: Literal["pos", "neg"]
    stars: int


@dataclass
class Loose:
    name: str
    note: str = "none"


class Point(TypedDict):
    x: float
    y: float


def problems(schema: ResponseSchema, text: str) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        schema.parse(text)
    return caught.value.problems


# -- building --


def test_a_dataclass_is_sent_as_an_object_schema_and_read_back_as_an_instance() -> None:
    schema = ResponseSchema.of(Review)
    assert schema.name == "Review"
    assert schema.wrapper is None and schema.fields == ("label", "stars")
    assert schema.schema["type"] == "object"
    assert schema.schema["properties"]["label"] == {
        "type": "string",
        "enum": ["pos", "neg"],
        "description": "The sentiment.",
    }
    assert schema.schema["required"] == ["label", "stars"]
    assert schema.strict is True
    assert schema.parse('{"label": "pos", "stars": 4}') == Review("pos", 4)


def test_a_list_is_wrapped_in_an_object_and_unwrapped_on_the_way_back() -> None:
    schema = ResponseSchema.of(list[Review])
    assert schema.name == "Review_list" and schema.wrapper == "items"
    assert schema.schema["type"] == "object"
    assert schema.schema["properties"]["items"]["type"] == "array"
    assert schema.schema["required"] == ["items"] and schema.strict
    value = schema.parse('{"items": [{"label": "neg", "stars": 1}]}')
    assert value == [Review("neg", 1)]
    # A server that ignored the schema may send the bare list: accepted, and checked.
    assert schema.parse('[{"label": "pos", "stars": 5}]') == [Review("pos", 5)]


def test_a_scalar_schema_is_wrapped_as_value() -> None:
    schema = ResponseSchema.of(Mood)
    assert schema.wrapper == "value"
    assert schema.parse('{"value": "sad"}') is Mood.SAD
    assert problems(schema, '{"value": "angry"}') == [
        'value: expected one of "happy", "sad", got string "angry"'
    ]


def test_typeddict_and_pydantic_models() -> None:
    pydantic = pytest.importorskip("pydantic")

    class Person(pydantic.BaseModel):  # type: ignore[name-defined,misc]
        name: str
        age: int = 0

    point = ResponseSchema.of(Point)
    assert point.parse('{"x": 1, "y": 2.5}') == {"x": 1.0, "y": 2.5}
    assert point.fields == ("x", "y")
    person = ResponseSchema.of(Person)
    assert person.fields == ("name", "age")
    assert person.strict is False  # a default, and no additionalProperties: false
    value = person.parse('{"name": "Ada"}')
    assert isinstance(value, Person) and value.name == "Ada" and value.age == 0
    assert any("age" in p for p in problems(person, '{"name": "Ada", "age": "old"}'))


def test_strict_only_when_every_property_is_required_and_no_other_is_allowed() -> None:
    assert ResponseSchema.of(Loose).strict is False  # "note" has a default
    assert is_strict_schema({"type": "object", "properties": {}, "additionalProperties": False})
    nested_loose = {
        "type": "object",
        "properties": {"inner": {"type": "object", "properties": {"a": {"type": "string"}}}},
        "required": ["inner"],
        "additionalProperties": False,
    }
    assert is_strict_schema(nested_loose) is False
    in_defs = {
        "type": "object",
        "properties": {"a": {"$ref": "#/$defs/A"}},
        "required": ["a"],
        "additionalProperties": False,
        "$defs": {"A": {"type": "object", "properties": {"b": {"type": "integer"}}}},
    }
    assert is_strict_schema(in_defs) is False


def test_a_json_schema_dict_is_sent_as_it_is_and_read_back_as_a_dict() -> None:
    source = {
        "title": "Verdict!",
        "type": "object",
        "properties": {"ok": {"type": "boolean"}, "why": {"type": "string"}},
        "required": ["ok"],
    }
    schema = ResponseSchema.of(source)
    assert schema.name == "Verdict" and schema.schema == source and schema.annotation is None
    assert schema.fields == ("ok", "why") and schema.strict is False
    assert schema.parse('{"ok": true}') == {"ok": True}
    assert problems(schema, '{"why": 3}') == [
        "missing required field 'ok'",
        "why: expected a string, got number 3",
    ]


def test_an_array_json_schema_is_wrapped() -> None:
    schema = ResponseSchema.of({"type": "array", "items": {"type": "integer"}})
    assert schema.wrapper == "items" and schema.schema["properties"]["items"]["type"] == "array"
    assert schema.parse('{"items": [1, 2]}') == [1, 2]
    assert problems(schema, '{"items": [1, "2"]}') == [
        'items[1]: expected an integer, got string "2"'
    ]


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("Review", "not the string 'Review'"),
        (object(), "not <object object"),
        (3, "not 3"),
        (set[complex], "cannot be described as JSON"),
        ({"type": "object", "default": float("nan")}, "JSON values only"),
    ],
)
def test_what_cannot_be_a_schema_is_refused_in_one_line(spec: Any, words: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ResponseSchema.of(spec)
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)


# -- reading replies --


def test_every_problem_is_listed_with_its_place() -> None:
    schema = ResponseSchema.of(list[Review])
    assert problems(schema, '{"items": [{"label": "meh", "stars": "x"}, {"label": "pos"}]}') == [
        'items[0].label: expected one of "pos", "neg", got string "meh"',
        'items[0].stars: expected an integer, got string "x"',
        "items[1]: missing required field 'stars'",
    ]


@pytest.mark.parametrize(
    "text",
    [
        '{"label": "pos", "stars": 2}',
        '```json\n{"label": "pos", "stars": 2}\n```',
        '```\n{"label": "pos", "stars": 2}\n```',
        'Sure! Here it is: {"label": "pos", "stars": 2} Hope that helps.',
        '  \n{"label": "pos", "stars": 2}\n\n',
    ],
)
def test_replies_from_servers_without_schema_support_are_read(text: str) -> None:
    assert ResponseSchema.of(Review).parse(text) == Review("pos", 2)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the reply is empty, not JSON"),
        ('{"label": "pos",', "not valid JSON (Expecting property name enclosed in double quotes"),
        ("no json here", "not valid JSON (Expecting value at line 1, column 1)"),
    ],
)
def test_text_that_is_not_json_says_so(text: str, expected: str) -> None:
    (problem,) = problems(ResponseSchema.of(Review), text)
    assert problem.startswith(expected)


def test_a_wrapper_with_company_is_refused() -> None:
    schema = ResponseSchema.of(list[int])
    assert problems(schema, '{"items": [1], "more": 2}') == [
        "unknown field(s) besides 'items': 'items', 'more'"
    ]


def test_instructions_carry_the_schema_for_servers_that_take_none() -> None:
    schema = ResponseSchema.of(Review)
    text = schema.instructions()
    assert "JSON Schema (Review)" in text and "no code fence" in text
    assert json.loads(text.split("JSON Schema (Review): ", 1)[1]) == schema.schema


def test_field_values_read_objects_and_dicts() -> None:
    assert ResponseSchema.of(Review).field_values(Review("pos", 3)) == {"label": "pos", "stars": 3}
    assert ResponseSchema.of(Point).field_values({"x": 1.0}) == {"x": 1.0, "y": None}


def test_decode_json_survives_many_braces_quickly() -> None:
    with pytest.raises(ValidationError):
        decode_json("{" * 50_000)


# -- the dict validator --


@pytest.mark.parametrize(
    ("schema", "value", "expected"),
    [
        ({"type": "integer"}, 3.0, []),
        ({"type": "integer"}, True, ["expected an integer, got boolean true"]),
        ({"type": ["string", "null"]}, None, []),
        ({"type": "string", "nullable": True}, None, []),
        ({"enum": [1, "a"]}, 1.0, []),
        ({"enum": [1, "a"]}, True, ['expected one of 1, "a", got boolean true']),
        ({"const": "x"}, "y", ['expected "x", got string "y"']),
        ({"anyOf": [{"type": "integer"}, {"type": "null"}]}, None, []),
        (
            {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "a",
            ['string "a" fits none of the 2 allowed forms'],
        ),
        (
            {"oneOf": [{"type": "number"}, {"type": "integer"}]},
            3,
            ["matches 2 of the oneOf choices, expected exactly one"],
        ),
        ({"allOf": [{"minimum": 2}, {"maximum": 4}]}, 5, ["expected a number at most 4, got 5"]),
        (
            {"type": "string", "minLength": 2, "pattern": "^a"},
            "b",
            [
                "expected at least 2 character(s), got 1",
                "expected a string matching '^a', got string \"b\"",
            ],
        ),
        (
            {"type": "array", "items": {"type": "integer"}, "maxItems": 1},
            [1, "x"],
            ["expected at most 1 item(s), got 2", '[1]: expected an integer, got string "x"'],
        ),
        ({"type": "array", "uniqueItems": True}, [1, 1], ["expected unique items, got duplicates"]),
        (
            {"type": "object", "additionalProperties": {"type": "integer"}},
            {"a": "b"},
            ['a: expected an integer, got string "b"'],
        ),
        (
            {"type": "object", "properties": {"a": {}}, "additionalProperties": False},
            {"b": 1},
            ["unknown field(s) 'b' (allowed: a)"],
        ),
        (
            {"$defs": {"N": {"type": "integer"}}, "$ref": "#/$defs/N"},
            "x",
            ['expected an integer, got string "x"'],
        ),
        ({"type": "number", "exclusiveMinimum": 0}, 0, ["expected a number more than 0, got 0"]),
        ({"format": "email", "type": "string"}, "not an email", []),
        (True, {"anything": 1}, []),
        (False, 1, ["no value is allowed here, got number 1"]),
    ],
)
def test_the_dict_validator(schema: Any, value: Any, expected: list[str]) -> None:
    assert validate_json(schema, value) == expected


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(json_values)
def test_the_empty_schema_accepts_every_json_value_and_never_fails(value: Any) -> None:
    assert validate_json({}, value) == []
    assert isinstance(validate_json({"type": "object", "required": ["a"]}, value), list)


@given(st.lists(st.sampled_from(["pos", "neg", "meh"]), max_size=6))
def test_a_list_schema_reports_exactly_the_bad_items(labels: list[str]) -> None:
    schema = ResponseSchema.of(list[Literal["pos", "neg"]])
    text = json.dumps({"items": labels})
    bad = [i for i, label in enumerate(labels) if label == "meh"]
    if not bad:
        assert schema.parse(text) == labels
        return
    found = problems(schema, text)
    assert [p.split(":")[0] for p in found] == [f"items[{i}]" for i in bad]
