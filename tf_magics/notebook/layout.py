"""The words and markup around a reply: status lines, tool-call blocks, notes and the footer.

Pure functions (no IPython): the live view and the history view assemble their outputs from
these. Model output and tool results are untrusted and always go through :func:`render_markdown`
(sanitized) or :func:`escape`; only the fixed wrapper markup written here is trusted.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from tf_magics._text import one_line, truncate
from tf_magics.cost import format_money
from tf_magics.events import Notice, Retrying, StreamFallback
from tf_magics.render import NO_MATH, escape
from tf_magics.reply import Reply
from tf_magics.types import Replayed, ToolCall, ToolResult, Usage

__all__ = [
    "BOX",
    "MUTED",
    "ToolBlock",
    "finish_note",
    "footer_text",
    "notes_html",
    "reasoning_html",
    "replay_text",
    "status_line_html",
    "waiting_words",
]

_PREVIEW_CHARS = 600
_ARGS_PREVIEW = 2_000

# Inline styles only: they survive a notebook saved and viewed elsewhere, and need no stylesheet.
MUTED = "color:var(--jp-ui-font-color2,#666);font-size:0.85em"
BOX = (
    "border:1px solid var(--jp-border-color2,#ddd);border-radius:4px;"
    "padding:2px 8px;margin:4px 0;font-size:0.9em"
)
_MUTED = MUTED
_BOX = BOX
_STATUS_ICONS = {
    "streaming": "⋯",
    "running": "⏳",
    "ok": "✓",
    "error": "✗",
    "declined": "⊘",
    "skipped": "⊘",
}


def status_line_html(text: str) -> str:
    """A muted one-line status (waiting, retrying...)."""
    return f'<div class="tf-magics-status {NO_MATH}" style="{_MUTED}">{escape(text)}</div>'


def reasoning_html(text: str, *, streaming: bool = False) -> str:
    """The model's reasoning, collapsed (open while it streams), shown apart from the answer."""
    label = "Thinking…" if streaming else f"Reasoning ({len(text):,} characters)"
    body = escape(text[-_ARGS_PREVIEW:] if streaming else text)
    opened = " open" if streaming else ""
    return (
        f'<details class="tf-magics-reasoning"{opened} style="{_BOX}">'
        f'<summary style="{_MUTED}">{label}</summary>'
        f'<div style="white-space:pre-wrap;{_MUTED}">{body}</div></details>'
    )


@dataclass
class ToolBlock:
    """What the view knows about one tool call, from its first fragment to its result."""

    name: str = ""
    arguments: str = ""
    status: str = "streaming"
    result: ToolResult | None = None
    captured: list[Any] = field(default_factory=list)

    @classmethod
    def from_result(cls, result: ToolResult) -> ToolBlock:
        """A finished block (for history views)."""
        return cls(
            name=result.call.name,
            arguments=result.call.arguments,
            status=result.status,
            result=result,
        )

    def update_call(self, call: ToolCall) -> None:
        """Take the final name and arguments of the call."""
        self.name, self.arguments = call.name, call.arguments

    def pretty_arguments(self) -> str:
        """The arguments as indented JSON (as received when they are not valid JSON)."""
        try:
            return json.dumps(json.loads(self.arguments or "{}"), indent=2, ensure_ascii=False)
        except ValueError:
            return self.arguments

    def summary(self) -> str:
        """One line: icon, name, short arguments, status and duration."""
        args = one_line(self.arguments, 80)
        line = f"{_STATUS_ICONS.get(self.status, '?')} {self.name or '(tool)'}({args})"
        if self.result is not None:
            word = {"ok": "done", "error": "error", "declined": "declined", "skipped": "not run"}
            line += f" — {word.get(self.result.status, self.result.status)}"
            if self.result.status in ("ok", "error"):
                line += f" in {self.result.duration:.2f} s"
        elif self.status == "running":
            line += " — running…"
        return line

    def html(self) -> str:
        """A collapsible block: summary line, pretty arguments and a preview of the result."""
        colour = {"error": "#c0392b", "declined": "#b9770e", "skipped": "#b9770e"}.get(
            self.status, "inherit"
        )
        parts = [
            f'<details class="tf-magics-tool tf-magics-tool-{escape(self.status)}" style="{_BOX}">',
            # JupyterLab colours code elements itself: the status colour must be set on it.
            f'<summary style="color:{colour}">'
            f'<code style="color:{colour}">{escape(self.summary())}</code></summary>',
            f'<div style="{_MUTED}">Arguments</div>',
            f"<pre>{escape(truncate(self.pretty_arguments(), _ARGS_PREVIEW, count=True))}</pre>",
        ]
        if self.result is not None:
            parts.append(f'<div style="{_MUTED}">Result</div>')
            parts.append(
                f"<pre>{escape(truncate(self.result.content, _PREVIEW_CHARS, count=True))}</pre>"
            )
            if self.result.note:
                parts.append(f'<div style="{_MUTED}">{escape(self.result.note)}</div>')
        parts.append("</details>")
        return "".join(parts)

    def markdown(self) -> str:
        """The block as Markdown (for the ``text/markdown`` of a saved output)."""
        lines = [f"> 🔧 `{self.summary()}`"]
        if self.result is not None:
            preview = truncate(self.result.content, _PREVIEW_CHARS, count=True).replace("\n", " ")
            lines.append(f">\n> Result: `{preview}`")
        return "\n".join(lines)

    def text(self) -> str:
        """The block as plain text."""
        line = f"[tool] {self.summary()}"
        if self.result is not None:
            preview = truncate(self.result.content, 200, count=True).replace("\n", " ")
            line += f"\n       → {preview}"
        return line


