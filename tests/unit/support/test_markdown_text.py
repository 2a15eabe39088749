"""The generated Markdown replies the fake server, kernel tests and the benchmark stream."""

from __future__ import annotations

from tf_testing.markdown_text import make_markdown_tokens


def test_markdown_tokens_are_exact_deterministic_and_varied() -> None:
    tokens = make_markdown_tokens(8000)
    text = "".join(tokens)
    assert len(tokens) == 8000
    assert make_markdown_tokens(8000) == tokens
    assert make_markdown_tokens(8000, seed=1) != tokens
    assert text.startswith("# ")
    for marker in ("\n## ", "\n- ", "```python\n", "|---|", "`", "**", "é"):
        assert marker in text
    assert text.count("```") % 2 == 0
    assert [len(make_markdown_tokens(n)) for n in (0, 1, 5, 57)] == [0, 1, 5, 57]
