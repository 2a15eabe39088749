"""The panel's words and pictures: sampling hints, the usage chart, the compact history, summaries.

Pure functions (no widgets, no IPython), so they can be tested without a frontend and reused by
the text fallback. ipywidgets' ``HTML`` widget puts its value into the page as it is
(``innerHTML``), so everything that comes from a model, a tool or a person goes through
:func:`~tf_magics.render.escape`; only the fixed markup written here is trusted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tf_magics._text import one_line
from tf_magics.render import NO_MATH, escape

if TYPE_CHECKING:
    from tf_magics.conversation import Conversation
    from tf_magics.settings import ChatSettings
    from tf_magics.types import Message, Usage

__all__ = [
    "PANEL_CSS",
    "compact_history_html",
    "conversation_summary_html",
    "hint_html",
    "panel_message_html",
    "sampling_hint",
    "settings_summary",
    "usage_chart_svg",
]

_MUTED = "color:var(--jp-ui-font-color2,#666)"
_PREVIEW_CHARS = 140
_SYSTEM_PREVIEW_CHARS = 300

#: The panel's stylesheet, scoped to ``.tf-magics-panel`` (fixed text, no user content).
PANEL_CSS = """
<style>
.tf-magics-panel {
  border: 1px solid var(--jp-border-color2, #ddd); border-radius: 8px;
  padding: 10px 14px 8px; background: var(--jp-layout-color0, #fff);
  box-shadow: 0 1px 3px rgba(0, 0, 0, 0.06);
}
.tf-magics-panel .tf-title { font-size: 14px; font-weight: 600; }
.tf-magics-panel .tf-sub { font-size: 11.5px; color: var(--jp-ui-font-color2, #666); }
.tf-magics-panel .tf-section {
  font-size: 11px; font-weight: 600; letter-spacing: 0.06em; text-transform: uppercase;
  color: var(--jp-ui-font-color2, #666); margin: 6px 0 2px;
}
.tf-magics-panel .tf-column { padding: 0 4px; }
.tf-magics-panel .tf-hint { font-size: 11.5px; line-height: 1.35; min-height: 2.7em; }
.tf-magics-panel .tf-history {
  font-size: 12px; line-height: 1.4; max-height: 170px; overflow-y: auto; overflow-x: hidden;
  border: 1px solid var(--jp-border-color2, #ddd); border-radius: 4px; padding: 4px 8px;
  background: var(--jp-layout-color1, #fafafa);
}
.tf-magics-panel .tf-history .tf-row {
  white-space: nowrap; overflow: hidden; text-overflow: ellipsis;
}
.tf-magics-panel .tf-tag {
  display: inline-block; min-width: 46px; margin-right: 6px; font-size: 10.5px; font-weight: 600;
  color: var(--jp-ui-font-color2, #666);
}
.tf-magics-panel .tf-tag-user { color: var(--jp-brand-color1, #1976d2); }
.tf-magics-panel .tf-tag-assistant { color: var(--jp-success-color1, #388e3c); }
.tf-magics-panel .tf-tag-tool { color: var(--jp-warn-color1, #f57c00); }
.tf-magics-panel .tf-usage { font-size: 12px; }
.tf-magics-panel .tf-status { font-size: 12px; min-height: 1.4em; }
.tf-magics-panel .widget-html-content { flex: 1 1 auto; min-width: 0; }
.tf-magics-panel .tf-label { justify-content: flex-end; padding-right: 8px; }
.tf-magics-panel .tf-magics-stop {
  display: flex; flex-wrap: wrap; align-items: center; min-width: 0; flex: 1 1 0%;
}
.tf-magics-panel .tf-magics-stop .widget-text { flex: 1 1 120px; min-width: 0; }
.tf-magics-panel .tf-magics-stop .widget-text input {
  width: calc(100% - 4px); box-sizing: border-box;
}
.tf-magics-panel textarea {
  font-family: var(--jp-ui-font-family, sans-serif); font-size: 13px; line-height: 1.45;
}
</style>
"""


def sampling_hint(temperature: float | None, top_p: float | None) -> tuple[str, str]:
    """Advice for the current sampling settings, as ``(level, text)``.

    ``level`` is ``"warning"`` when both temperature and top_p are set (change one, not both),
    otherwise ``"info"``.
    """
    if temperature is not None and top_p is not None:
        return (
            "warning",
            "Both temperature and top_p are set: change one of them, not both — "
            "put the other back to the server default.",
        )
    if temperature is not None:
        if temperature <= 0.3:
            kind = "focused, near-deterministic: good for code, extraction and grading"
        elif temperature < 0.7:
            kind = "balanced"
        elif temperature <= 1.0:
            kind = "creative: brainstorming, stories, varied wording"
        else:
            kind = "very random: above 1.0 replies may wander off"
        return "info", f"Temperature {temperature:g} — {kind}."
    if top_p is not None:
        return (
            "info",
            f"top_p {top_p:g} — samples only from the most likely tokens that make up "
            f"{top_p:.0%} of the probability; lower is more focused.",
        )
    return (
        "info",
        "Server defaults. Temperature 0 to 0.3 for deterministic work, 0.7 to 1.0 for creative "
        "work; change temperature or top_p, not both.",
    )


def hint_html(level: str, text: str) -> str:
    """A hint line; warnings in the theme's warning colour."""
    colour = (
        "var(--jp-warn-color0,#b9770e)" if level == "warning" else "var(--jp-ui-font-color2,#666)"
    )
    icon = "⚠ " if level == "warning" else ""
    return f'<div class="tf-hint" style="color:{colour}">{icon}{escape(text)}</div>'


def panel_message_html(level: str, text: str) -> str:
    """The panel's status line (what the last action did, or what went wrong)."""
    colours = {
        "error": "var(--jp-error-color1,#c0392b)",
        "warning": "var(--jp-warn-color0,#b9770e)",
        "ok": "var(--jp-success-color1,#2e7d32)",
    }
    colour = colours.get(level, "var(--jp-ui-font-color2,#666)")
    return f'<div class="tf-status" style="color:{colour}">{escape(text)}</div>'


def _short_number(value: int) -> str:
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    if value >= 1_000:
        return f"{value / 1000:.1f}k"
    return str(value)


def usage_chart_svg(
    usages: Sequence[Usage | None],
    *,
    costs: Sequence[str | None] = (),
    total_cost: str | None = None,
    width: int = 520,
    height: int = 100,
) -> str:
    """A bar chart of prompt tokens (and completion tokens on top) per turn, as inline SVG.

    Every turn re-sends the whole history, so the prompt bars grow turn after turn: the chart
    makes that bill visible. Turns whose usage was not reported get a grey stub.

    Parameters
    ----------
    usages
        One entry per turn (``Conversation.usage_by_turn()``).
    costs
        Each turn's cost, already formatted (``None``: unknown), shown in its bar's tooltip.
    total_cost
        The conversation's cost so far, formatted, shown in the chart's title.
    width, height
        The drawing's size in CSS pixels (it scales to the width of its box).
    """
    if not usages:
        return (
            f'<div style="{_MUTED};font-size:12px;padding:6px 0">'
            "Token usage per turn appears here after the first reply.</div>"
        )
    left, right, top, bottom = 34, 6, 14, 14
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [(u.prompt_tokens or 0) + (u.completion_tokens or 0) if u else 0 for u in usages]
    peak = max(max(totals), 1)
    slot = min(plot_w / len(usages), 44.0)  # few turns: bars side by side, growing rightwards
    bar = max(1.0, min(26.0, slot * 0.7))
    label_every = max(1, round(len(usages) / 12))
    parts = _chart_frame(width, height, left, right, top, plot_h, peak, total_cost)
    for index, usage in enumerate(usages):
        x = left + index * slot + (slot - bar) / 2
        cost = costs[index] if index < len(costs) else None
        parts.append(_bar(index + 1, usage, x, bar, top + plot_h, plot_h / peak, cost))
        if (index + 1) % label_every == 0 or index == 0:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{height - 3}" text-anchor="middle" '
                f'style="fill:var(--jp-ui-font-color2,#666)">{index + 1}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _chart_frame(
    width: int,
    height: int,
    left: int,
    right: int,
    top: int,
    plot_h: int,
    peak: int,
    total_cost: str | None,
) -> list[str]:
    """The chart's opening tag, title, legend and axis: everything but the bars."""
    return [
        f'<svg class="tf-magics-chart" viewBox="0 0 {width} {height}" width="100%" '
        f'height="{height}" preserveAspectRatio="xMinYMin meet" role="img" '
        'aria-label="prompt tokens per turn" style="font-family:inherit;font-size:9px">',
        f'<text x="{left}" y="9" style="fill:var(--jp-ui-font-color2,#666)">tokens per turn'
        + (f" · {escape(total_cost)} so far" if total_cost else "")
        + "</text>",
        f'<rect x="{width - 124}" y="3" width="8" height="8" '
        'style="fill:var(--jp-brand-color1,#1976d2)"/>'
        f'<text x="{width - 113}" y="10" style="fill:var(--jp-ui-font-color2,#666)">prompt</text>'
        f'<rect x="{width - 74}" y="3" width="8" height="8" '
        'style="fill:var(--jp-brand-color3,#90caf9)"/>'
        f'<text x="{width - 63}" y="10" style="fill:var(--jp-ui-font-color2,#666)">'
        "completion</text>",
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" '
        'style="stroke:var(--jp-border-color1,#bbb)"/>',
        f'<text x="{left - 4}" y="{top + 7}" text-anchor="end" '
        f'style="fill:var(--jp-ui-font-color2,#666)">{_short_number(peak)}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end" '
        'style="fill:var(--jp-ui-font-color2,#666)">0</text>',
    ]


def _bar(
    number: int,
    usage: Usage | None,
    x: float,
    width: float,
    base: float,
    scale: float,
    cost: str | None = None,
) -> str:
    """One turn's stacked bar (prompt below, completion above), with a tooltip."""
    if usage is None or (usage.prompt_tokens is None and usage.completion_tokens is None):
        return (
            f'<rect x="{x:.1f}" y="{base - 3}" width="{width:.1f}" height="3" '
            f'style="fill:var(--jp-layout-color3,#bbb)"><title>Turn {number}: usage not '
            "reported</title></rect>"
        )
    prompt, completion = usage.prompt_tokens or 0, usage.completion_tokens or 0
    prompt_h, completion_h = prompt * scale, completion * scale
    priced = f", {escape(cost)}" if cost else ""
    counts = f"{prompt:,} prompt + {completion:,} completion tokens"
    tip = f"<title>Turn {number}: {counts}{priced}</title>"
    return (
        f'<g><rect x="{x:.1f}" y="{base - prompt_h:.1f}" width="{width:.1f}" '
        f'height="{prompt_h:.1f}" style="fill:var(--jp-brand-color1,#1976d2)"/>'
        f'<rect x="{x:.1f}" y="{base - prompt_h - completion_h:.1f}" width="{width:.1f}" '
        f'height="{completion_h:.1f}" style="fill:var(--jp-brand-color3,#90caf9)"/>{tip}</g>'
    )


_MARKUP = re.compile(r"^\s{0,3}(?:#{1,6}\s+|[-*+]\s+|\d+[.)]\s+|>\s?)|```\w*|\*\*|__|`", re.M)


def _preview(text: str, limit: int = _PREVIEW_CHARS) -> str:
    """One line of plain text: Markdown markers dropped, whitespace folded, cut at ``limit``."""
    return one_line(_MARKUP.sub("", text), limit)


def _usage_text(usage: Usage | None) -> str:
    if usage is None or (usage.prompt_tokens is None and usage.completion_tokens is None):
        return "usage not reported"
    return f"{usage.prompt_tokens or 0:,} in → {usage.completion_tokens or 0:,} out"


def _row(tag: str, css: str, body: str, title: str = "") -> str:
    tip = f' title="{escape(title)}"' if title else ""
    return (
        f'<div class="tf-row"{tip}><span class="tf-tag tf-tag-{css}">{escape(tag)}</span>'
        f"{body}</div>"
    )


def _message_row(message: Message) -> str:
    if message.role == "tool":
        body = (
            f"<code>{escape(message.name or 'tool')}</code> → {escape(_preview(message.content))}"
        )
        return _row("tool", "tool", body, message.content[:1000])
    if message.role == "assistant":
        calls = ", ".join(f"{call.name}(…)" for call in message.tool_calls)
        text = _preview(message.content) if message.content else ""
        body = escape(text) + (f" <code>{escape(calls)}</code>" if calls else "")
        if message.partial:
            body += f' <span style="{_MUTED}">(interrupted)</span>'
        return _row("model", "assistant", body, message.content[:1000])
    return _row("you", "user", escape(_preview(message.content)), message.content[:1000])


def compact_history_html(conversation: Conversation) -> str:
    """The conversation, one short line per message, with token counts per turn."""
    rows: list[str] = []
    if conversation.system:
        rows.append(
            _row("system", "system", escape(_preview(conversation.system)), conversation.system)
        )
    turns = conversation.turns()
    for number, turn in enumerate(turns, 1):
        rows.append(
            f'<div style="{_MUTED};font-size:10.5px;margin-top:3px">turn {number} · '
            f"{escape(_usage_text(turn.usage))}</div>"
        )
        rows.extend(_message_row(message) for message in turn.messages)
    if not turns:
        rows.append(f'<div style="{_MUTED}">No messages yet: run a <code>%%chat</code> cell.</div>')
    return f'<div class="tf-history">{"".join(rows)}</div>'


def conversation_summary_html(conversation: Conversation) -> str:
    """One line: turns, size of the next request, tokens used so far."""
    turns = len(conversation.turns())
    usage = conversation.usage
    parts = [
        f"<b>{turns}</b> turn{'s' if turns != 1 else ''}",
        f"next request ≈ <b>{conversation.estimate_tokens():,}</b> tokens",
    ]
    if usage.total_tokens:
        parts.append(
            f"used <b>{usage.total_tokens:,}</b> tokens "
            f"({usage.prompt_tokens or 0:,} in / {usage.completion_tokens or 0:,} out)"
        )
    else:
        parts.append("no usage reported yet")
    return f'<div class="tf-usage">{" · ".join(parts)}</div>'


def _shown(name: str, value: Any) -> str:
    if value is None:
        return "(the server's first model)" if name == "model" else "(server default)"
    if name == "stop" and isinstance(value, list):
        return ", ".join(repr(s) for s in value) or "(none)"
    return str(value)


def settings_summary(settings: ChatSettings, conversation: Conversation) -> tuple[str, str]:
    """A readable summary of the panel for where widgets cannot render: ``(text, html)``.

    The API key appears only as its status (``settings.summary()`` never includes it).
    """
    rows = [(name, _shown(name, value)) for name, value in settings.summary().items()]
    system = conversation.system
    rows.append(
        ("system", _preview(system, _SYSTEM_PREVIEW_CHARS) if system else "(no system prompt)")
    )
    turns = len(conversation.turns())
    title = f"tf_magics panel — conversation {conversation.name!r} ({turns} turns)"
    text = "\n".join([title, *(f"  {name:<18} {value}" for name, value in rows)])
    cells = "".join(
        f'<tr><td style="text-align:left;padding-right:1em"><code>{escape(name)}</code></td>'
        f'<td style="text-align:left">{escape(value)}</td></tr>'
        for name, value in rows
    )
    html = (
        f'<div class="tf-magics-panel-summary {NO_MATH}"><div><b>{escape(title)}</b></div>'
        f"<table>{cells}</table>"
        f'<div style="{_MUTED};font-size:0.85em">The interactive panel needs a live kernel '
        "with ipywidgets; this is the state when it was shown.</div></div>"
    )
    return text, html
