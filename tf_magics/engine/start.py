"""Starting a turn for a chat: the loop built from the settings, and run.

:class:`~tf_magics.Chat` calls :func:`start_turn` for every ``ask``/``aask``; the loop itself is
:class:`~tf_magics.engine.turn.TurnLoop`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tf_magics._secrets import SecretScanner
from tf_magics._text import clean_text
from tf_magics.attachment import Attachment
from tf_magics.client import RequestOptions
from tf_magics.conversation import Conversation
from tf_magics.reply import Reply

from .private_loop import Bridge
from .turn import TurnLoop

if TYPE_CHECKING:
    from tf_magics.client.http import Client
    from tf_magics.schema import ResponseSchema
    from tf_magics.settings import ChatSettings
    from tf_magics.tools import ToolRegistry
    from tf_magics.tools.execute import Confirm

__all__ = ["start_turn"]


async def start_turn(
    text: str,
    *,
    client: Client,
    conversation: Conversation,
    settings: ChatSettings,
    options: RequestOptions,
    bridge: Bridge,
    registry: ToolRegistry,
    tool_choice: Any,
    confirm: Confirm | None,
    holder: dict[str, TurnLoop],
    schema: ResponseSchema | None = None,
    attachments: list[Attachment] | None = None,
    parts: list[dict[str, Any]] | None = None,
    scanner: SecretScanner | None = None,
) -> Reply:
    """Run one turn of ``conversation`` (a structured one with ``schema``).

    ``holder["turn"]`` receives the loop as soon as it exists, so the caller can read what was
    kept after an interrupt. ``attachments`` (and raw ``parts``, for a retry) go with the
    question; ``scanner`` masks secrets in everything sent.
    """
    turn = TurnLoop(
        client=client,
        conversation=conversation,
        options=options,
        bridge=bridge,
        registry=registry,
        tool_choice=tool_choice,
        confirm=confirm,
        max_result_chars=settings.tool_result_max_chars,
        tool_timeout=settings.tool_timeout,
        history_limit=(settings.history_max_turns, settings.history_max_tokens),
        schema=schema,
        attachments=attachments,
        parts=parts,
        scanner=scanner,
    )
    holder["turn"] = turn
    return await turn.run(clean_text(text))
