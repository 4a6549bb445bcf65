"""Builds: a deck to an HTML file, a PDF, an artifact folder; a folder to a site.

This is where the CLI's `build`, `pdf` and `check` land, and what the server
(deck mode), the publisher and the image builder call to compile a deck.
Every output is written atomically: a failing deck leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Coroutine, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from slidesvc import artifacts as art
from slidesvc.errors import DeckError, Diagnostic, Severity, SlidesvcError
from slidesvc.fsutil import atomic_dir, write_atomic
from slidesvc.model import Deck

if TYPE_CHECKING:
    from slidesvc.parse_memo import ConversionMemo
    from slidesvc.pdfworker import WarmWorker

T = TypeVar("T")


def _load(path: Path, memo: ConversionMemo | None = None) -> Deck:
    from slidesvc.parse import load_deck

    return load_deck(path, memo=memo)


def report(diagnostics: Iterable[Diagnostic], stream: TextIO | None = None) -> None:
    """Print findings as ``file:line: message``, one per line."""
    out = stream or sys.stderr
    for d in diagnostics:
        print(d, file=out)


def _deck_json(deck: Deck) -> bytes:
    from slidesvc.describe import describe

    return json.dumps(describe(deck), ensure_ascii=False, indent=2).encode("utf-8") + b"\n"


def compile_deck(deck_path: Path, memo: ConversionMemo | None = None) -> tuple[Deck, art.Artifacts]:
    """Compile a deck in memory: both pages and deck.json (the PDF comes later,
    lazily, from the returned `Deck`, so it matches the pages exactly). Watch
    modes pass the same ``memo`` every time (see `load_deck`)."""
    from slidesvc.render_html import render_html

    deck = _load(deck_path, memo)
    return deck, art.Artifacts(
        index_html=render_html(deck),
        deck=json.loads(_deck_json(deck)),
        presenter_html=render_html(deck, notes=True),
    )


class PdfRenderer:
    """Renders PDFs, each in a child of one warm worker process (`pdfworker`),
    and reports their warnings. Made by `pdf_renderer`."""

    def __init__(self, runner: asyncio.Runner, worker: WarmWorker) -> None:
        self._runner = runner
        self._worker = worker

    def __call__(self, deck: Deck, *, notes: bool) -> bytes:
        from slidesvc.pdfworker import render_pdf_isolated_async

        found: list[Diagnostic] = []
        pdf = self._runner.run(
            render_pdf_isolated_async(deck, notes=notes, worker=self._worker, diagnostics=found)
        )
        report(found)
        return pdf

    def overflows(self, deck: Deck) -> list[Diagnostic]:
        """`slidesvc check`'s overflowing slides, laid out in a child of the worker."""
        from slidesvc.pdfworker import find_overflows_isolated_async

        return self._runner.run(find_overflows_isolated_async(deck, worker=self._worker))

    def wait(self, awaitable: Coroutine[Any, Any, T]) -> T:
        """Run something else on the worker's event loop (e.g. wait for a change)."""
        return self._runner.run(awaitable)


@contextlib.contextmanager
def pdf_renderer(*, preload: bool = False) -> Iterator[PdfRenderer]:
    """A `PdfRenderer` whose worker starts now, so its imports (~0.5 s)
    overlap what the caller does next (parsing the deck), and stops at the end;
    ``preload`` for rendering one deck again and again (`WarmWorker`)."""
    from slidesvc.pdfworker import WarmWorker

    with asyncio.Runner() as runner:
        worker = WarmWorker(preload=preload)
        runner.run(worker.start())
        try:
            yield PdfRenderer(runner, worker)
        finally:
            runner.run(worker.close())


def build_artifacts(
    deck_path: Path,
    out_dir: Path,
    *,
    private: bool = True,
    pdf: bool = True,
    render: PdfRenderer | None = None,
    deck: Deck | None = None,
) -> art.Artifacts:
    """Write a deck's artifact folder (see `slidesvc.artifacts`); all or nothing.
    `deck` is `deck_path` already parsed, `render` a renderer to reuse."""
    from slidesvc.render_html import render_html

    with contextlib.ExitStack() as stack:
        if pdf and render is None:
            render = stack.enter_context(pdf_renderer())
        if deck is None:
            deck = _load(deck_path)
        files: dict[str, bytes] = {
            art.INDEX_HTML: render_html(deck).encode("utf-8"),
            art.DECK_JSON: _deck_json(deck),
        }
        if render is not None and pdf:
            pdf_bytes = render(deck, notes=False)
            files[art.DECK_PDF] = pdf_bytes
            files[art.THUMBNAIL_PNG] = _thumbnail(pdf_bytes)
            if private or deck.meta.pdf_notes:
                files[art.NOTES_PDF] = render(deck, notes=True)
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


def build_pdf(src: Path, out: Path, *, notes: bool = False) -> None:
    """`slidesvc pdf DECK.md -o OUT.pdf`."""
    with pdf_renderer() as render:  # its worker imports WeasyPrint while we parse
        deck = _load(src)
        report(deck.diagnostics)
        write_atomic(out, render(deck, notes=notes or deck.meta.pdf_notes))


