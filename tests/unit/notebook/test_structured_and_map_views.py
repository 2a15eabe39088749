"""The views of structured replies and of maps, fed directly (no shell)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, Literal

from tests.unit.notebook.test_view import MALICIOUS, Clock, RecordingOutput
from tf_magics.data import MapSummary
from tf_magics.errors import MapInterrupted, StructuredOutputError
from tf_magics.events import (
    BatchProgress,
    CompletionDone,
    ContentDelta,
    MapProgress,
    Notice,
    RequestStarted,
)
from tf_magics.notebook.map_layout import progress_text, summary_bundle
from tf_magics.notebook.map_view import MapView, TextProgress
from tf_magics.notebook.structured_view import StructuredLiveView
from tf_magics.notebook.value_view import value_html, value_markdown, value_text
from tf_magics.render import NO_MATH
from tf_magics.reply import Reply
from tf_magics.types import Completion


@dataclass
class Verdict:
    label: Literal["pos", "neg"]
    confidence: float


# -- a value, shown --


def test_a_flat_object_is_a_two_column_table() -> None:
    html = value_html(Verdict("pos", 0.9))
    assert html.startswith('<table class="tf-magics-value')
    assert ">label</th>" in html and ">pos</td>" in html and ">0.9</td>" in html
    assert value_markdown(Verdict("pos", 0.9)).splitlines() == [
        "| field | value |",
        "|---|---|",
        "| label | pos |",
        "| confidence | 0.9 |",
    ]
    assert value_text(Verdict("pos", 0.9)) == "Verdict(label='pos', confidence=0.9)"


def test_a_list_of_flat_objects_is_a_table_with_a_row_each() -> None:
    rows = [Verdict("pos", 1.0), Verdict("neg", 0.5)]
    html = value_html(rows)
    assert html.count("<tr>") == 3 and ">label</th>" in html and ">neg</td>" in html
    assert value_markdown(rows).splitlines()[0] == "| label | confidence |"
    long = value_html([{"n": n} for n in range(60)])
    assert long.count("<tr>") == 51 and "10 more" in long


def test_anything_else_is_pretty_json_in_a_code_block() -> None:
    html = value_html({"a": {"b": [1, 2]}})
    assert (
        html.startswith(f'<pre class="tf-magics-value {NO_MATH}"><code>{{')
        and "&quot;b&quot;" in html
    )
    assert value_markdown({"a": {"b": 1}}).startswith("```json\n{")


def test_model_output_in_a_value_stays_inert() -> None:
    html = value_html({"label": MALICIOUS, "x": 1})
    assert "<script" not in html and "<img" not in html and "<iframe" not in html
    markdown = value_markdown({"label": "![x](https://evil/y.png) <b>", "x": 1})
    assert "![x](" not in markdown and "<b>" not in markdown


def _structured(text: str, value: Any, **kw: Any) -> Reply:
    completion = Completion(content=text, model="m", ended="done", finish_reason="stop")
    return Reply(text=text, completions=[completion], value=value, schema_name="Verdict", **kw)


def test_the_final_output_of_a_structured_reply_shows_the_value() -> None:
    output, clock = RecordingOutput(), Clock()
    view = StructuredLiveView(output, clock=clock)
    view.handle(RequestStarted(1, "m", True))
    text = '{"label": "pos", "confidence": 0.9}'
    for piece in ('{"label": ', '"pos", ', '"confidence": 0.9}'):
        clock.now += 0.2
        view.handle(ContentDelta(piece))
    streamed = [b for op, _, b in output.ops if op in ("show", "update")]
    # While it streams, the JSON is code (highlighted), not a paragraph of braces.
    assert any("<pre" in b["text/html"] and "label" in b["text/html"] for b in streamed)
    view.handle(CompletionDone(Completion(content=text, ended="done", finish_reason="stop")))
    view.finish(_structured(text, Verdict("pos", 0.9)))
    (final,) = output.live.values()
    assert '<table class="tf-magics-value' in final["text/html"]
    assert "Verdict(label='pos', confidence=0.9)" in final["text/plain"]
    assert "| label | pos |" in final["text/markdown"]
    assert text not in final["text/plain"]  # the value replaces the raw JSON


def test_an_answer_that_does_not_fit_is_shown_as_it_came_with_the_reason() -> None:
    output = RecordingOutput()
    view = StructuredLiveView(output, clock=Clock())
    text = '{"label": "<b>great</b>"}'
    view.handle(RequestStarted(1, "m", True))
    view.handle(ContentDelta(text))
    view.handle(CompletionDone(Completion(content=text, ended="done", finish_reason="stop")))
    error = StructuredOutputError(["label: no"], schema_name="Verdict")
    view.finish(_structured(text, None, error="x"), error=error)
    (final,) = output.live.values()
    assert "&lt;b&gt;great&lt;/b&gt;" in final["text/html"] and "<b>great" not in final["text/html"]
    assert "does not fit the schema" in final["text/plain"]
    assert "stopped early" not in final["text/plain"]


# -- a map's progress --


def _progress(done: int, total: int = 100, **kw: Any) -> MapProgress:
    values: dict[str, Any] = {
        "total": total,
        "done": done,
        "failed": 0,
        "prompt_tokens": 10 * done,
        "completion_tokens": 2 * done,
        "elapsed": done / 10,
        "in_flight": 4,
        "window": 8,
        "concurrency": 8,
    }
    values.update(kw)
    return MapProgress(**values)


class RecordingDisplay:
    def __init__(self) -> None:
        self.updates: list[tuple[MapProgress | BatchProgress, float]] = []
        self.final: dict[str, str] | None = None

    def update(self, progress: MapProgress | BatchProgress, elapsed: float) -> None:
        self.updates.append((progress, elapsed))

    def finish(self, bundle: dict[str, str]) -> None:
        self.final = bundle


def test_the_progress_line_says_rows_failures_tokens_speed_and_time_left() -> None:
    line = progress_text(_progress(40, failed=2), elapsed=4.0)
    assert line == "42 / 100 rows · 2 failed · 480 tokens · 10.5 rows/s · ETA 6 s"
    slowed = progress_text(_progress(10, window=2, rate_limited=5), elapsed=1.0)
    assert "slowed to 2 at once" in slowed
    assert progress_text(_progress(0), elapsed=0.0) == "0 / 100 rows · 0 s elapsed"


def test_the_view_draws_at_most_ten_times_a_second_then_the_final_state() -> None:
    clock, display = Clock(), RecordingDisplay()
    view = MapView(display, clock=clock)
    for done in range(100):
        clock.now += 0.01  # a hundred events in a second
        view.handle(_progress(done))
        view.idle()
    assert 9 <= len(display.updates) <= 11
    view.handle(_progress(100, final=True))
    assert display.updates[-1][0].final and display.updates[-1][0].finished == 100


def test_idle_ticks_keep_the_clock_moving_between_slow_rows() -> None:
    clock, display = Clock(), RecordingDisplay()
    view = MapView(display, clock=clock)
    view.handle(_progress(10))
    for _ in range(5):
        clock.now += 1.0
        view.idle()
    elapsed = [e for _, e in display.updates]
    assert elapsed == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]


def test_the_summary_replaces_the_bar() -> None:
    display = RecordingDisplay()
    view = MapView(display, clock=Clock())
    view.handle(Notice("the server does not accept json_schema", "info"))
    summary = MapSummary(
        total=10,
        done=8,
        failed=2,
        prompts=10,
        prompt_tokens=100,
        completion_tokens=20,
        elapsed=2.0,
        errors=["row 3: BadRequestError: no", "row 7: BadRequestError: no"],
    )
    view.finish(summary)
    assert display.final is not None
    lines = display.final["text/plain"].splitlines()
    assert lines[0] == "⚠ 10 rows in 2.0 s (5.0 rows/s): 8 done, 2 failed · 120 tokens"
    assert lines[1:3] == ["  row 3: BadRequestError: no", "  row 7: BadRequestError: no"]
    assert lines[3] == "the server does not accept json_schema"
    assert "<div" in display.final["text/html"]


def test_an_interrupted_map_says_so() -> None:
    summary = MapSummary(total=20, done=6, unfinished=14, prompts=20, elapsed=1.0)
    bundle = summary_bundle(summary, [], MapInterrupted("x"))
    assert bundle["text/plain"].startswith("⏹ Interrupted: 20 rows in 1.0 s")
    assert "14 not finished" in bundle["text/plain"]


def test_text_progress_rewrites_one_line_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    display = TextProgress(stream)
    display.update(_progress(10), 1.0)
    display.update(_progress(20), 2.0)
    display.finish({"text/plain": "✓ done"})
    text = stream.getvalue()
    assert text.count("\r") >= 3 and text.endswith("✓ done\n") and "20 / 100 rows" in text
    log = io.StringIO()
    quiet = TextProgress(log, every=60)
    for done in range(50):
        quiet.update(_progress(done), done / 10)
    assert log.getvalue().count("\n") == 1  # a log gets a line now and then, not fifty
