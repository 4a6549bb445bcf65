"""Builds: artifact folders, the example decks, atomic outputs."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from slidesvc import artifacts as art
from slidesvc.build import build_artifacts, build_file, compile_deck, deck_files
from slidesvc.errors import DeckError
from slidesvc.parse import load_deck

DECKS = Path(__file__).resolve().parents[1] / "decks"

NOTED = """\
---
title: Noted
---

# Public words

???
Secret speaker words
"""


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("deck", deck_files(DECKS), ids=lambda p: p.name)
def test_example_decks_build_without_warnings(deck: Path, tmp_path: Path) -> None:
    """Every deck in decks/ compiles with zero warnings and renders to one HTML file."""
    loaded = load_deck(deck)
    assert loaded.diagnostics == ()
    out = tmp_path / "deck.html"
    build_file(deck, out)
    assert out.stat().st_size > 0


def test_example_decks_exist() -> None:
    """decks/ holds the slidesvc talk and a minimal deck."""
    names = {p.name for p in deck_files(DECKS)}
    assert {"slidesvc.md", "minimal.md"} <= names


def test_compile_deck_keeps_notes_private(write_deck: Callable[..., Path]) -> None:
    """The public page has no notes; the presenter page has them."""
    _, built = compile_deck(write_deck(NOTED))
    assert "Public words" in built.index_html
    assert "Secret speaker words" not in built.index_html
    assert built.presenter_html is not None
    assert "Secret speaker words" in built.presenter_html
    assert built.deck["slides"] == 1
    assert built.deck["title"] == "Noted"


def test_build_artifacts_writes_every_file(write_deck: Callable[..., Path], tmp_path: Path) -> None:
    """An artifact folder holds the pages, deck.json, both PDFs and a PNG thumbnail."""
    out = tmp_path / "artifacts"
    built = build_artifacts(write_deck(NOTED), out)
    names = {p.name for p in out.iterdir()}
    assert set(art.PUBLIC_FILES) | set(art.PRIVATE_FILES) <= names
    assert (out / art.DECK_PDF).read_bytes().startswith(b"%PDF-")
    width, height = png_size((out / art.THUMBNAIL_PNG).read_bytes())
    assert (width, height) == (640, 360), "16:9 slide 1 at 640 px wide"
    assert json.loads((out / art.DECK_JSON).read_text())["version"] == built.version
    loaded = art.Artifacts.load(out)
    assert loaded.presenter_html is not None and "Secret speaker words" in loaded.presenter_html


def test_build_artifacts_is_all_or_nothing(write_deck: Callable[..., Path], tmp_path: Path) -> None:
    """A broken deck leaves no artifact folder, and an earlier good one stays intact."""
    out = tmp_path / "artifacts"
    deck = write_deck(NOTED)
    build_artifacts(deck, out, pdf=False)
    before = (out / art.INDEX_HTML).read_bytes()
    deck.write_text("---\naspect: wide\n---\n# x\n", encoding="utf-8")
    with pytest.raises(DeckError):
        build_artifacts(deck, out, pdf=False)
    assert (out / art.INDEX_HTML).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifacts", "talk.md"]
