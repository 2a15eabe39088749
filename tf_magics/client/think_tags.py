"""Inline ``<think>…</think>`` reasoning told apart from the answer, across chunk boundaries.

Some servers put a model's reasoning inside the content, wrapped in think tags, instead of a
``reasoning_content`` field. The tags can be split over several chunks, and the opening tag can be
missing (the chat template put it in the prompt).
"""

from __future__ import annotations

__all__ = ["ThinkTagSplitter"]

_OPEN, _CLOSE = "<think>", "</think>"


class ThinkTagSplitter:
    """Separate inline ``<think>…</think>`` reasoning from answer text, across chunk boundaries.

    Text that might be the start of a tag (``"<thi"``) is held back until the next piece decides.
    Only one think block is recognised, and only at the start of the reply: a ``<think>`` later in
    an answer is literal text. A reply that starts with reasoning but lacks the opening tag (its
    chat template put the tag in the prompt) is recognised when ``</think>`` arrives: what came
    before is re-labelled as reasoning (:attr:`relabelled` is then true).
    """

    def __init__(self) -> None:
        self._held = ""
        self._thinking = False
        self._done = False
        self._trim = False
        # Pieces are kept in lists and joined on demand: ``str +=`` on an attribute copies the
        # whole text on every token, which is quadratic over a long reply.
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._started = False  # some non-whitespace answer text was released
        self.relabelled = False

    @property
    def content(self) -> str:
        """The answer text released so far."""
        if len(self._content) > 1:
            self._content[:] = ["".join(self._content)]
        return self._content[0] if self._content else ""

    @property
    def reasoning(self) -> str:
        """The reasoning text released so far."""
        if len(self._reasoning) > 1:
            self._reasoning[:] = ["".join(self._reasoning)]
        return self._reasoning[0] if self._reasoning else ""

    def feed(self, text: str) -> tuple[str, str]:
        """Add a piece of content; return the ``(answer, reasoning)`` text it released.

        The result does not depend on how the text was cut into pieces: whitespace before a
        possible think block is held back until it is decided, and whitespace after the closing
        tag is dropped however it arrives.
        """
        plain = not (self._held or self._thinking or self._trim or "<" in text)
        if plain and self._started:
            # The common case: answer text under way, and no tag can start in this piece.
            self._content.append(text)
            return text, ""
        text = self._held + text
        self._held = ""
        answer: list[str] = []
        thought: list[str] = []
        while text:
            if self._thinking:
                text = self._inside_block(text, thought)
            elif self._done:
                text = self._after_block(text, answer)
            else:
                text = self._before_block(text, answer)
        released_answer, released_thought = "".join(answer), "".join(thought)
        self._release(released_answer, released_thought)
        return released_answer, released_thought

    # Each step takes what is left of the piece and returns what is still left ("" to stop).

    def _inside_block(self, text: str, thought: list[str]) -> str:
        at = text.find(_CLOSE)
        if at == -1:
            thought.append(self._hold(text, (_CLOSE,)))
            return ""
        thought.append(text[:at])
        self._thinking = False
        self._done = self._trim = True
        return text[at + len(_CLOSE) :]

    def _after_block(self, text: str, answer: list[str]) -> str:
        if self._trim:
            text = text.lstrip()
            if not text:
                return ""
            self._trim = False
        answer.append(text)
        return ""

    def _before_block(self, text: str, answer: list[str]) -> str:
        opening, closing = text.find(_OPEN), text.find(_CLOSE)
        if closing != -1 and (opening == -1 or closing < opening):
            # A closing tag with no opening one: what came before was reasoning after all.
            self.relabelled = True
            self._reasoning.append(self.content + "".join(answer) + text[:closing])
            self._content.clear()
            self._started = False
            answer.clear()
            self._done = self._trim = True
            return text[closing + len(_CLOSE) :]
        if opening == -1:
            rest = self._hold(text, (_OPEN, _CLOSE))
            if not (self._started or "".join(answer).strip()) and not rest.strip():
                # Only whitespace so far: a think block may still open. Hold it back.
                self._held = rest + self._held
            else:
                answer.append(rest)
            return ""
        if self._started or ("".join(answer) + text[:opening]).strip():
            # Not at the start of the reply: a literal mention, not a think block.
            answer.append(text[: opening + len(_OPEN)])
            self._done = True
            return text[opening + len(_OPEN) :]
        self._thinking = True
        return text[opening + len(_OPEN) :]

    def _release(self, answer: str, thought: str) -> None:
        if answer:
            self._content.append(answer)
            self._started = self._started or bool(answer.strip())
        if thought:
            self._reasoning.append(thought)

    def _hold(self, text: str, tags: tuple[str, ...]) -> str:
        """Keep back a suffix that may be the start of a tag; return the rest."""
        keep = _partial_tag_suffix(text, tags)
        if keep:
            self._held = text[-keep:]
            return text[:-keep]
        return text

    def flush(self) -> tuple[str, str]:
        """End of text: release anything held back."""
        held, self._held = self._held, ""
        if self._thinking:
            self._release("", held)
            return "", held
        if self._trim:
            held = held.lstrip()
        self._release(held, "")
        return held, ""


def _partial_tag_suffix(text: str, tags: tuple[str, ...]) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of one of ``tags``."""
    best = 0
    for tag in tags:
        for size in range(min(len(tag) - 1, len(text)), best, -1):
            if text.endswith(tag[:size]):
                best = size
                break
    return best
