"""A dry run: the request a turn would send, built by the turn's own steps on a copy.

:func:`build_preview` takes the steps of :class:`~tf_magics.engine.turn.TurnLoop` in order, on a
copy of the conversation: trim the history to its limits, mask secrets in the question and its
attachments, add it, mask the history, and build the body with the client's own
:meth:`~tf_magics.client.http.Client.request_body`. Nothing is sent (not even ``GET /models``),
no server is started and the conversation is not changed.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from tf_magics._secrets import SecretScanner
from tf_magics._text import clean_text
from tf_magics._tokens import text_tokens
from tf_magics.attachment import Attachment
from tf_magics.client import RequestOptions
from tf_magics.conversation import Conversation
from tf_magics.cost import cost_of
from tf_magics.options import LOCAL
from tf_magics.preview import Preview
from tf_magics.types import Usage

from .outgoing import (
    Redactions,
    has_images,
    redact_question,
    scan_conversation,
    trim_before_question,
)

if TYPE_CHECKING:
    from tf_magics.client.http import Client
    from tf_magics.tools import ToolRegistry

__all__ = ["build_preview", "estimate_cost"]


def estimate_cost(client: Client, options: RequestOptions, prompt_tokens: int) -> float | None:
    """The most a request may cost: ``prompt_tokens`` and ``max_tokens`` at the model's price.

    ``None`` when the model has no known price (the settings' ``prices``, or what the server
    published when its models were listed: a dry run asks the server nothing).
    """
    usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=options.max_tokens)
    return cost_of(usage, client.price_for(options))


def _endpoint(
    client: Client, options: RequestOptions, notes: list[str]
) -> tuple[RequestOptions, str]:
    """The options with the base URL and model a real turn would fill in, and the URL to show."""
    if options.base_url in (None, LOCAL):
        from tf_magics import local
        from tf_magics.local.server import MODEL_ALIAS

        running = local.local_server_running()
        base_url = local.get_local_server().base_url if running else "http://127.0.0.1:<port>/v1"
        if not running:
            notes.append("the built-in demo model would be started first (about a second)")
        options = replace(
            options,
            base_url=base_url,
            model=options.model or MODEL_ALIAS,
            api_key=None,
            withheld_key=None,
        )
        return options, f"{base_url}/chat/completions"
    if not options.model:
        models = client.models_cache.get(options.base_url or "")
        if models:
            options = replace(options, model=models[0].id)
            notes.append(f"no model is set: the server's first model ({models[0].id}) is used")
        else:
            notes.append(
                "no model is set: the server's first model (GET /models) would be asked for "
                "before sending"
            )
    return options, f"{(options.base_url or '').rstrip('/')}/chat/completions"


def build_preview(
    text: str,
    *,
    client: Client,
    conversation: Conversation,
    history: bool,
    options: RequestOptions,
    registry: ToolRegistry | None,
    tool_choice: Any,
    history_limit: tuple[int | None, int | None],
    attachments: list[Attachment],
    scanner: SecretScanner,
    parts: list[dict[str, Any]] | None = None,
) -> Preview:
    """The request ``text`` would be sent as, with the conversation as it is now."""
    notes: list[str] = []
    local = options.base_url in (None, LOCAL)
    options, url = _endpoint(client, options, notes)
    copy = (
        conversation.fork(conversation.name)
        if history
        else Conversation(conversation.system, name=conversation.name)
    )
    report = trim_before_question(copy, history_limit)
    if report is not None:
        notes.append(str(report))
    redactions = Redactions()
    question, attachments = redact_question(clean_text(text), attachments, scanner, redactions)
    copy.add_user(question, [*(parts or []), *(p for a in attachments for p in a.parts)])
    scan_conversation(copy, scanner, redactions)
    said = redactions.unsaid()
    if said is not None:
        notes.append(said)
    messages = copy.to_wire()
    if options.withheld_key and options.api_key is None:
        notes.append(options.withheld_key)
    if has_images(messages) and local:
        notes.append("the built-in demo model takes no images: this request would be refused")
    tools = registry.schemas() if registry is not None else []
    body = client.request_body(
        options, messages, tools=tools or None, tool_choice=tool_choice if tools else None
    )
    prompt_tokens = copy.estimate_tokens() + sum(text_tokens(str(t)) for t in tools)
    return Preview(
        body=body,
        url=url,
        prompt_tokens=prompt_tokens,
        attachments=attachments,
        notes=notes,
        key_source=options.key_source,
        cost=estimate_cost(client, options, prompt_tokens),
        currency=options.caps.currency,
    )
