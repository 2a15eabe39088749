from __future__ import annotations

import io
import re
from typing import Any

from tf_magics.cost import Price
from tf_magics.events import (
    CompletionDone,
    ContentDelta,
    Notice,
    ReasoningDelta,
    RequestStarted,
    Retrying,
    ToolCallDelta,
    ToolCallFinished,
    ToolCallStarted,
)
from tf_magics.notebook.live_view import LiveView
from tf_magics.notebook.terminal_view import TerminalView
from tf_magics.render import NO_MATH
from tf_magics.reply import Reply
from tf_magics.types import Completion, ToolCall, ToolResult, Usage

MALICIOUS = (
    "# Title\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n"
    "[click](javascript:alert(1))\n\n<iframe src='https://evil'></iframe>\n\n"
    "<form action='x'><input name='q'></form>\n"
)


class RecordingOutput:
    """Stands in for IPython's display: records every output operation."""

    def __init__(self) -> None:
        self.ops: list[tuple[str, int, dict[str, str]]] = []
        self.live: dict[int, dict[str, str]] = {}
        self._next = 0

    def show(self, bundle: dict[str, str]) -> int:
        self._next += 1
        self.ops.append(("show", self._next, bundle))
        self.live[self._next] = bundle
        return self._next

    def update(self, handle: Any, bundle: dict[str, str]) -> None:
        self.ops.append(("update", handle, bundle))
        self.live[handle] = bundle

    def clear(self, *, wait: bool = True) -> None:
        self.ops.append(("clear", int(wait), {}))
        self.live.clear()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _stream(view: LiveView, clock: Clock, text: str, step: float = 0.005) -> Completion:
    view.handle(RequestStarted(1, "m", True))
    for piece in re.findall(r"\S+\s*|\s+", text):
        clock.now += step
        view.handle(ContentDelta(piece))
    completion = Completion(content=text, model="m", ended="done", finish_reason="stop")
    view.handle(CompletionDone(completion))
    return completion


def _reply(*completions: Completion, **kw: Any) -> Reply:
    return Reply(text=completions[-1].content, completions=list(completions), **kw)


def test_status_line_appears_before_the_first_token() -> None:
    output = RecordingOutput()
    view = LiveView(output, clock=Clock(), target="http://127.0.0.1:1/v1")
    view.handle(RequestStarted(1, "big-model", True))
    (kind, _, bundle) = output.ops[-1]
    assert kind == "show" and "Waiting for big-model" in bundle["text/plain"]
    view.handle(Retrying(1, 2, 1.5, "503 busy"))
    assert "retrying in 1.5 s" in output.ops[-1][2]["text/plain"]


def test_first_content_is_shown_immediately_and_reuses_the_status_output() -> None:
    output = RecordingOutput()
    clock = Clock()
    view = LiveView(output, clock=clock)
    view.handle(RequestStarted(1, "m", True))
    view.handle(ContentDelta("Hello"))
    assert output.ops[-1][0] == "update" and output.ops[-1][1] == 1
    assert "Hello" in output.ops[-1][2]["text/html"]


def test_updates_are_rate_limited_and_blocks_sent_once() -> None:
    output = RecordingOutput()
    clock = Clock()
    view = LiveView(output, clock=clock, interval=0.1)
    paragraphs = "\n\n".join(f"Paragraph {n} " + "word " * 30 for n in range(40))
    _stream(view, clock, paragraphs, step=0.002)
    elapsed = clock.now
    # At most about two messages per interval, plus the final flush.
    assert view.messages <= 2 * (elapsed / 0.1 + 1) + 4
    sent = "".join(b.get("text/plain", "") for _, _, b in output.ops)
    # Each completed paragraph travels a bounded number of times, not once per token.
    assert sent.count("Paragraph 7 ") <= 3


def test_final_output_is_one_bundle_with_three_mimetypes() -> None:
    output = RecordingOutput()
    clock = Clock()
    view = LiveView(output, clock=clock)
    text = "# Title\n\nSome *text*.\n\n- a\n- b\n\n```python\nprint(1)\n```\n"
    completion = _stream(view, clock, text)
    view.finish(_reply(completion, elapsed=1.0), conversation_usage=Usage(3, 4, 7))
    assert output.ops[-2][0] == "clear"
    assert list(output.live) == [output.ops[-1][1]]
    final = output.ops[-1][2]
    assert set(final) == {"text/plain", "text/markdown", "text/html"}
    assert "<h1>Title</h1>" in final["text/html"] and "<li>a</li>" in final["text/html"]
    assert final["text/markdown"].startswith(text)
    assert "usage not reported" in final["text/plain"]


