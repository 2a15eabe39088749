"""A conversation shown in full: turns, tool calls and their results, token counts.

Pure (no IPython): ``%chat history`` displays it; the HTML is built from escaped text and
sanitized Markdown only.
"""

from __future__ import annotations

from tf_magics.attachment import Attachment
from tf_magics.conversation import Conversation
from tf_magics.cost import format_money
from tf_magics.render import NO_MATH, escape, render_markdown

from .attachments_view import attachments_html, attachments_text
from .layout import ToolBlock, footer_html

__all__ = ["history_view"]


def history_view(conversation: Conversation, currency: str = "$") -> tuple[str, str]:
    """The rendered history (HTML, sanitized) and a plain-text version."""
    turns = conversation.turns()
    usage = conversation.usage
    header = (
        f"Conversation {conversation.name!r}: {len(turns)} turns, "
        f"~{conversation.estimate_tokens():,} tokens in the next request"
    )
    if usage.total_tokens:
        header += f", {usage.total_tokens:,} tokens used so far"
        if conversation.cost is not None:
            header += f" ({format_money(conversation.cost, currency)})"
    html = [f'<div class="{NO_MATH}"><b>{escape(header)}</b></div>']
    text = [header]
    if conversation.system:
        html.append(
            f'<div style="border-left:3px solid #888;padding-left:8px"><i>system</i>: '
            f"{escape(conversation.system)}</div>"
        )
        text.append(f"[system] {conversation.system}")
    for number, turn in enumerate(turns, 1):
        turn_usage = turn.usage
        counts = (
            f"{turn_usage.prompt_tokens or 0:,} in → {turn_usage.completion_tokens or 0:,} out"
            if turn_usage is not None
            else "usage not reported"
        )
        if turn.cost is not None:
            counts += f" · {format_money(turn.cost, currency)}"
        html.append(f'<hr><div class="{NO_MATH}"><b>Turn {number}</b> · {escape(counts)}</div>')
        text.append(f"--- turn {number} ({counts})")
        results = {m.tool_call_id: m for m in turn.replies if m.role == "tool"}
        for message in turn.messages:
            if message.role == "tool":
                continue
            label = message.role + (" (partial)" if message.partial else "")
            html.append(f"<div><i>{escape(label)}</i></div>")
            attached = Attachment.from_parts(message.parts)
            if attached:  # what went with the question, collapsed, as it was sent
                html.append(attachments_html(attached))
                text.append(f"[{label}] {attachments_text(attached)}")
            html.append(render_markdown(message.content) if message.content else "")
            text.append(f"[{label}] {message.content}")
            for call in message.tool_calls:
                result = results.get(call.id)
                block = ToolBlock(name=call.name, arguments=call.arguments, status="skipped")
                if result is not None:
                    from tf_magics.types import ToolResult

                    block.status = "error" if result.is_error else "ok"
                    block.result = ToolResult(
                        call=call,
                        content=result.content,
                        status="error" if result.is_error else "ok",
                    )
                html.append(block.html())
                text.append(block.text())
            if message.note:
                html.append(footer_html(message.note))
    return "".join(html), "\n".join(text)
