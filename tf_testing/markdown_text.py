"""Long, realistic Markdown replies, cut into tokens: the same text for the same seed.

:func:`make_markdown_tokens` builds what a chat model might stream back -- headings, paragraphs
with inline code and bold, lists, fenced Python code, tables, a few multi-byte characters -- cut
into the pieces a tokenizer would produce. The fake server's command line serves it
(``python -m tf_testing.fake_openai --tokens N``), kernel tests stream it, and the streaming
benchmark measures rendering with it.
"""

from __future__ import annotations

import random
import re

__all__ = ["make_markdown_tokens"]

_VOCABULARY = (
    "the model stream token buffer notebook kernel cell output render update display latency "
    "throughput server client request response message history context window budget schema "
    "argument result value string number list table chart figure data frame column row index "
    "cache queue thread loop event handler parser markdown syntax heading paragraph code block "
    "naïve café résumé façade → ✓ fast slow small large simple careful steady clear useful "
    "which while because after before every each many few often rarely quickly gently"
)
_WORDS = _VOCABULARY.split()
_NAMES = ["total", "items", "chunks", "tokens", "scores", "rows", "values", "events", "buffer"]


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(6, 16))]
    if rng.random() < 0.3:
        words[rng.randrange(len(words))] = f"`{rng.choice(_NAMES)}`"
    if rng.random() < 0.2:
        k = rng.randrange(len(words))
        words[k] = f"**{words[k]}**"
    if rng.random() < 0.3:
        words[rng.randrange(len(words) - 1)] += ","
    text = " ".join(words)
    return text[0].upper() + text[1:] + rng.choice([".", ".", ".", "!", "?"])


def _block(kind: str, rng: random.Random, number: int) -> str:
    if kind == "title":
        return f"# Notes on {rng.choice(_WORDS)} and {rng.choice(_WORDS)}"
    if kind == "heading":
        return f"## {number}. {' '.join(rng.choice(_WORDS) for _ in range(3)).capitalize()}"
    if kind == "paragraph":
        return " ".join(_sentence(rng) for _ in range(rng.randint(2, 5)))
    if kind == "list":
        bullet = rng.choice(["-", "*", "1."])
        return "\n".join(f"{bullet} {_sentence(rng)}" for _ in range(rng.randint(3, 6)))
    if kind == "code":
        name, arg, k = rng.choice(_NAMES), rng.choice(_NAMES), rng.randint(2, 9)
        return (
            "```python\n"
            f"def summarize_{name}({arg}: list[int]) -> dict[str, int]:\n"
            f'    """{_sentence(rng)}"""\n'
            "    total = 0\n"
            f"    for item in {arg}:\n"
            f"        if item % {k} == 0:\n"
            f"            total += item * {k}\n"
            f'    return {{"total": total, "count": len({arg})}}  # emoji-safe: 🎉\n'
            "```"
        )
    rows = "\n".join(
        f"| {rng.choice(_WORDS)} | {rng.randint(1, 9999)} | {' '.join(rng.sample(_WORDS, 2))} |"
        for _ in range(rng.randint(3, 6))
    )
    return f"| Name | Value | Notes |\n|---|---:|---|\n{rows}"


def make_markdown_tokens(n: int, seed: int = 0) -> list[str]:
    """A realistic markdown reply of exactly ``n`` tokens, the same for the same ``seed``.

    It has a title, headings, paragraphs with inline code and bold, bullet and numbered lists,
    fenced Python code and tables, plus some multi-byte characters. Blocks are never cut in the
    middle (code fences stay balanced): the end is padded with a plain paragraph.

    Parameters
    ----------
    n : int
        The number of tokens (pieces) wanted.
    seed : int
        Seeds the word choices.

    Returns
    -------
    list of str
        Pieces that join into the markdown text; leading whitespace rides with the next word and
        symbols are pieces of their own, roughly as a tokenizer cuts them.
    """
    rng = random.Random(seed)
    piece = re.compile(r"\s*(?:\w+|[^\w\s]+)|\s+")
    tokens: list[str] = []
    order = ["title", "paragraph", "heading", "list", "paragraph", "code", "table"]
    kinds = ["heading", "paragraph", "paragraph", "paragraph", "list", "code", "table"]
    number = 1
    while True:
        kind = order.pop(0) if order else rng.choice(kinds)
        number += kind == "heading"
        text = _block(kind, rng, number)
        block = piece.findall(text if not tokens else "\n\n" + text)
        if len(tokens) + len(block) > n - 4:
            break
        tokens += block
    remaining = n - len(tokens)
    words = [rng.choice(_WORDS) for _ in range(remaining)]
    filler = [("\n\n" if tokens else "") + (words[0].capitalize() if words else "")]
    filler += [" " + w for w in words[1:]]
    if remaining:
        filler[-1] += "."
    return tokens + filler[:remaining]