def test_final_html_reuses_blocks_rendered_while_streaming() -> None:
    from tf_magics.render import render_markdown

    output = RecordingOutput()
    clock = Clock()
    view = LiveView(output, clock=clock)
    text = "First paragraph.\n\nSecond paragraph with **bold**.\n\n1. one\n2. two\n"
    completion = _stream(view, clock, text)
    html = view.final_bundle(_reply(completion))["text/html"]

    def squeeze(markup: str) -> str:
        return re.sub(r">\s+<", "><", markup)

    assert squeeze(render_markdown(text)) in squeeze(html)


def test_the_last_blocks_of_a_finished_reply_go_out_once_in_the_final_output() -> None:
    output = RecordingOutput()
    clock = Clock()
    view = LiveView(output, clock=clock)
    text = "Early paragraph.\n\n" + "".join(f"Late paragraph {n}.\n\n" for n in range(5))
    completion = _stream(view, clock, text, step=0.0)
    view.finish(_reply(completion))
    sent = [b.get("text/plain", "") for _, _, b in output.ops]
    # Not rendered into an output of its own just before the final one replaces it.
    assert sum("Late paragraph 4." in t for t in sent) == 1
    assert "Late paragraph 4." in output.ops[-1][2]["text/html"]


def test_the_last_blocks_are_shown_when_the_end_of_the_turn_is_slow_to_come() -> None:
    output = RecordingOutput()
    clock = Clock()
    view = LiveView(output, clock=clock)
    _stream(view, clock, "One paragraph.\n\nAnother one, the last.\n", step=0.0)
    assert not any("the last" in h.get("text/plain", "") for h in output.live.values())
    clock.now += 0.2
    view.idle()
    assert any("the last" in h.get("text/plain", "") for h in output.live.values())
    assert len(output.live) == 1  # it took the place of the growing tail


def test_model_output_is_sanitized_live_and_final() -> None:
    output = RecordingOutput()
    clock = Clock()
    view = LiveView(output, clock=clock)
    completion = _stream(view, clock, MALICIOUS)
    view.finish(_reply(completion))
    for _, _, bundle in output.ops:
        html = bundle.get("text/html", "")
        assert "<script" not in html and "<iframe" not in html and "<form" not in html
        assert "<input" not in html and "javascript:" not in html
        assert not re.search(r"<[^>]+\son\w+\s*=", html)


def test_reasoning_shown_apart_and_collapsed_at_the_end() -> None:
    output = RecordingOutput()
    clock = Clock()
    view = LiveView(output, clock=clock)
    view.handle(RequestStarted(1, "m", True))
    view.handle(ReasoningDelta("Let me think about <b>this</b>."))
    assert "Thinking" in output.ops[-1][2]["text/html"]
    clock.now += 1
    view.handle(ContentDelta("42"))
    completion = Completion(content="42", reasoning="Let me think about <b>this</b>.", ended="done")
    view.handle(CompletionDone(completion))
    final = view.final_bundle(_reply(completion))
    assert "<details" in final["text/html"] and " open" not in final["text/html"]
    assert "&lt;b&gt;this&lt;/b&gt;" in final["text/html"]
    assert "Let me think" not in final["text/markdown"]


def test_tool_call_blocks_update_in_place_and_stay_in_the_final_output() -> None:
    output = RecordingOutput()
    clock = Clock()
    view = LiveView(output, clock=clock)
    view.handle(RequestStarted(1, "m", True))
    view.handle(ToolCallDelta(0, "c1", "get_weather", '{"city": '))
    clock.now += 1
    view.handle(ToolCallDelta(0, "c1", "get_weather", '"Paris"}'))
    call = ToolCall("c1", "get_weather", '{"city": "Paris"}')
    first = Completion(tool_calls=[call], ended="done", finish_reason="tool_calls")
    view.handle(CompletionDone(first))
    block_handle = output.ops[-1][1]
    view.handle(ToolCallStarted(call, {"city": "Paris"}))
    assert "running" in output.live[block_handle]["text/plain"]
    result = ToolResult(call, "Sunny, 21 °C", duration=0.02)
    view.handle(ToolCallFinished(result))
    assert "done in 0.02 s" in output.live[block_handle]["text/plain"]
    view.handle(RequestStarted(2, "m", True))
    clock.now += 1
    view.handle(ContentDelta("It is sunny."))
    second = Completion(content="It is sunny.", ended="done", finish_reason="stop")
    view.handle(CompletionDone(second))
    view.finish(Reply(text="It is sunny.", completions=[first, second], tool_results=[result]))
    final = output.ops[-1][2]
    html = final["text/html"]
    assert html.index("get_weather") < html.index("It is sunny.")
    assert "Sunny, 21 °C" in html and "2 requests" in final["text/plain"]


