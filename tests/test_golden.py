"""Golden decks: tests/golden/<case>.md compiles to the slides in <case>.html.

The expected files are written by hand from DECK-FORMAT.md. Both sides are
parsed with html.parser into a normalised tree (attributes sorted, runs of
whitespace collapsed, SVG reduced to its tag) and compared as trees. Asset
ids are replaced by the image's path relative to the deck, so the expected
files can name images.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest

from slidesvc.model import ASSET_SCHEME, Deck
from slidesvc.parse import load_deck

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.stem for p in GOLDEN.glob("*.md"))
VOID = {"img", "br", "hr", "input", "meta", "link", "source", "col", "area", "wbr"}

Node = tuple[str, tuple[tuple[str, str], ...], tuple["Node | str", ...]]


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, list[tuple[str, str]], list[Node | str]]] = [("#root", [], [])]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element: tuple[str, list[tuple[str, str]], list[Node | str]] = (
            tag,
            sorted((k, v or "") for k, v in attrs),
            [],
        )
        if tag in VOID:
            self.stack[-1][2].append((tag, tuple(element[1]), ()))
        else:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1][2].append((tag, tuple(sorted((k, v or "") for k, v in attrs)), ()))

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        assert self.stack[-1][0] == tag, f"</{tag}> closes <{self.stack[-1][0]}>"
        name, attrs, children = self.stack.pop()
        if name == "svg":  # formulas are checked elsewhere; here only where they are
            attrs, children = [], []
        self.stack[-1][2].append((name, tuple(attrs), tuple(children)))

    def handle_data(self, data: str) -> None:
        text = " ".join(data.split())
        if text:
            siblings = self.stack[-1][2]
            if siblings and isinstance(siblings[-1], str):
                siblings[-1] = f"{siblings[-1]} {text}"
            else:
                siblings.append(text)

    def handle_comment(self, data: str) -> None:
        self.stack[-1][2].append(("#comment", (), (" ".join(data.split()),)))


def tree(markup: str) -> tuple[Node | str, ...]:
    """A normalised tree of an HTML fragment."""
    builder = _TreeBuilder()
    builder.feed(markup)
    builder.close()
    assert len(builder.stack) == 1, f"unclosed <{builder.stack[-1][0]}>"
    return tuple(builder.stack[0][2])


def actual_html(deck: Deck) -> str:
    """The deck's slides as the golden files write them."""
    parts = []
    for slide in deck.slides:
        notes = f'<aside class="notes">{slide.notes_html}</aside>' if slide.notes_html else ""
        parts.append(f"<section>{slide.html}{notes}</section>")
    markup = "\n".join(parts)
    for asset_id, asset in deck.assets.items():
        relative = asset.path.relative_to(deck.folder.resolve()).as_posix()
        markup = markup.replace(f"{ASSET_SCHEME}{asset_id}", f"{ASSET_SCHEME}{relative}")
    return markup


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    """The compiled slides match the hand-written expectation."""
    deck = load_deck(GOLDEN / f"{case}.md")
    expected = (GOLDEN / f"{case}.html").read_text(encoding="utf-8")
    assert tree(actual_html(deck)) == tree(expected)


def test_every_case_has_an_expectation() -> None:
    """No golden deck without its hand-written HTML, and the other way round."""
    assert CASES
    assert sorted(p.stem for p in GOLDEN.glob("*.html")) == CASES


def test_normaliser_sees_differences() -> None:
    """The comparison is not blind: structure, attributes and text all count."""
    assert tree("<p>a <b>b</b></p>") == tree("<p>a\n  <b>b</b></p>")
    assert tree("<p>a</p>") != tree("<p>b</p>")
    assert tree('<p class="x">a</p>') != tree("<p>a</p>")
    assert tree("<ul><li>a</li></ul>") != tree("<ol><li>a</li></ol>")
