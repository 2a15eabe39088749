"""What the user sees of attachments, dry runs and comparisons: shown, escaped, bounded."""

from __future__ import annotations

import io

from tests.unit.notebook.test_view import MALICIOUS, Clock, RecordingOutput
from tf_magics import Attachment, Chat, Conversation
from tf_magics.engine.compare import Comparison, Variant
from tf_magics.events import (
    CompletionDone,
    ContentDelta,
    ContextAttached,
    RequestStarted,
    VariantEvent,
)
from tf_magics.notebook.attachments_view import attachments_html, attachments_text
from tf_magics.notebook.compare_layout import VariantState, comparison_bundle
from tf_magics.notebook.compare_view import CompareView
from tf_magics.notebook.history_view import history_view
from tf_magics.notebook.live_view import LiveView
from tf_magics.notebook.preview_view import preview_bundle
from tf_magics.notebook.terminal_view import TerminalView
from tf_magics.reply import Reply
from tf_magics.types import Completion
from tf_testing.fake_openai import FakeOpenAI

HOSTILE = Attachment(
    name="df",
    description="pandas DataFrame, 2 rows × 1 column",
    parts=(
        {"type": "text", "text": "Attachment `df` (…):\n<script>alert(1)</script>"},
        {"type": "image_url", "image_url": {"url": "https://evil.example/x.png"}},
    ),
    notes=("showing 1 of 2 columns",),
)
IMAGE = Attachment(
    name="fig",
    description="matplotlib Figure, PNG image 2×2",
    parts=(
        {"type": "text", "text": "Attachment `fig` (…):"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ),
)


def test_attachments_are_escaped_and_only_local_images_are_shown() -> None:
    html = attachments_html([HOSTILE, IMAGE])
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "evil.example" not in html  # an image from elsewhere is never loaded
    assert '<img src="data:image/png;base64,iVBORw0KGgo="' in html
    assert "<details" in html and "2 attachments sent with the question (df, fig)" in html
    assert "showing 1 of 2 columns" in html
    assert attachments_text([HOSTILE]).startswith("📎 Attached: df (pandas DataFrame, 2 rows")


def test_the_live_view_shows_attachments_first_and_keeps_them_in_the_final_output() -> None:
    output = RecordingOutput()
    view = LiveView(output, clock=Clock())
    view.handle(ContextAttached((IMAGE,)))
    assert "📎 1 attachment sent with the question (fig)" in output.live[1]["text/html"]
    view.handle(RequestStarted(1, "m", True))
    view.handle(ContentDelta("The chart rises."))
    completion = Completion(content="The chart rises.", ended="done", finish_reason="stop")
    view.handle(CompletionDone(completion))
    view.finish(Reply(text="The chart rises.", completions=[completion], attachments=[IMAGE]))
    (final,) = output.live.values()
    assert final["text/html"].index("tf-magics-attachments") < final["text/html"].index("rises")
    assert final["text/plain"].startswith("📎 Attached: fig (matplotlib Figure")
    assert final["text/markdown"].startswith("*📎 Attached: `fig`")


def test_the_cell_says_it_is_summarising_before_the_request(fake_server: FakeOpenAI) -> None:
    output = RecordingOutput()
    view = LiveView(output, clock=Clock())
    shown: list[str] = []
    original = output.show

    def show(bundle: dict[str, str]) -> int:
        shown.append(bundle["text/plain"])
        return original(bundle)

    output.show = show  # type: ignore[method-assign]
    chat = Chat(base_url=fake_server.base_url, model="m")
    chat.ask("What is it?", context={"numbers": [1, 2, 3]}, observer=view)
    assert shown[0] == "⏳ Summarising numbers…"  # before the summary is made
    chat.close()


def test_the_terminal_says_what_was_attached() -> None:
    stream = io.StringIO()
    TerminalView(stream).handle(ContextAttached((IMAGE,)))
    assert stream.getvalue().startswith("📎 Attached: fig (matplotlib Figure, PNG image 2×2;")


def test_the_history_shows_a_question_s_attachments() -> None:
    conversation = Conversation()
    conversation.add_user("What is it?", list(IMAGE.parts))
    html, text = history_view(conversation)
    assert "tf-magics-attachments" in html and "[user] 📎 Attached: fig" in text


def test_a_dry_run_shows_every_message_escaped_and_the_body_with_short_images(
    fake_server: FakeOpenAI,
) -> None:
    chat = Chat(base_url=fake_server.base_url, model="m")
    chat.system = MALICIOUS
    preview = chat.preview("Explain the chart", context={"fig": IMAGE})
    bundle = preview_bundle([preview])
    html = bundle["text/html"]
    assert (
        "<script>" not in html
        and "<iframe" not in html
        and "onerror=alert" not in html.replace("onerror=alert(1)&gt;", "")
    )
    assert "Dry run: nothing was sent." in html and "Explain the chart" in html
    assert "tf-magics-attachments" in html  # the question's attachment, collapsed
    assert "base64,iVBORw0KGgo=" in html
    assert bundle["text/plain"].startswith("Dry run: nothing was sent.")
    assert fake_server.requests == []


def _comparison() -> Comparison:
    conversation = Conversation()
    good = Reply(
        text="**bold** " + MALICIOUS,
        completions=[Completion(content="x", ended="done", finish_reason="stop", model="a")],
    )
    variants = [
        Variant("t=0", {"temperature": 0}, reply=good),
        Variant("<b>t=1</b>", {"temperature": 1}, error=RuntimeError("it broke")),
    ]
    return Comparison("q", variants, conversation)


def test_a_comparison_shows_columns_sanitized_with_each_error_in_its_own_column() -> None:
    comparison = _comparison()
    states = [VariantState(v.label) for v in comparison.variants]
    bundle = comparison_bundle(comparison, states)
    html = bundle["text/html"]
    assert html.count('<div style="flex:1 1 0') == 2
    assert "<strong>bold</strong>" in html and "<script" not in html and "<iframe" not in html
    assert "&lt;b&gt;t=1&lt;/b&gt;" in html and "✗ RuntimeError: it broke" in html
    plain = bundle["text/plain"]
    assert plain.index("── 1 · t=0 ──") < plain.index("── 2 · <b>t=1</b> ──")
    assert "`%chat keep N` keeps reply N" in plain


def test_the_comparison_view_redraws_at_a_bounded_rate() -> None:
    output = RecordingOutput()
    clock = Clock()
    view = CompareView(output, ["t=0", "t=1"], interval=0.25, clock=clock)
    for n in range(200):
        clock.now += 0.01
        view.handle(VariantEvent(n % 2, ContentDelta(f"w{n} ")))
    # 2 seconds of tokens: at most one redraw per 0.25 s (and the first one).
    assert view.messages <= 2 / 0.25 + 1
    clock.now += 0.3
    view.idle()  # what the rate limit held back is drawn when nothing else comes
    live = next(iter(output.live.values()))["text/html"]
    assert "w198" in live and "w199" in live
    view.finish(_comparison(), hint=None)
    assert len(output.live) == 1
