"""Property tests for the parser: no crash, right slide counts, right lines."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slidesvc.errors import DeckError
from slidesvc.markdown_ext import Context, SlideConverter
from slidesvc.parse import load_deck

_counter = itertools.count()

LINES = st.sampled_from(
    [
        "",
        "---",
        "text",
        "# Heading",
        "## Sub",
        "* star",
        "  * nested",
        "   1) deeper",
        "- dash",
        "1) paren",
        "1. dot",
        "```",
        "```python",
        "~~~",
        "````",
        "???",
        "Note: n",
        "<!-- class: x -->",
        "<!-- a note -->",
        "$x^2$ and $5",
        "$$",
        "![w:10px i](missing.png)",
        "![bg](https://example.org/a.png)",
        "| a | b |",
        "|---|---|",
        "<div>raw</div>",
        "    indented",
        "`code` *em* [l](u) https://x.org",
    ]
)
ANY_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("decks")


def write(folder: Path, text: str, *, newline: str = "\n") -> Path:
    path = folder / f"deck{next(_counter)}.md"
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


def separators_outside_fences(lines: list[str]) -> int:
    """The oracle: count --- lines that are not inside a ``` or ~~~ block."""
    count, fence = 0, ""
    for line in lines:
        stripped = line.strip()
        if fence:
            if stripped and set(stripped) == {fence[0]} and len(stripped) >= len(fence):
                fence = ""
        elif stripped.startswith(("```", "~~~")):
            fence = stripped[: len(stripped) - len(stripped.lstrip(stripped[0]))]
        elif line.rstrip() == "---":
            count += 1
    return count


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.one_of(
        ANY_TEXT,
        st.lists(st.one_of(LINES, ANY_TEXT), max_size=30).map("\n".join),
        st.tuples(ANY_TEXT, ANY_TEXT).map(lambda t: f"---\ntitle: {t[0]}\n---\n{t[1]}"),
        st.tuples(ANY_TEXT, ANY_TEXT).map(lambda t: f"<!-- style: |\n{t[0]}\n-->\n{t[1]}"),
    )
)
def test_never_crashes(folder: Path, text: str) -> None:
    """Any text either compiles or raises DeckError; nothing else escapes."""
    try:
        deck = load_deck(write(folder, text))
    except DeckError as error:
        assert error.message
        return
    assert deck.slides


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.lists(LINES.filter(lambda line: "missing.png" not in line), max_size=40))
def test_slide_count_is_separators_plus_one(folder: Path, body: list[str]) -> None:
    """Without front matter and heading_divider: slides = separators outside fences + 1."""
    # Comments can also hide separators; the oracle only knows about fences.
    lines = ["start", *(line for line in body if "<!--" not in line)]
    deck = load_deck(write(folder, "\n".join(lines)))
    assert len(deck.slides) == separators_outside_fences(lines) + 1


SLIDE_BODY = st.lists(
    st.sampled_from(["text", "* item", "", "`code`", "```\n---\n```", "???\nnote", "| a |"]),
    max_size=5,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    slides=st.lists(st.tuples(st.integers(0, 3), SLIDE_BODY), min_size=1, max_size=8),
    front_matter=st.lists(st.sampled_from(["title: T", "paginate: true", "# c"]), max_size=3),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_slide_lines_point_at_their_first_line(
    folder: Path,
    slides: list[tuple[int, list[str]]],
    front_matter: list[str],
    newline: str,
) -> None:
    """Slide.line is the 1-based line of the slide's first content line."""
    parts = []
    for number, (blanks, body) in enumerate(slides, 1):
        parts.append("\n" * blanks + "\n".join([f"S{number} first", *body]))
    text = "\n---\n".join(parts)
    if front_matter:
        text = "\n".join(["---", "title: T", *front_matter, "---", text])
    deck = load_deck(write(folder, text, newline=newline))
    source = text.split("\n")
    assert len(deck.slides) == len(slides)
    for slide in deck.slides:
        assert source[slide.line - 1] == f"S{slide.number} first"


MARKDOWN = st.lists(
    st.sampled_from(
        [
            "*a*",
            "_b_",
            "**c**",
            "`d`",
            "[e](f)",
            "![g](h)",
            "<i>",
            "&amp;",
            "\\*",
            "  \n",
            "$j$",
            "<k@l.m>",
            "<https://n.o>",
            "\n```\n",
            "\n~~~\n",
            "\n\n<div>\n",
            "{.c}",
            "[p]",
            "\n\n[p]: q",
            "x",
            " ",
            "\n",
            "# ",
            "* ",
            "1) ",
        ]
    ),
    max_size=25,
).map("".join)

_fast = SlideConverter()
_full = SlideConverter(prefilter=False)


@settings(max_examples=300, deadline=None)
@given(text=MARKDOWN)
def test_inline_pattern_prefilter_changes_nothing(text: str) -> None:
    """Skipping inline patterns (and attr_list) that cannot match gives the same HTML."""
    assert _fast.convert(text, Context()) == _full.convert(text, Context())
