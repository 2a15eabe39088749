"""Asking for a structured reply in the form the server accepts: ``response_format`` and fallbacks.

The standard request is ``{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}``.
Not every OpenAI-compatible server takes it, so :class:`~tf_magics.client.http.Client` steps down
a ladder when a server refuses a form, and remembers the form that worked for that server and
model (:data:`FORMS`):

0. ``json_schema`` -- OpenAI, vLLM, recent llama.cpp, Ollama, LM Studio...;
1. ``{"type": "json_object", "schema": {...}}`` -- llama-cpp-python's server, whose request model
   allows only ``text`` and ``json_object`` (it answers ``json_schema`` with a 500 that names
   ``response_format``) and turns this schema into a grammar, so even a tiny model returns
   valid JSON;
2. ``{"type": "json_object"}`` with the schema in the instructions;
3. the instructions alone.

Whatever the form, the reply is checked against the schema where it arrives (the engine does).
The instructions go into the system message of the request only, never into the conversation.
"""

from __future__ import annotations

import json
from typing import Any

from tf_magics._text import one_line
from tf_magics.errors import APIStatusError
from tf_magics.schema import ResponseSchema

__all__ = ["FORMS", "LAST_FORM", "apply_form", "describe_fallback", "is_rejection"]

#: The ladder of forms, most precise first.
FORMS = ("json_schema", "json_object with the schema", "json_object", "instructions only")
LAST_FORM = len(FORMS) - 1
_REJECTED_STATUSES = {400, 404, 415, 422, 500, 501}
_MENTIONS = ("response_format", "json_schema", "json_object")


def apply_form(
    schema: ResponseSchema, form: int, messages: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The body fields and the messages of a request for ``schema`` in one form of the ladder."""
    fields: dict[str, Any] = {}
    if form == 0:
        fields["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": schema.name, "schema": schema.schema, "strict": schema.strict},
        }
    elif form == 1:
        fields["response_format"] = {"type": "json_object", "schema": schema.schema}
    elif form == 2:
        fields["response_format"] = {"type": "json_object"}
    if form >= 2:
        messages = _with_instructions(messages, schema.instructions())
    return fields, messages


def _with_instructions(messages: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """The messages with ``text`` added to the system message (one is made if there is none).

    Many chat templates accept a single system message, at the start: the instructions join it.
    """
    if messages and messages[0].get("role") == "system":
        first = dict(messages[0])
        content = first.get("content")
        if isinstance(content, str):
            first["content"] = f"{content}\n\n{text}" if content else text
        else:
            first["content"] = [*(content or []), {"type": "text", "text": text}]
        return [first, *messages[1:]]
    return [{"role": "system", "content": text}, *messages]


def is_rejection(error: APIStatusError) -> bool:
    """Whether an error response refuses the ``response_format`` we sent (not the prompt)."""
    if error.status_code not in _REJECTED_STATUSES:
        return False
    text = f"{error.message} {json.dumps(error.body, default=str)}".lower()
    return any(word in text for word in _MENTIONS)


def describe_fallback(base_url: str, form: int, error: APIStatusError) -> str:
    """The note shown when a server refuses a form and the next one is tried."""
    said = error.message
    if said.startswith(base_url) and ": " in said:
        said = said.split(": ", 1)[1]  # "<url> answered 500 ...: <what the server said>"
    # A Python server may append its traceback (file paths of its machine): not worth showing.
    said = said.split(' File "', 1)[0]
    said = one_line(f"{error.status_code}: {said}", 160)
    return (
        f"{base_url} does not accept response_format {FORMS[form - 1]} ({said}); "
        f"asking with {FORMS[form]} instead, for this server from now on. "
        "Every reply is still checked against the schema."
    )
