"""Templates filled from rows, and rows read from DataFrames, dicts and strings."""

from __future__ import annotations

import math
import subprocess
import sys
from typing import Any

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.paths import REPO_ROOT
from tf_magics.data.rows import read_rows, unique_prompts
from tf_magics.data.template import PromptTemplate, cell_text
from tf_magics.errors import ConfigurationError


def test_placeholders_are_names_only_and_braces_escape() -> None:
    template = PromptTemplate.parse('Rate {review} as {{"label": ...}} {review} {x.y} {0}')
    assert template.fields == ("review",)
    assert template.fill({"review": "ok"}) == 'Rate ok as {"label": ...} ok {x.y} {0}'


def test_values_are_filled_once_not_scanned_again() -> None:
    template = PromptTemplate.parse("{a} and {b}")
    assert template.fill({"a": "{b}", "b": "B"}) == "{b} and B"


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, ""), (math.nan, ""), (pd.NA, ""), (pd.NaT, ""), (3, "3"), (2.5, "2.5"), ("x", "x")],
)
def test_missing_values_become_empty(value: Any, text: str) -> None:
    assert cell_text(value) == text


@given(st.text(alphabet="{}1 -.", max_size=30))
def test_a_template_without_names_fills_to_its_unescaped_text(text: str) -> None:
    template = PromptTemplate.parse(text) if text.strip() else None
    if template is None:
        return
    expected = text.replace("{{", "\x00").replace("}}", "\x01")
    expected = expected.replace("\x00", "{").replace("\x01", "}")
    assert template.fields == () and template.fill({}) == expected


def test_a_dataframe_fills_each_row_from_its_columns() -> None:
    frame = pd.DataFrame({"text": ["good", "bad"], "n": [1, 2]}, index=["a", "b"])
    rows = read_rows(PromptTemplate.parse("{n}: {text}"), frame)
    assert rows.kind == "frame" and rows.prompts == ["1: good", "2: bad"]
    assert rows.frame is frame


def test_a_missing_column_is_one_line_naming_it_and_the_columns() -> None:
    frame = pd.DataFrame({"text": ["x"], "stars": [1]})
    with pytest.raises(ConfigurationError) as caught:
        read_rows(PromptTemplate.parse("Rate {review}"), frame)
    message = str(caught.value)
    assert "{review}" in message and "'review'" in message and "columns: stars, text" in message
    assert "{{" in message  # how to write a literal brace


def test_lists_of_dicts_and_of_strings() -> None:
    dicts = read_rows(PromptTemplate.parse("Hi {name}"), [{"name": "Ada"}, {"name": "Bob"}])
    assert dicts.kind == "dicts" and dicts.prompts == ["Hi Ada", "Hi Bob"]
    strings = read_rows(PromptTemplate.parse("Echo {text}"), ["one", "two"])
    assert strings.kind == "strings" and strings.prompts == ["Echo one", "Echo two"]
    appended = read_rows(PromptTemplate.parse("Classify this review:"), ["great"])
    assert appended.prompts == ["Classify this review:\n\ngreat"]


@pytest.mark.parametrize(
    ("template", "data", "words"),
    [
        ("{a}", [{"a": 1}, {"b": 2}], "Row 1 has no key 'a'"),
        ("{a}", ["x", {"a": 1}], "Row 1 is a dict"),
        ("{a}", ["x"], "its one field is {text}"),
        ("{a}", "a string", "not str"),
        ("{a}", {"a": [1]}, "not dict"),
        ("{a}", pd.Series([1]), "not Series"),
        ("no field", [{"a": 1}], "no placeholder"),
        ("no field", pd.DataFrame({"a": [1]}), "no placeholder"),
        ("", ["x"], "template is empty"),
        (3, ["x"], "must be text"),
    ],
)
def test_bad_data_or_templates_fail_before_anything_is_sent(
    template: Any, data: Any, words: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        read_rows(PromptTemplate.parse(template), data)
    assert words in str(caught.value)


def test_duplicate_column_names_are_refused() -> None:
    frame = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(ConfigurationError, match="several columns named 'a'"):
        read_rows(PromptTemplate.parse("{a}"), frame)


def test_identical_prompts_are_kept_once_with_their_rows() -> None:
    unique, index_of, weights = unique_prompts(["a", "b", "a", "c", "a"])
    assert unique == ["a", "b", "c"]
    assert list(index_of) == [0, 1, 0, 2, 0]
    assert weights == [3, 1, 1]


def test_mapping_a_list_does_not_import_pandas() -> None:
    code = (
        "import sys\n"
        "from tf_magics.data import plan_map\n"
        "plan = plan_map('Say {text}', ['a', 'b'])\n"
        "assert plan.prompts == ['Say a', 'Say b']\n"
        "print('pandas' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