def test_finish_reasons_are_explained() -> None:
    view = LiveView(RecordingOutput(), clock=Clock(), max_tokens=50)
    cut = Completion(content="Half", ended="done", finish_reason="length")
    text = view.final_bundle(_reply(cut))["text/plain"]
    assert "cut off at max_tokens (50)" in text and "--max-tokens" in text
    thinking = Completion(content="", reasoning="...", ended="done", finish_reason="length")
    assert "thinking" in view.final_bundle(_reply(thinking))["text/plain"]
    blocked = Completion(content="", ended="done", finish_reason="content_filter")
    assert "safety system" in view.final_bundle(_reply(blocked))["text/plain"]
    odd = Completion(content="x", ended="done", finish_reason="eos_token_special")
    assert "finish_reason: eos_token_special" in view.final_bundle(_reply(odd))["text/plain"]
    normal = Completion(content="x", ended="done", finish_reason="stop")
    assert "finish_reason" not in view.final_bundle(_reply(normal))["text/plain"]


def test_footer_shows_model_usage_time_and_speed() -> None:
    view = LiveView(RecordingOutput(), clock=Clock())
    done = Completion(content="x", model="served-model", usage=Usage(120, 80, 200), ended="done")
    reply = _reply(done, elapsed=2.0, time_to_first_token=0.4)
    text = view.final_bundle(reply, conversation_usage=Usage(300, 100, 400))["text/plain"]
    assert "served-model · 120 in → 80 out · 2.0 s · 50.0 tok/s · conversation 400 tokens" in text


def test_error_and_notices_appear_under_the_partial_reply() -> None:
    view = LiveView(RecordingOutput(), clock=Clock())
    view.handle(Notice("Dropped the oldest turn."))
    partial = Completion(content="Half an", ended="incomplete")
    reply = _reply(partial, stopped="error")
    text = view.final_bundle(reply, error=RuntimeError("stream broke"))["text/plain"]
    assert text.startswith("Half an") and "Dropped the oldest turn." in text
    assert "✗ The reply stopped early" in text


def test_an_error_before_any_output_leaves_only_the_error_line() -> None:
    output = RecordingOutput()
    view = LiveView(output, clock=Clock())
    view.handle(RequestStarted(1, "m", True))
    view.finish(Reply(stopped="error"), error=RuntimeError("401"))
    assert output.ops[-1] == ("clear", 0, {}) and output.live == {}


def test_terminal_view_prints_tokens_as_they_arrive() -> None:
    stream = io.StringIO()
    view = TerminalView(stream)
    view.handle(ContentDelta("Hel"))
    assert stream.getvalue() == "Hel"
    view.handle(ContentDelta("lo"))
    done = Completion(content="Hello", ended="done", finish_reason="stop", usage=Usage(1, 2, 3))
    view.finish(_reply(done, elapsed=0.5))
    assert stream.getvalue().startswith("Hello\n") and "1 in → 2 out" in stream.getvalue()


def test_first_token_after_a_quiet_wait_is_shown_at_once() -> None:
    output = RecordingOutput()
    clock = Clock()
    view = LiveView(output, clock=clock, interval=0.1)
    view.handle(RequestStarted(1, "m", True))
    for _ in range(3):  # idle ticks while waiting for the first token
        clock.now += 0.1
        view.idle()
    clock.now += 0.01
    view.handle(ContentDelta("Hi"))
    assert "Hi" in output.ops[-1][2]["text/html"]


def test_our_own_lines_are_kept_from_mathjax_but_the_reply_is_not() -> None:
    """JupyterLab typesets $…$ in HTML outputs: "$0.02 · … $0.05" in a footer became a formula."""
    view = LiveView(RecordingOutput(), clock=Clock())
    view.handle(Notice("Costs are in $, from the prices you set."))
    done = Completion(content="Euler: $e^{i\\pi} = -1$", usage=Usage(120, 80, 200), ended="done")
    reply = _reply(done, elapsed=1.0, price=Price(2.0, 8.0), priced=True, conversation_cost=0.05)
    html = view.final_bundle(reply, conversation_usage=Usage(300, 100, 400))["text/html"]
    footer = re.search(r'<div class="tf-magics-footer ([^"]*)"[^>]*>([^<]*)</div>', html)
    assert footer is not None and footer.group(1) == NO_MATH
    assert footer.group(2).count("$") == 2  # this reply's cost and the conversation's
    note = re.search(r'<div class="tf-magics-note ([^"]*)"', html)
    assert note is not None and note.group(1) == NO_MATH
    content = re.search(r'<div class="tf-magics-content"', html)
    assert content is not None  # no class that would keep the reply's own math from rendering
    assert "$e^{i\\pi} = -1$" in html  # the reply's math is left for MathJax
