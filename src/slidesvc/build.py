"""Builds: a deck to an HTML file, a PDF, an artifact folder; a folder to a site.

This is where the CLI's `build`, `pdf` and `check` land, and what the server
(deck mode), the publisher and the image builder call to compile a deck.
Every output is written atomically: a failing deck leaves nothing behind.
"""

from __future__ import annotations

import html
import json
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from slidesvc import artifacts as art
from slidesvc.errors import DeckError, Diagnostic, RenderError, SlidesvcError
from slidesvc.fsutil import atomic_dir, write_atomic
from slidesvc.model import Deck

PDF_TIMEOUT = float(os.environ.get("SLIDESVC_PDF_TIMEOUT", "120"))
"""Wall-clock limit (s) for one PDF render in its worker process."""
PDF_MEMORY_MB = int(os.environ.get("SLIDESVC_PDF_MEMORY_MB", "1024"))
"""Address-space limit (MiB) for the PDF worker process."""


def _load(path: Path) -> Deck:
    from slidesvc.parse import load_deck

    return load_deck(path)


def report(diagnostics: Iterable[Diagnostic], stream: TextIO | None = None) -> None:
    """Print findings as ``file:line: message``, one per line."""
    out = stream or sys.stderr
    for d in diagnostics:
        print(d, file=out)


def _deck_json(deck: Deck) -> bytes:
    from slidesvc.describe import describe

    return json.dumps(describe(deck), ensure_ascii=False, indent=2).encode("utf-8") + b"\n"


def compile_artifacts(deck_path: Path) -> art.Artifacts:
    """Compile a deck in memory: both pages and deck.json (the PDF comes later, lazily)."""
    from slidesvc.render_html import render_html

    deck = _load(deck_path)
    return art.Artifacts(
        index_html=render_html(deck),
        deck=json.loads(_deck_json(deck)),
        presenter_html=render_html(deck, notes=True),
    )


def build_artifacts(deck_path: Path, out_dir: Path, *, private: bool = True,
                    pdf: bool = True) -> art.Artifacts:
    """Write a deck's artifact folder (see `slidesvc.artifacts`); all or nothing."""
    from slidesvc.render_html import render_html

    deck = _load(deck_path)
    files: dict[str, bytes] = {
        art.INDEX_HTML: render_html(deck).encode("utf-8"),
        art.DECK_JSON: _deck_json(deck),
    }
    if pdf:
        pdf_bytes = render_pdf_file(deck_path, notes=False)
        files[art.DECK_PDF] = pdf_bytes
        files[art.THUMBNAIL_PNG] = _thumbnail(pdf_bytes)
        if private or deck.meta.pdf_notes:
            files[art.NOTES_PDF] = render_pdf_file(deck_path, notes=True)
    if private:
        files[art.PRESENTER_HTML] = render_html(deck, notes=True).encode("utf-8")
    with atomic_dir(out_dir) as tmp:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
    return art.Artifacts.load(out_dir)


def build_file(src: Path, out: Path, *, notes: bool = False) -> Deck:
    """`slidesvc build DECK.md -o OUT.html`: one self-contained HTML file."""
    from slidesvc.render_html import render_html

    deck = _load(src)
    report(deck.diagnostics)
    write_atomic(out, render_html(deck, notes=notes).encode("utf-8"))
    return deck


def render_pdf_file(deck_path: Path, *, notes: bool) -> bytes:
    """Render a deck's PDF in a worker process with time and memory limits."""
    from slidesvc.pdfworker import render_pdf_isolated

    return render_pdf_isolated(deck_path, notes=notes, timeout=PDF_TIMEOUT,
                               memory_mb=PDF_MEMORY_MB)


def build_pdf(src: Path, out: Path, *, notes: bool = False) -> None:
    """`slidesvc pdf DECK.md -o OUT.pdf`."""
    deck = _load(src)  # report deck errors and warnings before starting a worker
    report(deck.diagnostics)
    write_atomic(out, render_pdf_file(src, notes=notes or deck.meta.pdf_notes))


async def render_pdf_async(deck_path: Path, *, notes: bool) -> bytes:
    """The server's PDF: same worker process and limits, awaited."""
    from slidesvc.pdfworker import render_pdf_isolated_async

    return await render_pdf_isolated_async(deck_path, notes=notes, timeout=PDF_TIMEOUT,
                                           memory_mb=PDF_MEMORY_MB)


async def render_thumbnail_async(deck_path: Path) -> bytes:
    """Slide 1 as PNG (for oEmbed and index pages), from the deck's PDF."""
    import asyncio

    pdf = await render_pdf_async(deck_path, notes=False)
    return await asyncio.get_running_loop().run_in_executor(None, _thumbnail, pdf)


def _thumbnail(pdf: bytes) -> bytes:
    from slidesvc.thumbnail import png_of_first_page

    return png_of_first_page(pdf)


def deck_files(folder: Path) -> list[Path]:
    """The decks of a folder: its ``*.md`` files (not README-like files), sorted."""
    skip = {"readme.md", "changelog.md", "license.md"}
    return sorted(p for p in folder.glob("*.md") if p.is_file() and p.name.lower() not in skip)