def watch_pdf(src: Path, out: Path, *, notes: bool = False, stream: TextIO = sys.stderr) -> int:
    """`slidesvc pdf --watch`: export, then again after every settled change of
    the deck's files, from one warm worker; errors are printed, the last good
    PDF stays. Runs until interrupted."""
    from slidesvc.parse_memo import ConversionMemo
    from slidesvc.server.source import DeckSource
    from slidesvc.server.watch import settled_change, snapshot

    files = DeckSource(src)
    memo = ConversionMemo()
    written = frozenset({os.path.abspath(out)})  # writing it is not a change to export
    with pdf_renderer(preload=True) as render:
        while True:
            seen = snapshot(files, written)
            started = time.perf_counter()
            try:
                deck = _load(src, memo)
                report(deck.diagnostics, stream)
                write_atomic(out, render(deck, notes=notes or deck.meta.pdf_notes))
            except SlidesvcError as exc:
                _print_error(exc, stream)
                print("slidesvc: the last good PDF stays; fix the deck and save", file=stream)
            else:
                took = time.perf_counter() - started
                print(
                    f"slidesvc: wrote {out} ({len(deck.slides)} slides) in {took:.2f} s; "
                    "watching for changes (Ctrl+C stops)",
                    file=stream,
                    flush=True,
                )
            render.wait(settled_change(files, seen, exclude=written))


async def render_thumbnail_async(deck_path: Path) -> bytes:
    """Slide 1 as PNG (for oEmbed and index pages), from the deck's PDF."""
    from slidesvc.pdfworker import render_pdf_isolated_async

    pdf = await render_pdf_isolated_async(deck_path, notes=False)
    return await asyncio.get_running_loop().run_in_executor(None, _thumbnail, pdf)


def _thumbnail(pdf: bytes) -> bytes:
    from slidesvc.thumbnail import png_of_first_page

    return png_of_first_page(pdf)


def deck_files(folder: Path) -> list[Path]:
    """The decks of a folder: its ``*.md`` files (not README-like files), sorted."""
    skip = {"readme.md", "changelog.md", "license.md"}
    return sorted(p for p in folder.glob("*.md") if p.is_file() and p.name.lower() not in skip)


def build_site(src_dir: Path, out_dir: Path, *, pdf: bool = True) -> int:
    """`slidesvc build DECKS_DIR -o SITE`: every deck, plus an index; returns the exit code."""
    decks = deck_files(src_dir)
    if not decks:
        raise SlidesvcError(f"{src_dir}: no .md decks found; create one with `slidesvc new NAME`")
    from slidesvc.index_page import DeckSummary, render_index

    progress = _Progress(len(decks), sys.stderr)
    entries: list[DeckSummary] = []
    failed = 0
    with pdf_renderer() if pdf else contextlib.nullcontext() as render:
        for path in decks:
            progress.step(path.name)
            try:
                deck = _load(path)
                report(deck.diagnostics)
                built = build_artifacts(
                    path, out_dir / deck.slug, private=False, pdf=pdf, render=render, deck=deck
                )
            except SlidesvcError as exc:
                failed += 1
                progress.clear()
                _print_error(exc)
                continue
            entries.append(
                DeckSummary(
                    slug=deck.slug,
                    path=path,
                    title=deck.meta.title,
                    author=deck.meta.author,
                    date=deck.meta.date,
                    description=deck.meta.description,
                    slides=len(deck.slides),
                    width=deck.meta.width,
                    height=deck.meta.height,
                    content_hash=built.version,
                )
            )
    progress.done()
    page = render_index(entries, base_url="", static=True, pdfs=pdf)
    write_atomic(out_dir / "index.html", page.encode("utf-8"))
    print(f"built {len(entries)} of {len(decks)} decks into {out_dir}", file=sys.stderr)
    return 1 if failed else 0


def check(path: Path, *, strict: bool = False, layout: bool = True) -> int:
    """`slidesvc check`: print errors and warnings; exit code 1 when there are errors."""
    paths = deck_files(path) if path.is_dir() else [path]
    if not paths:
        raise SlidesvcError(f"{path}: no .md decks found")
    errors = 0
    # The layout runs in a worker process, with the PDF renderer's limits.
    with pdf_renderer() if layout else contextlib.nullcontext() as render:
        for deck_path in paths:
            try:
                deck = _load(deck_path)
            except DeckError as exc:
                findings = [exc.diagnostic, *exc.others]
            else:
                findings = list(deck.diagnostics)
                if render is not None:
                    findings += _overflows(render, deck, strict=strict)
            report(findings)
            errors += sum(1 for d in findings if d.severity == "error")
    return 1 if errors else 0


def _overflows(render: PdfRenderer, deck: Deck, *, strict: bool) -> list[Diagnostic]:
    try:
        found = render.overflows(deck)
    except SlidesvcError as exc:  # the layout hit its time or memory limit
        return [Diagnostic(deck.path, 0, str(exc), "error")]
    severity: Severity = "error" if strict else "warning"
    return [Diagnostic(d.path, d.line, d.message, severity) for d in found]


def _print_error(exc: SlidesvcError, stream: TextIO | None = None) -> None:
    if isinstance(exc, DeckError):
        report([exc.diagnostic, *exc.others], stream)
    else:
        print(exc, file=stream or sys.stderr)


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
    "build_artifacts",
    "build_file",
    "build_pdf",
    "build_site",
    "check",
    "compile_deck",
    "pdf_renderer",
    "render_thumbnail_async",
    "watch_pdf",
]
