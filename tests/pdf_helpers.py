"""Decks built by hand (no parser needed) and PDF readers for the PDF tests."""

from __future__ import annotations

import io
import os
import re
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any

from pypdf import PdfReader

from slidesvc.model import Asset, Deck, DeckMeta, Slide

THEME = """
section.slide { padding: 60px 80px; font-family: "DejaVu Sans", sans-serif;
  font-size: 32px; color: #222; background: #fff; }
section.slide h1 { font-size: 56px; margin: 0 0 0.4em; color: #1a4b8c; }
section.slide footer { position: absolute; left: 80px; bottom: 20px; font-size: 18px; }
section.slide .page-number { position: absolute; right: 40px; bottom: 20px; font-size: 18px; }
code, pre { font-family: "DejaVu Sans Mono", monospace; }
"""

ROOT = Path(__file__).resolve().parents[1]


def default_theme() -> str:
    """The real default theme on its base rules (for what themes style, like bg splits)."""
    from slidesvc.themes import base_css

    return base_css() + "\n" + (ROOT / "themes" / "default.css").read_text(encoding="utf-8")


def make_deck(
    folder: Path,
    slides: list[str | tuple[str, str]],
    *,
    theme_css: str = THEME,
    assets: dict[str, Asset] | None = None,
    **meta: Any,
) -> Deck:
    """A deck in ``folder`` whose slides are (html, notes_html) pairs or just html."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "talk.md"
    path.write_text("placeholder source\n", encoding="utf-8")
    built = []
    for number, item in enumerate(slides, start=1):
        html, notes = (item, "") if isinstance(item, str) else item
        title_match = re.search(r"<h1[^>]*>(.*?)</h1>", html, re.S)
        title = re.sub(r"<[^>]+>", "", title_match[1]) if title_match else ""
        built.append(
            Slide(
                number=number,
                line=1 + 10 * number,
                html=html,
                notes_html=notes,
                title=title,
                text=re.sub(r"<[^>]+>", " ", html),
            )
        )
    deck_meta = DeckMeta(title=meta.pop("title", "A talk"), **meta)
    return Deck(
        path=path,
        slug="talk",
        meta=deck_meta,
        slides=tuple(built),
        theme_css=theme_css,
        assets=assets or {},
    )


def with_slides(deck: Deck, **changes: Any) -> Deck:
    return replace(deck, **changes)


def reader(pdf: bytes) -> PdfReader:
    return PdfReader(io.BytesIO(pdf))


def page_texts(pdf: bytes) -> list[str]:
    return [" ".join(p.extract_text().split()) for p in reader(pdf).pages]


def all_objects(pdf: bytes) -> list[Any]:
    """Every object of the file, resolved (streams included)."""
    r = reader(pdf)
    found = []
    for number in range(1, int(r.trailer["/Size"])):
        obj = r.get_object(number)
        if obj is not None:
            found.append(obj)
    return found


def decoded_bytes(pdf: bytes) -> bytes:
    """The file with every Flate stream inflated, to search for leaked content."""
    parts = [pdf]
    for match in re.finditer(rb"stream\r?\n(.*?)endstream", pdf, re.S):
        try:
            parts.append(zlib.decompress(match[1]))
        except zlib.error:
            continue
    return b"\n".join(parts)


def warm_workers(parent: int | None = None) -> set[int]:
    """PIDs of the warm PDF workers whose parent is `parent` (default: this process)."""
    parent = os.getpid() if parent is None else parent
    found = set()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (proc / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and b"slidesvc.pdfworker" in command and b"--warm" in command:
            found.add(int(proc.name))
    return found


def render_isolated(deck: Deck | Path, **options: Any) -> bytes:
    """`render_pdf_isolated_async` from synchronous code, as the command line does."""
    import asyncio

    from slidesvc.pdfworker import render_pdf_isolated_async

    return asyncio.run(render_pdf_isolated_async(deck, **options))