@dataclass(frozen=True)
class SiteEntry:
    """One deck on the site index."""

    slug: str
    title: str
    author: str
    date: str
    description: str
    slides: int
    has_pdf: bool


def build_site(src_dir: Path, out_dir: Path, *, pdf: bool = True) -> int:
    """`slidesvc build DECKS_DIR -o SITE`: every deck, plus an index; returns the exit code."""
    decks = deck_files(src_dir)
    if not decks:
        raise SlidesvcError(f"{src_dir}: no .md decks found; create one with `slidesvc new NAME`")
    progress = _Progress(len(decks), sys.stderr)
    entries: list[SiteEntry] = []
    failed = 0
    for path in decks:
        progress.step(path.name)
        try:
            deck = _load(path)
            report(deck.diagnostics)
            built = build_artifacts(path, out_dir / deck.slug, private=False, pdf=pdf)
        except SlidesvcError as exc:
            failed += 1
            progress.clear()
            _print_error(exc)
            continue
        meta = built.deck
        entries.append(SiteEntry(
            slug=deck.slug, title=str(meta["title"]), author=str(meta.get("author") or ""),
            date=str(meta.get("date") or ""), description=str(meta.get("description") or ""),
            slides=int(meta["slides"]), has_pdf=built.pdf is not None,
        ))
    progress.done()
    write_atomic(out_dir / "index.html", render_site_index(entries).encode("utf-8"))
    print(f"built {len(entries)} of {len(decks)} decks into {out_dir}", file=sys.stderr)
    return 1 if failed else 0


def render_site_index(entries: Sequence[SiteEntry]) -> str:
    """The static site's front page: one card per deck."""
    esc = html.escape
    cards = []
    for e in entries:
        byline = " · ".join(x for x in (e.author, e.date, f"{e.slides} slides") if x)
        pdf = f' · <a href="{esc(e.slug)}/deck.pdf">PDF</a>' if e.has_pdf else ""
        cards.append(
            f'<li><a class="title" href="{esc(e.slug)}/">{esc(e.title)}</a>'
            f'<p class="by">{esc(byline)}</p>'
            + (f"<p>{esc(e.description)}</p>" if e.description else "")
            + f'<p><a href="{esc(e.slug)}/">View</a>{pdf}</p></li>'
        )
    return _INDEX_TEMPLATE.replace("{cards}", "\n".join(cards))


_INDEX_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:">
<title>Talks</title>
<style>
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
main{max-width:60rem;margin:0 auto;padding:2rem 1rem}h1{font-size:2rem;margin:0 0 1.5rem}
ul{list-style:none;padding:0;display:grid;gap:1rem;grid-template-columns:repeat(auto-fill,minmax(18rem,1fr))}
li{background:#fff;border-radius:.5rem;padding:1rem 1.25rem;box-shadow:0 1px 3px #0002}
.title{font-weight:600;font-size:1.15rem;color:#1d2330;text-decoration:none}.by{color:#5b6475;margin:.25rem 0}
a{color:#2456c7}
</style></head>
<body><main><h1>Talks</h1><ul>
{cards}
</ul></main></body></html>
"""


def check(path: Path, *, strict: bool = False, layout: bool = True) -> int:
    """`slidesvc check`: print errors and warnings; exit code 1 when there are errors."""
    paths = deck_files(path) if path.is_dir() else [path]
    if not paths:
        raise SlidesvcError(f"{path}: no .md decks found")
    errors = 0
    for deck_path in paths:
        try:
            deck = _load(deck_path)
        except DeckError as exc:
            findings = [exc.diagnostic, *exc.others]
            report(findings)
            errors += sum(1 for d in findings if d.severity == "error")
            continue
        findings = list(deck.diagnostics)
        if layout:
            from slidesvc.render_pdf import find_overflows

            overflows = find_overflows(deck)
            if strict:
                overflows = [Diagnostic(d.path, d.line, d.message, "error") for d in overflows]
            findings.extend(overflows)
        report(findings)
        errors += sum(1 for d in findings if d.severity == "error")
    return 1 if errors else 0


def _print_error(exc: SlidesvcError) -> None:
    if isinstance(exc, DeckError):
        report([exc.diagnostic, *exc.others])
    else:
        print(exc, file=sys.stderr)


class _Progress:
    """A one-line progress bar, only when stderr is a terminal."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total, self.count, self.stream = total, 0, stream
        self.live = stream.isatty()

    def step(self, label: str) -> None:
        self.count += 1
        if self.live:
            width = 30
            filled = width * (self.count - 1) // self.total
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r[{bar}] {self.count}/{self.total} {label[:40]:<40}")
            self.stream.flush()

    def clear(self) -> None:
        if self.live:
            self.stream.write("\r" + " " * 80 + "\r")

    def done(self) -> None:
        if self.live:
            self.stream.write(f"\r[{'#' * 30}] {self.total}/{self.total}{' ' * 42}\n")
            self.stream.flush()


__all__ = [
    "RenderError",
    "build_artifacts",
    "build_file",
    "build_pdf",
    "build_site",
    "check",
    "compile_artifacts",
    "render_pdf_async",
    "render_thumbnail_async",
]