def waiting_words(
    event: Retrying | StreamFallback | Notice,
) -> tuple[tuple[str, str] | None, str | None]:
    """What an event about the wait adds: a note kept under the reply, and the status line.

    A status that does not start with ``⏳`` only replaces a status already shown.
    """
    if isinstance(event, Retrying):
        return None, (
            f"⏳ {event.reason} — retrying in {event.delay:.1f} s "
            f"(retry {event.attempt} of {event.max_attempts})…"
        )
    if isinstance(event, StreamFallback):
        return (
            ("info", f"Sent again without streaming: {event.reason}."),
            "⏳ The server cannot stream this request; asking without streaming…",
        )
    if event.kind == "progress":
        return None, f"⏳ {event.text}"
    return ("warning" if event.kind == "warning" else "info", event.text), event.text


def finish_note(reply: Reply, *, max_tokens: int | None) -> tuple[str, str] | None:
    """What to say about how the reply ended: ``(level, text)``, or ``None`` for a normal stop."""
    finish = reply.finish_kind
    if reply.stopped == "interrupted":
        return ("warning", "⏹ Interrupted: the partial reply is kept in the history.")
    if finish == "length":
        cap = f" ({max_tokens:,})" if max_tokens else ""
        if not reply.text and reply.reasoning:
            return (
                "warning",
                f"⚠ The model spent the whole max_tokens budget{cap} thinking and gave no answer: "
                "raise it with --max-tokens or ChatSettings.max_tokens.",
            )
        return (
            "warning",
            f"⚠ The reply was cut off at max_tokens{cap}. Ask it to continue in the next cell, "
            "or raise the cap with --max-tokens or ChatSettings.max_tokens.",
        )
    if finish == "content_filter":
        return (
            "warning",
            "⚠ The provider's safety system blocked the output (finish_reason: content_filter). "
            "Rephrase the request.",
        )
    if finish == "other":
        return ("info", f"finish_reason: {reply.finish_reason}")
    if finish is None and reply.completions and not reply.partial:
        return ("info", "The server did not say why the reply ended.")
    return None


def _usage_text(usage: Usage | None) -> str:
    if usage is None or (usage.prompt_tokens is None and usage.completion_tokens is None):
        return "usage not reported"
    text = f"{usage.prompt_tokens or 0:,} in → {usage.completion_tokens or 0:,} out"
    if usage.reasoning_tokens:
        text += f" ({usage.reasoning_tokens:,} reasoning)"
    return text


def footer_text(
    reply: Reply,
    *,
    conversation_usage: Usage | None = None,
    model_note: str | None = None,
) -> str:
    """The footer line: model, tokens in/out, time, tokens/s, conversation total."""
    model = reply.model or reply.requested_model or "model not reported"
    replayed = reply.replayed
    note = model_note or reply.model_note or (replayed.model_note if replayed else None)
    if note and reply.requested_model:
        model = reply.requested_model  # the local server reports its file path instead
    if model.endswith(".gguf"):
        model = model.replace("\\", "/").rsplit("/", 1)[-1]
    parts = [f"{model} ({note})" if note else model]
    parts.append(_usage_text(reply.usage))
    if reply.cost is not None and (reply.cost > 0 or reply.priced):
        parts.append(format_money(reply.cost, reply.currency))
    elif reply.priced and reply.usage is not None:
        parts.append(f"cost unknown (no price for {model})")
    parts.append(f"{reply.elapsed:.1f} s")
    speed = reply.tokens_per_second
    if speed is not None:
        parts.append(f"{speed:,.1f} tok/s")
    rounds = len(reply.completions)
    if rounds > 1:
        parts.append(f"{rounds} requests")
    if conversation_usage is not None and conversation_usage.total_tokens:
        total = f"conversation {conversation_usage.total_tokens:,} tokens"
        if reply.conversation_cost is not None:
            total += f", {format_money(reply.conversation_cost, reply.currency)}"
        parts.append(total)
    if reply.key_source:
        parts.append(f"key: {reply.key_source}")
    if replayed is not None:
        parts.append(replay_text(reply, replayed))
    return " · ".join(parts)


def replay_text(reply: Reply, replayed: Replayed) -> str:
    """Where a replayed reply comes from: ``replayed, recorded 2025-06-01 09:30 UTC from X``."""
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(replayed.recorded_at))
    source = replayed.model or "a model that did not say its name"
    if replayed.server and replayed.server != "local":
        source += f" at {replayed.server}"
    rounds, replayed_rounds = len(reply.completions), reply.replayed_requests
    what = "replayed" if replayed_rounds == rounds else f"{replayed_rounds} of {rounds} replayed"
    return f"↺ {what}, recorded {when} from {source}"


def notes_html(notes: list[tuple[str, str]]) -> str:
    """Warning and info lines under a reply."""
    colours = {"warning": "#b9770e", "error": "#c0392b", "info": "inherit"}
    return "".join(
        f'<div class="tf-magics-note {NO_MATH}" '
        f'style="{_MUTED};color:{colours.get(level, "inherit")}">'
        f"{escape(text)}</div>"
        for level, text in notes
    )


def footer_html(text: str) -> str:
    """The footer line in muted type."""
    return (
        f'<div class="tf-magics-footer {NO_MATH}" style="{_MUTED};margin-top:4px">'
        f"{escape(text)}</div>"
    )
