"""The fenced code blocks of a Markdown reply, found the way the renderer finds them.

:func:`code_blocks` reads a reply with the same line classifier as the renderer
(:class:`~tf_magics.render.lines.LineMachine`), so a fence inside a list item, a longer closing
fence or a ``~~~`` fence is a block exactly when it renders as one. ``%%chat --code`` puts them
into the next cell.
"""

from __future__ import annotations

from dataclasses import dataclass

from .lines import FENCE_RE, LineMachine, indentation

__all__ = ["PYTHON_LANGUAGES", "CodeBlock", "code_blocks"]

#: Info strings that mean Python (or code a Python cell runs, such as IPython magics).
PYTHON_LANGUAGES = frozenset(("", "python", "py", "python3", "ipython", "ipython3", "pycon"))


@dataclass(frozen=True)
class CodeBlock:
    """One fenced block: its language (the info string's first word, lower case) and code."""

    language: str
    code: str

    @property
    def is_python(self) -> bool:
        """Whether a Python cell can run it as it is (Python, or no language given)."""
        return self.language in PYTHON_LANGUAGES


def code_blocks(markdown: str) -> list[CodeBlock]:
    """Every fenced code block of ``markdown``, in order (an unclosed last one included)."""
    machine = LineMachine()
    blocks: list[CodeBlock] = []
    language: str | None = None
    indent = 0
    body: list[str] = []
    for raw in markdown.split("\n"):
        raw = raw.removesuffix("\r")
        line = raw.expandtabs(4)  # the classifier counts columns; the code keeps its tabs
        kind = machine.step(line).kind
        if kind == "fence-open":
            match = FENCE_RE.match(line)
            info = match.group(3).strip() if match else ""
            language = info.split()[0].lower() if info else ""
            indent = indentation(line)
            body = []
        elif kind == "fence-body" and language is not None:
            # CommonMark: a fence's indentation is removed from its lines, as far as they have it.
            body.append(raw[min(indent, indentation(raw)) :])
        elif kind == "fence-close" and language is not None:
            blocks.append(CodeBlock(language, "\n".join(body)))
            language = None
    if language is not None and body:
        blocks.append(CodeBlock(language, "\n".join(body)))
    return blocks
