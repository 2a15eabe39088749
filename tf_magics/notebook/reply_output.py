"""The one output a finished reply leaves in its cell: HTML, Markdown and plain text.

Reasoning (collapsed), the answer, one block per tool call, the notes on how the turn went and
the footer. ``text/markdown`` makes a saved notebook read well on GitHub and nbviewer, and
``text/plain`` is what terminal IPython prints.
"""

from __future__ import annotations

from collections.abc import Callable

from tf_magics.errors import StructuredOutputError
from tf_magics.render import escape, markdown_images_as_links
from tf_magics.reply import Reply
from tf_magics.types import Usage

from .attachments_view import attachments_bundle
from .layout import ToolBlock, finish_note, footer_html, footer_text, notes_html, reasoning_html
from .outputs import Bundle
from .value_view import raw_answer_html, value_html, value_markdown, value_text

__all__ = ["reply_bundle"]


def reply_bundle(
    reply: Reply,
    *,
    notices: list[tuple[str, str]],
    max_tokens: int | None,
    error: BaseException | None,
    conversation_usage: Usage | None,
    content_html: Callable[[int, str], str],
    remote_images: bool = False,
) -> Bundle:
    """The consolidated output of a turn.

    Parameters
    ----------
    reply
        The turn's reply (possibly partial).
    notices
        ``(level, text)`` lines gathered while it ran (retries, fallbacks...).
    max_tokens
        The cap in force, quoted when the reply was cut off.
    error
        What ended the turn early, if anything (it is shown below the output).
    conversation_usage
        The conversation's running total for the footer (``None``: not shown).
    content_html
        The sanitized HTML of the content of the completion at a position (the live view
        reuses what it rendered while streaming).
    remote_images
        Keep remote images in the saved Markdown (off: written as links, as in the HTML).

    Values attached to the question (``reply.attachments``) are shown first, collapsed.
    """
    structured = reply.schema_name is not None
    html, markdown, plain = _rounds(reply, content_html, remote_images, contents=not structured)
    if structured:
        _add_value(reply, error, html, markdown, plain)
    if reply.attachments:
        for shown, form in zip(
            (html, markdown, plain), attachments_bundle(reply.attachments), strict=True
        ):
            shown.insert(0, form)
    html.insert(0, '<div class="tf-magics-reply">')
    notes = _notes(reply, notices, max_tokens, error)
    html.append(notes_html(notes))
    footer = footer_text(reply, conversation_usage=conversation_usage)
    if reply.completions:
        html.append(footer_html(footer))
    html.append("</div>")
    note_lines = [text for _, text in notes]
    if reply.completions:
        note_lines.append(footer)
    markdown.extend(f"*{escape(line)}*" for line in note_lines)
    plain.extend(note_lines)
    return {
        "text/plain": "\n\n".join(plain),
        "text/markdown": "\n\n".join(markdown),
        "text/html": "".join(html),
    }


def _notes(
    reply: Reply,
    notices: list[tuple[str, str]],
    max_tokens: int | None,
    error: BaseException | None,
) -> list[tuple[str, str]]:
    """The lines under the reply: what was noticed, how it ended, and an error if any."""
    notes = list(notices)
    ending = finish_note(reply, max_tokens=max_tokens)
    if ending is not None:
        notes.append(ending)
    if error is not None and reply.stopped != "interrupted":
        notes.append(_error_note(error))
    return notes


def _error_note(error: BaseException) -> tuple[str, str]:
    if isinstance(error, StructuredOutputError):
        return ("error", "✗ The answer does not fit the schema: the error is below.")
    return ("error", "✗ The reply stopped early: the error is below.")


def _add_value(
    reply: Reply,
    error: BaseException | None,
    html: list[str],
    markdown: list[str],
    plain: list[str],
) -> None:
    """A structured reply's value (a table, or JSON); the raw answer when it did not fit."""
    if error is None:
        html.append(f'<div class="tf-magics-content">{value_html(reply.value)}</div>')
        markdown.append(value_markdown(reply.value))
        plain.append(value_text(reply.value))
    elif reply.text:
        html.append(f'<div class="tf-magics-content">{raw_answer_html(reply.text)}</div>')
        markdown.append(f"```\n{reply.text.replace('```', '` ` `')}\n```")
        plain.append(reply.text)


def _rounds(
    reply: Reply,
    content_html: Callable[[int, str], str],
    remote_images: bool,
    *,
    contents: bool = True,
) -> tuple[list[str], list[str], list[str]]:
    """Each round's reasoning, answer and tool blocks, as (HTML, Markdown, plain) parts.

    Without ``contents`` (a structured reply), the answers' text is left out: the value is
    shown instead.
    """
    html: list[str] = []
    markdown: list[str] = []
    plain: list[str] = []
    results = {r.call.id: r for r in reply.tool_results}
    for position, completion in enumerate(reply.completions):
        if completion.reasoning:
            html.append(reasoning_html(completion.reasoning))
            plain.append(f"[reasoning: {len(completion.reasoning):,} characters]")
        if completion.content and contents:
            body = content_html(position, completion.content)
            html.append(f'<div class="tf-magics-content">{body}</div>')
            shown = completion.content
            markdown.append(shown if remote_images else markdown_images_as_links(shown))
            plain.append(completion.content)
        for call in completion.tool_calls:
            result = results.get(call.id)
            block = ToolBlock(name=call.name, arguments=call.arguments, status="skipped")
            if result is not None:
                block = ToolBlock.from_result(result)
            html.append(block.html())
            markdown.append(block.markdown())
            plain.append(block.text())
    return html, markdown, plain
