"""DataFrames, Series and arrays as attachments: what they carry, and the budget they keep."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tf_magics._secrets import SecretScanner
from tf_magics.context import attach, frames
from tf_magics.context.arrays import summarise_array
from tf_magics.context.budget import Budget

SECRET = "sk-live-7d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a"


def one(value, *, tokens: int = 2000, scanner: SecretScanner | None = None, name: str = "df"):
    (attachment,) = attach([(name, value)], max_tokens=tokens, scanner=scanner)
    return attachment


def sales(rows: int = 1092) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=rows, freq="h"),
            "store": rng.choice(["Harbour", "Station", "Campus"], rows),
            "units": rng.poisson(40, rows),
            "price": rng.choice([2.2, 3.4, 2.0], rows),
        }
    )


def test_a_frame_is_labelled_with_its_name_and_shape_and_lists_every_column() -> None:
    frame = sales()
    frame.loc[3, "units"] = None
    attachment = one(frame)
    text = attachment.text
    assert text.startswith("Attachment `df` (pandas DataFrame, 1,092 rows × 4 columns):\n")
    for column in ("date", "store", "units", "price"):
        assert f"- {column} (" in text
    assert "- units (float64): 1 null (0.1%)" in text
    assert "3 distinct: " in text and "Harbour (" in text  # frequent values of a text column
    assert "2024-01-01 00:00:00 → 2024-02-15 11:00:00" in text  # a date column's range
    assert "Numeric columns, describe():" in text and "mean" in text and "75%" in text
    assert "Sample rows (5 of 1,092" in text
    assert attachment.description == "pandas DataFrame, 1,092 rows × 4 columns"
    assert attachment.tokens <= 2000 + 50


def test_describe_is_of_every_row_up_to_a_million_and_of_a_sample_beyond(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frame = pd.DataFrame({"x": np.arange(5_000, dtype=float), "s": ["a", "b"] * 2_500})
    exact = one(frame).text
    assert "random sample" not in exact and "5000" in exact.replace(",", "")
    monkeypatch.setattr(frames, "EXACT_ROWS", 1_000)
    monkeypatch.setattr(frames, "SAMPLE_ROWS", 500)
    sampled = one(frame)
    assert (
        "statistics and frequent values from a random sample of 500 of the 5,000 rows"
        in (sampled.notes[0])
    )
    assert "Numeric columns, describe() (from a random sample of 500 of the 5,000 rows)" in (
        sampled.text
    )
    assert one(frame).text == sampled.text  # seeded: the same frame gives the same text


def test_a_wide_frame_stays_within_budget_and_says_what_it_left_out() -> None:
    frame = pd.DataFrame(np.ones((20, 1_500)), columns=[f"feature_{n}" for n in range(1_500)])
    attachment = one(frame, tokens=500)
    assert len(attachment.text) <= 500 * 4 + 200
    assert "1,500 columns" in attachment.description
    assert any("columns described:" in note for note in attachment.notes)
    assert "more columns: feature_" in attachment.text


def test_a_large_frame_is_summarised_within_budget() -> None:
    rows = 2_000_000
    frame = pd.DataFrame(
        {
            "id": np.arange(rows),
            "value": np.random.default_rng(1).normal(size=rows),
            "label": pd.Categorical(np.resize(["x", "y", "z"], rows)),
        }
    )
    attachment = one(frame, tokens=1000)
    assert "2,000,000 rows × 3 columns" in attachment.text
    assert all(f"- {name} (" in attachment.text for name in ("id", "value", "label"))
    assert attachment.tokens <= 1000 + 50
    assert "random sample of 200,000 of the 2,000,000 rows" in attachment.text


def test_a_secret_in_a_cell_is_masked_before_the_cell_is_cut() -> None:
    scanner = SecretScanner((("PAYMENTS_API_KEY", SECRET),))
    frame = pd.DataFrame({"note": [f"key is {SECRET} keep it safe"] * 4, "n": range(4)})
    text = one(frame, scanner=scanner).text
    assert "[redacted: PAYMENTS_API_KEY]" in text
    # Not even a piece of it survives the cut to the column width.
    assert not any(SECRET[i : i + 10] in text for i in range(len(SECRET) - 10))


def test_a_column_named_like_a_secret_shows_no_values() -> None:
    frame = pd.DataFrame({"user": ["ann", "bob"], "credentials": ["hunter2xyz", "pa55word!"]})
    attachment = one(frame)
    assert "credentials (str): no nulls, values withheld (the name looks secret)" in (
        attachment.text
    )
    assert "hunter2xyz" not in attachment.text and "pa55word" not in attachment.text
    assert "[withheld]" in attachment.text
    assert "ann" in attachment.text  # other columns are shown


def test_an_empty_frame_and_a_frame_without_numbers() -> None:
    assert "(no rows)" in one(pd.DataFrame({"a": []})).text
    assert one(pd.DataFrame()).text.endswith("(no columns)\n\n(no rows)")
    text = one(pd.DataFrame({"a": ["x", "y"]})).text
    assert "describe()" not in text and "2 distinct" in text and "All 2 rows:" in text


def test_a_series_has_its_statistics_and_a_few_values() -> None:
    series = pd.Series(np.arange(100.0), name="revenue", index=pd.date_range("2024", periods=100))
    attachment = one(series, name="s")
    assert attachment.description == "pandas Series 'revenue' of float64, 100 values"
    assert "Index: DatetimeIndex of datetime64" in attachment.text
    assert "mean" in attachment.text and "49.5" in attachment.text
    assert "Sample rows (5 of 100: the first and some at random)" in attachment.text
    short = one(pd.Series([3.5, 1.0], index=["tea", "latte"], name="revenue"), name="s")
    assert "All 2 rows:" in short.text and "describe" not in short.text


def test_an_array_has_shape_dtype_statistics_and_a_summarised_print() -> None:
    array = np.arange(1_000_000, dtype=float).reshape(1_000, 1_000)
    array[0, 0] = np.nan
    attachment = one(array, name="a")
    assert attachment.description == "numpy array, 1,000×1,000, float64"
    assert "NaN: 1 (0.0%)" in attachment.text
    assert "min 1, max 999999" in attachment.text
    assert "..." in attachment.text  # numpy's own summarised print, not a million numbers
    assert len(attachment.text) < 2_000


def test_an_array_above_the_exact_size_uses_a_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    from tf_magics.context import arrays

    monkeypatch.setattr(arrays, "EXACT_VALUES", 100)
    summary = summarise_array(np.arange(1_000_000 + 500.0), Budget(4_000))
    assert any("random sample of 1,000,000" in note for note in summary.notes)
    assert "bool" in one(np.array([True, False, True]), name="b").text
    assert "True: 2, False: 1" in one(np.array([True, False, True]), name="b").text


def test_a_subclass_with_repr_llm_describes_itself() -> None:
    class Annotated(pd.DataFrame):  # type: ignore[misc]
        def _repr_llm_(self) -> str:
            return "A table of three trial results, measured in seconds."

    attachment = one(Annotated({"a": [1, 2, 3]}))
    assert attachment.text.endswith("A table of three trial results, measured in seconds.")
    assert "_repr_llm_" in attachment.description


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.integers(0, 40),
    columns=st.integers(1, 60),
    tokens=st.integers(100, 1_500),
    kinds=st.lists(st.sampled_from(["int", "float", "text", "date", "bool"]), min_size=1),
)
def test_any_frame_fits_its_budget(rows: int, columns: int, tokens: int, kinds: list[str]) -> None:
    makers = {
        "int": lambda n: np.arange(n),
        "float": lambda n: np.linspace(0, 1, n),
        "text": lambda n: [f"value number {i} " * 5 for i in range(n)],
        "date": lambda n: pd.date_range("2020-01-01", periods=n),
        "bool": lambda n: [i % 2 == 0 for i in range(n)],
    }
    data = {f"column_{c}": makers[kinds[c % len(kinds)]](rows) for c in range(columns)}
    attachment = one(pd.DataFrame(data), tokens=tokens)
    label = len(attachment.text.split("\n", 1)[0])
    # The summary itself stays within the budget (the cut note adds a line at most).
    assert len(attachment.text) - label <= tokens * 4 + 120
