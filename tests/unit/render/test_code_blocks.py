"""Finding a reply's code blocks (for ``--code``) the way the renderer finds them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tf_magics.render.code_blocks import CodeBlock, code_blocks


def test_fences_of_every_kind() -> None:
    reply = (
        "Intro\n\n```python\nimport x\n\nprint(x)\n```\n\n"
        "1. Install:\n   ```bash\n   pip install x\n   ```\n"
        "~~~\nplain\n~~~\n"
        "````py\nfence = '```'\n````\n"
        "Inline `code` is not a block.\n"
    )
    assert code_blocks(reply) == [
        CodeBlock("python", "import x\n\nprint(x)"),
        CodeBlock("bash", "pip install x"),
        CodeBlock("", "plain"),
        CodeBlock("py", "fence = '```'"),
    ]
    assert [b.is_python for b in code_blocks(reply)] == [True, False, True, True]


def test_an_unclosed_last_block_counts_and_no_block_is_empty() -> None:
    assert code_blocks("```python\nx = 1") == [CodeBlock("python", "x = 1")]
    assert code_blocks("No code here.") == []


@given(
    st.lists(st.text(alphabet=st.characters(blacklist_characters="`~\r"), max_size=40), max_size=8)
)
def test_any_code_comes_back_exactly(lines: list[str]) -> None:
    code = "\n".join(line.replace("\n", " ") for line in lines)
    assert code_blocks(f"Here:\n\n```python\n{code}\n```\n") == [CodeBlock("python", code)]
