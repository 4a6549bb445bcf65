"""Describe a compiled deck as plain data: the content of ``deck.json``.

Index pages, oEmbed answers and the server's ``/deck.json`` all read this
description instead of the deck itself, so it holds only JSON types and
nothing private (no notes text, no source path).
"""

from __future__ import annotations

from typing import Any

from slidesvc import __version__
from slidesvc.model import Deck


def describe(deck: Deck) -> dict[str, Any]:
    """The deck's public description; every value is JSON-serialisable."""
    meta = deck.meta
    return {
        "slug": deck.slug,
        "title": meta.title,
        "author": meta.author,
        "date": meta.date,
        "description": meta.description,
        "lang": meta.lang,
        "slides": len(deck.slides),
        "outline": [{"slide": s.number, "title": s.title} for s in deck.slides],
        "aspect": meta.aspect,
        "width": meta.width,
        "height": meta.height,
        "version": deck.content_hash,
        "generator": f"slidesvc {__version__}",
        "has_notes": deck.has_notes,
        "pdf_filename": meta.pdf_filename or f"{deck.slug}.pdf",
        "pdf_notes": meta.pdf_notes,
        "embed_origins": list(meta.embed_origins),
    }
