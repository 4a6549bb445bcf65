"""The slide Markdown extensions: lists, code, math, images, links, titles."""

from __future__ import annotations

import pytest

from slidesvc.highlight import code_css, highlight, parse_info
from slidesvc.markdown_ext import Context, SlideConverter
from slidesvc.model import Background


@pytest.fixture(scope="module")
def converter() -> SlideConverter:
    return SlideConverter()


def convert(converter: SlideConverter, text: str, **kwargs: object) -> tuple[str, Context]:
    ctx = Context(**kwargs)  # type: ignore[arg-type]
    return converter.convert(text, ctx), ctx


def test_marker_change_starts_a_new_list(converter: SlideConverter) -> None:
    """* then - directly after each other are two lists, as in CommonMark."""
    html, ctx = convert(converter, "* a\n* b\n- c\n+ d\n")
    assert html == (
        '<ul class="fragments">\n<li>a</li>\n<li>b</li>\n</ul>\n'
        "<ul>\n<li>c</li>\n</ul>\n<ul>\n<li>d</li>\n</ul>"
    )
    assert ctx.fragments == 2


def test_loose_fragment_list_stays_one_list(converter: SlideConverter) -> None:
    """Items separated by blank lines continue the same list."""
    html, ctx = convert(converter, "* a\n\n* b\n")
    assert html.count("<ul") == 1 and ctx.fragments == 2


def test_nested_lists_count_their_own_fragments(converter: SlideConverter) -> None:
    """Nested * items are fragments too; nested - items are not."""
    html, ctx = convert(converter, "* a\n    * a1\n    * a2\n* b\n    - b1\n")
    assert html.count('<ul class="fragments">') == 2
    assert ctx.fragments == 4


def test_paren_list_keeps_its_start(converter: SlideConverter) -> None:
    """3) starts an ordered fragment list at 3; 1. lists stay static."""
    html, ctx = convert(converter, "3) c\n4) d\n\n1. x\n")
    assert '<ol class="fragments" start="3">' in html
    assert "<ol>\n<li>x</li>" in html
    assert ctx.fragments == 2


def test_no_marker_attribute_leaks(converter: SlideConverter) -> None:
    """The parser's bookkeeping attribute never reaches the HTML."""
    html, _ = convert(converter, "* a\n\n1) b\n\n- c\n")
    assert "data-slidesvc" not in html


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        ("python {2,4-5}", ("python", (2, 4, 5))),
        ("{.js hl_lines='1 3'}", ("js", (1, 3))),
        ("Rust", ("rust", ())),
        ("", ("", ())),
        ("sh {x}", ("sh", ())),
    ],
)
def test_fence_info(info: str, expected: tuple[str, tuple[int, ...]]) -> None:
    """Language and emphasised lines from the info string."""
    assert parse_info(info) == expected


def test_highlight_plain_and_unknown() -> None:
    """No or unknown language: escaped text in the same wrapper, no crash."""
    expected = '<div class="code"><pre><span></span>&lt;a&gt; &amp; "b"\n</pre></div>'
    assert highlight('<a> & "b"', "") == expected
    assert highlight('<a> & "b"', "no-such-language") == expected
    assert '<span class="hll">b\n</span>' in highlight("a\nb", "no-such-language", (2,))


def test_fenced_code_in_slide(converter: SlideConverter) -> None:
    """Fences are highlighted, indented fences dedented, and ctx notes the code."""
    html, ctx = convert(converter, "text\n\n  ~~~python\n  x = 1\n  ~~~\n")
    assert html.startswith('<p>text</p>\n<div class="code"><pre><span></span><span class="n">x')
    assert ctx.uses_code


def test_code_css_style() -> None:
    """code_css scopes the style to .code; unknown styles raise ValueError."""
    assert ".code .k" in code_css("github-dark")
    with pytest.raises(ValueError):
        code_css("no-such-style")


@pytest.mark.parametrize(
    ("text", "formulas"),
    [
        ("$x$", 1),
        ("$x$ and $y$", 2),
        ("costs $5 and $10", 0),
        ("a $ b $ c", 0),
        ("\\$x\\$", 0),
        ("`$x$`", 0),
        ("$$x$$ inline display", 1),
        ("price: 5$", 0),
        ("$x$5", 0),
    ],
)
def test_inline_math_rules(converter: SlideConverter, text: str, formulas: int) -> None:
    """When a dollar opens math and when it stays a dollar."""
    html, _ = convert(converter, text)
    assert html.count("<svg") == formulas


