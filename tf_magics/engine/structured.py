"""A structured answer: the final reply of a turn checked against its schema, asked again once.

:class:`~tf_magics.engine.turn.TurnLoop` runs its rounds as usual (tools included, with the
``response_format`` on every request); when the model answers without calling a tool, the answer
is read by :meth:`ResponseSchema.parse <tf_magics.schema.ResponseSchema.parse>`. When it is not
valid JSON or does not fit, the turn asks again (``schema_retries`` times, 1 by default) with a
user message that quotes every problem. If the answer still does not fit, the turn fails with
:class:`~tf_magics.errors.StructuredOutputError`, which carries the reply (its raw text kept).

The history holds the question and one answer either way: the answers that were asked again and
the correction requests are removed once the turn settles, so the next turn neither pays for them
nor sees them. After a failure, the last answer stays, marked as not fitting the schema, so a
follow-up ("fix the label") can refer to it. The reply keeps every attempt in ``completions``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tf_magics._text import truncate
from tf_magics.errors import StructuredOutputError, ValidationError

if TYPE_CHECKING:
    # Typing only: importing the schema layer imports docstring_parser, which %load_ext (whose
    # import chain reaches the engine) must not pay for.
    from tf_magics.conversation import Conversation
    from tf_magics.reply import Reply
    from tf_magics.schema import ResponseSchema
    from tf_magics.types import Message

__all__ = ["StructuredCheck"]

_QUOTED_PROBLEMS = 10


class StructuredCheck:
    """Checks a turn's answers against ``schema`` and says what to ask when one does not fit.

    Parameters
    ----------
    schema
        What the answer must be.
    retries
        How many times to ask again.
    """

    def __init__(self, schema: ResponseSchema, retries: int) -> None:
        self.schema = schema
        self.retries_left = retries
        self.asked_again = 0
        #: What to tell the user about the last correction (see :meth:`correction`).
        self.note = ""
        self._set_aside: list[Message] = []

    def correction(self, reply: Reply, conversation: Conversation) -> str | None:
        """Check the answer that ended the rounds: ``None`` when it fits, else what to ask.

        On success ``reply.value`` is set and the history tidied; otherwise :attr:`note` says
        what happened, for the user.

        Raises
        ------
        StructuredOutputError
            When it does not fit and no retry is left.
        """
        try:
            problems = self._problems(reply)
            if not problems:
                reply.value = self.schema.parse(reply.text)
        except ValidationError as error:
            problems = error.problems
        if not problems:
            conversation.remove(self._set_aside)
            return None
        refused = bool(reply.completions and reply.completions[-1].refusal)
        if self.retries_left <= 0 or reply.stopped == "round_limit" or refused:
            # Asking again does not help when the model declined on purpose, or ran out of rounds.
            raise self._failure(reply, conversation, problems)
        self.retries_left -= 1
        self.asked_again += 1
        answer = conversation.last_reply
        if answer is not None:
            self._set_aside.append(answer)
        self.note = self.retry_note(problems)
        listed = "\n".join(f"- {problem}" for problem in problems[:_QUOTED_PROBLEMS])
        return (
            f"Your answer does not fit the required JSON schema ({self.schema.name}):\n{listed}\n"
            "Answer again with only the corrected JSON, nothing else."
        )

    def asked(self, question: Message) -> None:
        """Remember a correction request, to take it out of the history once the turn settles."""
        self._set_aside.append(question)

    def retry_note(self, problems: list[str]) -> str:
        """What the user is told when the model is asked again."""
        return truncate(
            f"The answer did not fit the schema {self.schema.name} ({'; '.join(problems)}): "
            "asked again, quoting the problems.",
            300,
        )

    def _problems(self, reply: Reply) -> list[str]:
        """Problems found before reading the JSON: no answer at all, or a refusal."""
        refusal = reply.completions[-1].refusal if reply.completions else None
        if refusal:
            return [f"the model refused: {truncate(refusal, 200)}"]
        if reply.stopped == "round_limit":
            return ["the model gave no answer: it was still calling tools at the round limit"]
        if not reply.text.strip():
            return ["the answer is empty"]
        return []

    def _failure(
        self, reply: Reply, conversation: Conversation, problems: list[str]
    ) -> StructuredOutputError:
        answer = conversation.last_reply
        conversation.remove(self._set_aside)
        if answer is not None and answer.content == reply.text:
            answer.note = f"does not fit the schema {self.schema.name}"
        cut = reply.finish_kind == "length"
        tries = self.asked_again + 1
        if cut:
            problems = ["the reply was cut off at max_tokens", *problems]
        error = StructuredOutputError(
            problems[:_QUOTED_PROBLEMS],
            hint=(
                "Raise max_tokens (--max-tokens)."
                if cut
                else f"{tries} answer{'s' if tries > 1 else ''} tried; the raw text is in "
                "error.reply.text. Simplify the schema, or raise schema_retries."
            ),
            reply=reply,
            schema_name=self.schema.name,
        )
        reply.error = str(error)
        return error
