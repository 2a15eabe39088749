"""A comparison on screen: one column per variant (HTML), one after another (text), pure.

While the variants run, each column shows its label, what it is doing and the end of its text so
far (escaped, not rendered: cheap to redraw). At the end each column holds the rendered reply
(sanitized), its notes, its error and its footer; ``text/plain`` and ``text/markdown`` give the
replies one after another, so a saved notebook and a terminal read well.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tf_magics.engine.compare import Comparison, Variant
from tf_magics.render import NO_MATH, escape, markdown_images_as_links, render_markdown
from tf_magics.reply import Reply

from .layout import MUTED, finish_note, footer_text, notes_html
from .outputs import Bundle

__all__ = ["KEEP_HINT", "VariantState", "comparison_bundle", "live_bundle"]

_ROW = "display:flex;gap:12px;align-items:stretch;overflow-x:auto;margin:4px 0"
_COLUMN = (
    "flex:1 1 0;min-width:240px;border:1px solid var(--jp-border-color2,#ddd);"
    "border-radius:4px;padding:4px 10px"
)
_TAIL_CHARS = 1_500

#: What the user can do with a comparison.
KEEP_HINT = "None of these replies is in the history: `%chat keep N` keeps reply N."


@dataclass
class VariantState:
    """What one column shows while its variant runs."""

    label: str
    status: str = "waiting…"
    text: str = ""
    reasoning: int = 0
    notices: list[tuple[str, str]] = field(default_factory=list)


def _footer(text: str) -> str:
    return f'<div class="{NO_MATH}" style="{MUTED};margin-top:4px">{escape(text)}</div>'


def _header(number: int, label: str) -> str:
    return f"<div><b>{number}</b> · <code>{escape(label)}</code></div>"


def live_bundle(states: list[VariantState]) -> Bundle:
    """The columns while the variants run: status and the end of each text so far."""
    columns = []
    lines = []
    for number, state in enumerate(states, 1):
        tail = state.text[-_TAIL_CHARS:]
        cut = "…" if len(state.text) > _TAIL_CHARS else ""
        columns.append(
            f'<div style="{_COLUMN}">{_header(number, state.label)}'
            f'<div class="{NO_MATH}" style="{MUTED}">{escape(state.status)}</div>'
            f'<div style="white-space:pre-wrap">{escape(cut + tail)}</div></div>'
        )
        lines.append(f"{number} · {state.label}: {state.status} ({len(state.text):,} characters)")
    html = f'<div class="tf-magics-compare" style="{_ROW}">{"".join(columns)}</div>'
    return {"text/html": html, "text/plain": "\n".join(lines)}


def _error_text(variant: Variant) -> str | None:
    if variant.error is None:
        return None
    if isinstance(variant.error, KeyboardInterrupt):
        return "⏹ Interrupted."
    return f"✗ {type(variant.error).__name__}: {variant.error}"


def _notes(variant: Variant, state: VariantState, max_tokens: int | None) -> list[tuple[str, str]]:
    notes = list(state.notices)
    if variant.reply is not None and variant.error is None:
        ending = finish_note(variant.reply, max_tokens=max_tokens)
        if ending is not None:
            notes.append(ending)
    error = _error_text(variant)
    if error is not None:
        notes.append(("error", error))
    return notes


def comparison_bundle(
    comparison: Comparison,
    states: list[VariantState],
    *,
    max_tokens: int | None = None,
    preamble: tuple[str, str, str] | None = None,
    hint: str | None = KEEP_HINT,
    remote_images: bool = False,
) -> Bundle:
    """The final output: rendered replies side by side (HTML), one after another (text)."""
    html, markdown, plain = [], [], []
    if preamble is not None:
        html.append(preamble[0])
        markdown.append(preamble[1])
        plain.append(preamble[2])
    columns = []
    for number, (variant, state) in enumerate(zip(comparison.variants, states, strict=True), 1):
        reply = variant.reply if variant.reply is not None else Reply()
        notes = _notes(variant, state, max_tokens)
        footer = footer_text(reply) if reply.completions else ""
        body = render_markdown(reply.text, remote_images=remote_images) if reply.text else ""
        columns.append(
            f'<div style="{_COLUMN}">{_header(number, variant.label)}'
            f'<div class="tf-magics-content">{body}</div>{notes_html(notes)}'
            + (_footer(footer) if footer else "")
            + "</div>"
        )
        lines = [text for _, text in notes] + ([footer] if footer else [])
        plain.append("\n".join([f"── {number} · {variant.label} ──", reply.text, *lines]))
        markdown.append(
            "\n\n".join(
                [
                    f"**{number} · `{variant.label}`**",
                    reply.text if remote_images else markdown_images_as_links(reply.text),
                ]
                + [f"*{escape(line)}*" for line in lines]
            )
        )
    html.append(f'<div class="tf-magics-compare" style="{_ROW}">{"".join(columns)}</div>')
    if hint:
        html.append(f'<div style="{MUTED}">{escape(hint)}</div>')
        plain.append(hint)
        markdown.append(f"*{escape(hint)}*")
    return {
        "text/html": f'<div class="tf-magics-reply">{"".join(html)}</div>',
        "text/markdown": "\n\n".join(markdown),
        "text/plain": "\n\n".join(plain),
    }