def test_display_math_spans_lines(converter: SlideConverter) -> None:
    """$$ on its own line up to the closing $$ is one display formula."""
    html, _ = convert(converter, "before\n\n$$\na +\nb\n$$\n\nafter")
    assert html.count('<div class="math display"><svg') == 1
    assert html.startswith("<p>before</p>") and html.endswith("<p>after</p>")


def test_math_in_fenced_code_stays_code(converter: SlideConverter) -> None:
    """Dollars inside fenced code are code."""
    html, _ = convert(converter, "```\n$$\nx\n$$\n```\n")
    assert "<svg" not in html and "$$" in html


def test_math_svgs_have_no_ids(converter: SlideConverter) -> None:
    """Two formulas on one page cannot clash: no ids, no <use> references."""
    html, _ = convert(converter, "$\\frac{a}{b}$ and $\\sqrt{x}$")
    assert " id=" not in html and "<use" not in html


def test_bad_math_warns(converter: SlideConverter) -> None:
    """An unparsable formula is reported and shown as code."""
    warnings: list[tuple[str, str]] = []
    html, _ = convert(
        converter, "x $\\frac{a$ y", warn=lambda message, needle: warnings.append((message, needle))
    )
    assert '<span class="math inline math-error"><code>$\\frac{a$</code></span>' in html
    assert len(warnings) == 1 and warnings[0][1] == "\\frac{a"


def test_image_size_keywords(converter: SlideConverter) -> None:
    """w/h/width/height keywords (px, %, em; bare = px) become style; alt keeps the rest."""
    html, _ = convert(converter, "![A w:30 height:2em cat](c.png)")
    assert html == '<p><img alt="A cat" src="c.png" style="width:30px;height:2em"></p>'


def test_image_resolver_is_called(converter: SlideConverter) -> None:
    """Every image src goes through the resolver."""
    seen: list[str] = []

    def resolve(src: str) -> str:
        seen.append(src)
        return "slidesvc-asset:x"

    html, _ = convert(converter, "![a](one.png) ![b][ref]\n\n[ref]: two.png", resolve_image=resolve)
    assert seen == ["one.png", "two.png"]
    assert html.count('src="slidesvc-asset:x"') == 2


def test_backgrounds_are_collected(converter: SlideConverter) -> None:
    """bg images leave the tree; their paragraph goes when empty."""
    html, ctx = convert(converter, "![bg contain](a.png)\n![bg left](b.png)\n\n# T")
    assert html == "<h1>T</h1>"
    assert ctx.backgrounds == [Background("a.png", "contain"), Background("b.png", "cover")]
    assert (ctx.bg_split, ctx.bg_split_size) == ("left", "50%")


def test_background_next_to_text_keeps_text(converter: SlideConverter) -> None:
    """Text in the same paragraph as a bg image stays."""
    html, ctx = convert(converter, "Hello ![bg](a.png) world")
    assert html == "<p>Hello  world</p>" and len(ctx.backgrounds) == 1


def test_bare_urls_become_links_outside_code_and_links(converter: SlideConverter) -> None:
    """Smart links: bare URLs link; code and existing links are left alone."""
    html, _ = convert(
        converter,
        "Go to https://a.example/x?y=1. Or [https://b.example](https://b.example) "
        "or `https://c.example`",
    )
    assert html == (
        '<p>Go to <a href="https://a.example/x?y=1">https://a.example/x?y=1</a>. Or '
        '<a href="https://b.example">https://b.example</a> or <code>https://c.example</code></p>'
    )


def test_title_is_plain_text(converter: SlideConverter) -> None:
    """The first heading's text, with markup, entities and escapes resolved."""
    _, ctx = convert(converter, "intro\n\n## A *b* `c` &amp; \\*d\\*\n\n# Later")
    assert ctx.title == "A b c & *d*"


def test_inline_markdown_for_header(converter: SlideConverter) -> None:
    """convert_inline drops the paragraph around one line of Markdown."""
    assert converter.convert_inline("**Acme** 2024", Context()) == "<strong>Acme</strong> 2024"


def test_two_space_nesting_as_in_marp(converter: SlideConverter) -> None:
    """Items indented under their parent's text nest, as CommonMark (and Marp) do."""
    html, ctx = convert(converter, "* a\n  * b\n  - c\n* d\n")
    assert html == (
        '<ul class="fragments">\n<li>a<ul class="fragments">\n<li>b</li>\n</ul>\n'
        "<ul>\n<li>c</li>\n</ul>\n</li>\n<li>d</li>\n</ul>"
    )
    assert ctx.fragments == 3
    html, _ = convert(converter, "1. one\n   1. one.one\n2. two\n")
    assert html == "<ol>\n<li>one<ol>\n<li>one.one</li>\n</ol>\n</li>\n<li>two</li>\n</ol>"
