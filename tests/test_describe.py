"""describe: the deck.json content, plain JSON and nothing private."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from slidesvc import __version__
from slidesvc.describe import describe
from slidesvc.model import Deck, DeckMeta, Slide
from slidesvc.parse import load_deck

DECK = """\
---
title: Shipping decks
author: Ada
date: 2026-11-28
description: How slides become services
lang: fr
aspect: 4:3
pdf:
  filename: shipping.pdf
embed:
  origins: [https://wiki.example.org]
---

# Shipping decks

???
Secret: mention the demo
---

## Why

Because.
---

Just text, no heading.
"""


def test_describe_a_parsed_deck(write_deck: Callable[..., Path]) -> None:
    """Every documented key, with values taken from the deck's front matter and slides."""
    deck = load_deck(write_deck(DECK, "Ship It.md"))
    info = describe(deck)
    assert info == {
        "slug": "ship-it",
        "title": "Shipping decks",
        "author": "Ada",
        "date": "2026-11-28",
        "description": "How slides become services",
        "lang": "fr",
        "slides": 3,
        "outline": [
            {"slide": 1, "title": "Shipping decks"},
            {"slide": 2, "title": "Why"},
            {"slide": 3, "title": ""},
        ],
        "aspect": "4:3",
        "width": 960,
        "height": 720,
        "version": deck.content_hash,
        "generator": f"slidesvc {__version__}",
        "has_notes": True,
        "pdf_filename": "shipping.pdf",
        "pdf_notes": False,
        "embed_origins": ["https://wiki.example.org"],
    }
    assert len(info["version"]) >= 8


def test_description_is_json_and_keeps_notes_out(write_deck: Callable[..., Path]) -> None:
    """It round-trips through JSON and never contains the notes' text or the source path."""
    path = write_deck(DECK)
    text = json.dumps(describe(load_deck(path)))
    assert json.loads(text)["slides"] == 3
    assert "Secret" not in text
    assert str(path.parent) not in text


def test_defaults_for_a_bare_deck() -> None:
    """No notes and no PDF name: has_notes is false and the PDF is named after the slug."""
    deck = Deck(Path("/d/x.md"), "x", DeckMeta(title="X"), (Slide(1, 1, "<p>x</p>"),), "")
    info = describe(deck)
    assert (info["has_notes"], info["pdf_filename"], info["slides"]) == (False, "x.pdf", 1)
    assert (info["pdf_notes"], info["embed_origins"]) == (False, [])
    assert (info["author"], info["width"], info["height"], info["aspect"]) == (
        "",
        1280,
        720,
        "16:9",
    )
