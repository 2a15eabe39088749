"""One question, several variants (models, temperatures), run at once: :class:`Comparison`.

Each variant is a one-off turn on its own copy of the conversation: the history is sent, but the
conversation is not changed, so it stays valid whatever the variants do. The variants run
concurrently on one event loop; their events reach the observer tagged with their position
(:class:`~tf_magics.events.VariantEvent`), and one failing variant does not stop the others.
Afterwards the user may keep one (:meth:`Comparison.keep`): its question and answer are appended
to the conversation as if it had been the only reply.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tf_magics._public import public
from tf_magics._text import exception_text
from tf_magics.conversation import Conversation
from tf_magics.errors import ConfigurationError
from tf_magics.events import Event, VariantEvent
from tf_magics.reply import Reply
from tf_magics.types import Message

from .private_loop import Bridge
from .turn import TurnLoop

__all__ = ["MAX_VARIANTS", "Comparison", "Variant", "run_variants", "variant_label"]

#: The most variants one comparison may have (each is a full request).
MAX_VARIANTS = 8
T = TypeVar("T")

_LABELS = {"temperature": "t", "top_p": "top_p", "seed": "seed"}


def variant_label(overrides: Mapping[str, Any], varied: list[str]) -> str:
    """How a variant is called in the output: ``"gpt-4o-mini"``, ``"t=0.7"``, ``"m, t=0"``."""
    parts = []
    for name in varied:
        value = overrides.get(name)
        if name == "model":
            parts.append(str(value))
        else:
            shown = f"{value:g}" if isinstance(value, float) else str(value)
            parts.append(f"{_LABELS.get(name, name)}={shown}")
    return ", ".join(parts) or "as set"


@dataclass
class Variant:
    """One variant of a comparison: what it changed, and what it produced.

    Attributes
    ----------
    label
        How it is shown (``"t=0.7"``).
    overrides
        The settings it used besides the chat's own.
    reply
        Its reply (partial after an error or an interrupt), or ``None`` if nothing came back.
    error
        What stopped it, if anything.
    """

    label: str
    overrides: dict[str, Any]
    reply: Reply | None = None
    error: BaseException | None = None
    conversation: Conversation | None = field(default=None, repr=False)
    _before: set[int] = field(default_factory=set, repr=False)

    @property
    def text(self) -> str:
        """The reply's text (``""`` when there is none)."""
        return self.reply.text if self.reply is not None else ""

    def new_messages(self) -> list[Message]:
        """The messages its turn added to its copy of the conversation."""
        if self.conversation is None:
            return []
        return [m for m in self.conversation.messages if id(m) not in self._before]


@public
@dataclass
class Comparison:
    """The replies of several variants to one question, none of them in the history yet.

    Attributes
    ----------
    question
        The question, as sent.
    variants
        One :class:`Variant` per model or temperature, in the order asked for.
    kept
        The number (from 1) of the variant kept in the history, if any.
    """

    question: str
    variants: list[Variant]
    conversation: Conversation = field(repr=False)
    history: bool = True
    kept: int | None = None
    _length: int = field(default=0, repr=False)
    _last: Message | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        messages = self.conversation.messages
        self._length = len(messages)
        self._last = messages[-1] if messages else None

    def prepare(self, index: int) -> Conversation:
        """The copy of the conversation variant ``index`` runs on (history, or none)."""
        source = self.conversation
        fork = (
            source.fork(source.name)
            if self.history
            else Conversation(source.system, name=source.name)
        )
        variant = self.variants[index]
        variant.conversation = fork
        variant._before = {id(m) for m in fork.messages}
        return fork

    def keep(self, number: int) -> Reply:
        """Append variant ``number``'s question and answer to the conversation.

        Parameters
        ----------
        number
            The variant's number as shown, from 1.

        Raises
        ------
        ConfigurationError
            If there is no such variant, it has no reply, one is already kept, the comparison was
            a one-off question, or the conversation changed since the comparison.
        """
        count = len(self.variants)
        if not self.history:
            raise ConfigurationError(
                "This comparison was a one-off question (--no-history): there is no "
                "conversation to keep a reply in."
            )
        if self.kept is not None:
            raise ConfigurationError(f"Variant {self.kept} is already kept in the history.")
        if not isinstance(number, int) or not 1 <= number <= count:
            raise ConfigurationError(
                f"There is no variant {number!r}: the comparison has {count} (1 to {count})."
            )
        variant = self.variants[number - 1]
        added = variant.new_messages()
        if not any(m.role == "assistant" for m in added):
            why = f" ({exception_text(variant.error)})" if variant.error else ""
            raise ConfigurationError(f"Variant {number} has no reply to keep{why}.")
        messages = self.conversation.messages
        if len(messages) != self._length or (messages[-1] if messages else None) is not self._last:
            raise ConfigurationError(
                "The conversation has changed since the comparison, so its replies no longer "
                "follow it.",
                hint="Keep a variant right after the comparison, or run the comparison again.",
            )
        with self.conversation.turn():
            self.conversation.extend(copy.deepcopy(added))
        self.kept = number
        assert variant.reply is not None
        return variant.reply

    def __repr__(self) -> str:
        labels = ", ".join(f"{n}: {v.label}" for n, v in enumerate(self.variants, 1))
        kept = f", kept {self.kept}" if self.kept else ""
        return f"<Comparison of {len(self.variants)} variants ({labels}){kept}>"

    def finish_interrupted(self, holders: list[dict[str, TurnLoop]]) -> None:
        """After an interrupt: each variant keeps the partial reply its turn had."""
        for variant, holder in zip(self.variants, holders, strict=True):
            turn = holder.get("turn")
            if variant.reply is None and turn is not None:
                variant.reply = turn.reply
            if variant.error is None and (variant.reply is None or variant.reply.stopped):
                variant.error = KeyboardInterrupt("interrupted by the user")


class _TaggedBridge:
    """A variant's bridge: its events are tagged with its position, calls go through as they are."""

    def __init__(self, bridge: Bridge, index: int) -> None:
        self._bridge = bridge
        self._index = index

    def emit(self, event: Event) -> None:
        self._bridge.emit(VariantEvent(self._index, event))

    async def call_sync(self, function: Callable[[], T]) -> T:
        return await self._bridge.call_sync(function)


async def run_variants(
    comparison: Comparison,
    bridge: Bridge,
    turn: Callable[[int, Bridge, Conversation], Coroutine[Any, Any, Reply]],
) -> Comparison:
    """Run every variant's turn at once; each one's failure is recorded, not raised.

    Cancelling (an interrupt) cancels every variant; each keeps what had arrived.
    """

    async def one(index: int) -> None:
        variant = comparison.variants[index]
        fork = comparison.prepare(index)
        try:
            variant.reply = await turn(index, _TaggedBridge(bridge, index), fork)
        except Exception as error:  # one failing variant leaves the others running
            variant.error = error
            variant.reply = getattr(error, "reply", None)

    await asyncio.gather(*(one(index) for index in range(len(comparison.variants))))
    return comparison
