"""load_deck with a ConversionMemo (the watch modes): slides unchanged since the
last load are replayed, not converted, and give exactly what a fresh load gives."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from slidesvc.errors import DeckError
from slidesvc.markdown_ext import Context, SlideConverter
from slidesvc.model import Deck
from slidesvc.parse import load_deck
from slidesvc.parse_memo import ConversionMemo, Converted, Findings

WriteDeck = Callable[..., Path]
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
OTHER_PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 16

SLIDES = [
    "# Title\n\n![bg left:40%](a.png)\n\nIntro *text*\n",
    "# Lists\n\n* one\n* two\n\n```python\nx = 1\n```\n\n???\nSay it slowly\n",
    "# Remote\n\n![](https://example.org/r.png)\n\n$\\frac{a$\n",
    "# Local\n\n![w:200px](a.png)\n\n1. first\n1. second\n",
    "# Math\n\n$$\nE = mc^2\n$$\n",
]


@pytest.fixture
def conversions(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The texts SlideConverter converts, in order."""
    seen: list[str] = []
    real = SlideConverter.convert

    def counting(self: SlideConverter, text: str, ctx: Context) -> str:
        seen.append(text)
        html: str = real(self, text, ctx)
        return html

    monkeypatch.setattr(SlideConverter, "convert", counting)
    yield seen


def same_deck(a: Deck, b: Deck) -> None:
    assert a.slides == b.slides
    assert a.assets == b.assets and list(a.assets) == list(b.assets)
    assert a.diagnostics == b.diagnostics
    assert (a.code_css, a.content_hash) == (b.code_css, b.content_hash)


@dataclass
class Loaded:
    path: Path
    memo: ConversionMemo
    first: Deck


@pytest.fixture
def loaded(write_deck: WriteDeck, tmp_path: Path, conversions: list[str]) -> Loaded:
    """SLIDES (with a.png) loaded once with a fresh memo; conversions reset."""
    (tmp_path / "a.png").write_bytes(PNG)
    path = write_deck("\n---\n".join(SLIDES))
    memo = ConversionMemo()
    first = load_deck(path, memo=memo)
    assert len(conversions) == len(SLIDES) + 1  # one slide has notes
    conversions.clear()
    return Loaded(path, memo, first)


def test_a_replayed_deck_is_a_freshly_loaded_deck(loaded: Loaded, conversions: list[str]) -> None:
    replayed = load_deck(loaded.path, memo=loaded.memo)
    assert conversions == []
    same_deck(replayed, load_deck(loaded.path))
    assert sum("remote image" in d.message for d in replayed.diagnostics) == 1


def test_an_edit_converts_only_its_slide_and_moves_later_lines(
    loaded: Loaded, write_deck: WriteDeck, conversions: list[str]
) -> None:
    edited = SLIDES.copy()
    edited[0] = SLIDES[0].replace("Intro *text*", "Intro\n\nmore\n\nand *more* text")
    write_deck("\n---\n".join(edited))
    after = load_deck(loaded.path, memo=loaded.memo)
    assert len(conversions) == 1 and "and *more* text" in conversions[0]
    same_deck(after, load_deck(loaded.path))
    shift = 4
    assert [d.line for d in after.diagnostics] == [d.line + shift for d in loaded.first.diagnostics]


def test_a_changed_image_is_converted_again(
    loaded: Loaded, tmp_path: Path, conversions: list[str]
) -> None:
    (tmp_path / "a.png").write_bytes(OTHER_PNG)
    after = load_deck(loaded.path, memo=loaded.memo)
    assert len(conversions) == 2  # the two slides showing a.png
    same_deck(after, load_deck(loaded.path))
    before = loaded.first
    assert after.assets != before.assets
    assert after.slides[0].backgrounds[0].url != before.slides[0].backgrounds[0].url


def test_a_deleted_image_is_one_error_as_in_a_fresh_load(loaded: Loaded, tmp_path: Path) -> None:
    (tmp_path / "a.png").unlink()
    with pytest.raises(DeckError) as replayed:
        load_deck(loaded.path, memo=loaded.memo)
    with pytest.raises(DeckError) as fresh:
        load_deck(loaded.path)
    assert str(replayed.value) == str(fresh.value)
    assert replayed.value.others == fresh.value.others


def test_the_forked_half_of_a_big_deck_is_remembered_too(
    write_deck: WriteDeck, tmp_path: Path, parallel_parse: list[int], conversions: list[str]
) -> None:
    (tmp_path / "a.png").write_bytes(PNG)
    path = write_deck("\n---\n".join(f"# S{i}\n\n* x {i}\n\n![](a.png)\n" for i in range(12)))
    memo = ConversionMemo()
    load_deck(path, memo=memo)
    assert len(parallel_parse) == 1 and len(memo) == 12
    conversions.clear()
    replayed = load_deck(path, memo=memo)
    assert len(parallel_parse) == 1 and conversions == []  # nothing left to share out
    same_deck(replayed, load_deck(path))


def test_the_memo_forgets_the_least_recently_used() -> None:
    memo = ConversionMemo(max_entries=2)
    for text in ("a", "b"):
        memo.put((text, True), Converted(text, (), Findings()))
    assert memo.get(("a", True)) is not None  # "a" is now the most recent
    memo.put(("c", True), Converted("c", (), Findings()))
    assert ("b", True) not in memo and ("a", True) in memo and ("c", True) in memo
