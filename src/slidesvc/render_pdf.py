"""The deck as a PDF, made by WeasyPrint (the only module that imports it).

Each slide is one fixed-size page, so slides are rendered independently:
consecutive slides that are not in the on-disk cache are grouped in small
batches and laid out in parallel worker processes; every batch is written as
one PDF whose pages are cached per slide (keyed by the hash of the slide's
HTML, the stylesheets, its images and the WeasyPrint version). `pdf_assemble`
then joins the cached pages, merges the fonts the batches subset separately,
and adds outline and metadata. A confined URL fetcher serves only ``data:``
URIs, the deck's images and files inside the deck's folder; anything else is
refused and reported against the slide's line. The layout tree that WeasyPrint
builds also tells how far a slide's content overflows its page
(`find_overflows`, used by ``slidesvc check``).
"""

from __future__ import annotations

import hashlib
import html
import logging
import math
import multiprocessing
import os
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from slidesvc import __version__
from slidesvc.errors import Diagnostic, RenderError
from slidesvc.libfind import ldconfig_only
from slidesvc.model import ASSET_SCHEME, Deck, Slide
from slidesvc.pdf_assemble import Metadata, PageRef, assemble, preload_batches
from slidesvc.pdf_batch import SubsetLater, has_original, plain_objects
from slidesvc.pdf_cache import PageCache, PageEntry, default_cache_dir
from slidesvc.pdf_html import document as print_document
from slidesvc.pdf_html import page_body, stylesheet
from slidesvc.pdf_layout import justify_content, overflow, page_marker

with ldconfig_only():  # WeasyPrint tries each native library under several names
    import weasyprint
    from weasyprint import CSS, HTML
    from weasyprint.css.counters import CounterStyle
    from weasyprint.html import UA
    from weasyprint.text.fonts import FontConfiguration, get_hb_object_data
    from weasyprint.urls import URLFetcher, URLFetcherResponse

MIN_WEASYPRINT = 70
"""Older releases have SSRF / local-file advisories; we refuse to run with them."""

MAX_FILE_BYTES = 64 * 1024 * 1024
"""Largest local file (image, font, stylesheet) the fetcher hands to WeasyPrint."""

_CACHE_SALT = "slidesvc-pdf-2"
_BATCH_MAX = 16
_ASSET_RE = re.compile(re.escape(ASSET_SCHEME) + r"([A-Za-z0-9_.-]+)")
_LOG = logging.getLogger(__name__)


def check_weasyprint_version(version: str = weasyprint.__version__) -> None:
    """Refuse WeasyPrint releases older than `MIN_WEASYPRINT`."""
    match = re.match(r"(\d+)", version)
    if match is None or int(match[1]) < MIN_WEASYPRINT:
        raise RenderError(
            f"WeasyPrint {version} is too old: slidesvc needs WeasyPrint {MIN_WEASYPRINT} "
            "or later (older releases can be tricked into reading local files or URLs)"
        )


# --------------------------------------------------------------------------- fetcher


class ConfinedFetcher(URLFetcher):  # type: ignore[misc]
    """Serves ``data:``, ``slidesvc-asset:`` and regular files inside ``folder``.

    Everything else (other files, ``http:``, ``ftp:``, devices, symlinks that
    leave the folder) raises, which WeasyPrint turns into a skipped resource;
    each refusal is recorded in `refused` so the caller can name the slide.
    """

    def __init__(self, folder: Path, assets: Mapping[str, tuple[str, bytes]]) -> None:
        super().__init__(timeout=5, allow_redirects=False)
        self.folder = folder.resolve()
        self.assets = assets
        self.refused: list[tuple[str, str]] = []

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        scheme = url.split(":", 1)[0].lower()
        if scheme == "data":
            return super().fetch(url, headers)
        if scheme == ASSET_SCHEME[:-1]:
            asset = self.assets.get(url[len(ASSET_SCHEME) :])
            if asset is None:
                raise self._refuse(url, "unknown image id")
            mime, data = asset
            return URLFetcherResponse(url, data, {"Content-Type": mime})
        if scheme == "file":
            return self._fetch_file(url)
        raise self._refuse(url, "only files inside the deck's folder and data: URIs are allowed")

    def _fetch_file(self, url: str) -> URLFetcherResponse:
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise self._refuse(url, "remote file URLs are not allowed")
        try:
            path = Path(url2pathname(unquote(parts.path))).resolve(strict=True)
        except (OSError, RuntimeError):
            raise self._refuse(url, "file not found") from None
        if not path.is_relative_to(self.folder):
            raise self._refuse(url, "outside the deck's folder")
        if not path.is_file():
            raise self._refuse(url, "not a regular file")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise self._refuse(url, f"larger than {MAX_FILE_BYTES // 2**20} MiB")
        return URLFetcherResponse(path.as_uri(), path.read_bytes())

    def _refuse(self, url: str, reason: str) -> ValueError:
        self.refused.append((url, reason))
        return ValueError(f"slidesvc refused {url}: {reason}")


# --------------------------------------------------------------------------- workers


@dataclass(frozen=True)
class _SlideJob:
    key: str
    number: int
    body: str


@dataclass(frozen=True)
class _BatchJob:
    folder: str
    lang: str
    css: str
    slides: tuple[_SlideJob, ...]
    assets: dict[str, tuple[str, bytes]]
    cache_dir: str


@dataclass
class _WorkerState:
    """Per-process caches: the font configuration and parsed stylesheets."""

    fonts: FontConfiguration = field(default_factory=FontConfiguration)
    css: dict[str, tuple[CSS, list[tuple[str, str]]]] = field(default_factory=dict)


_STATE: _WorkerState | None = None


def _state() -> _WorkerState:
    global _STATE
    if _STATE is None:
        _STATE = _WorkerState()
    return _STATE


# WeasyPrint's user-agent stylesheet gives every element six pseudo-elements
# (``::marker`` and the footnote / note calls and markers): each one is a
# cascaded and computed style per element, most of the cascade's work. Slides
# that use neither footnotes, notes nor custom list items get a copy that
# only styles ``li::marker`` (the sole element that makes a marker there).
_UA_EXTRAS = re.compile(r"^::(footnote|note)-[a-z-]+ \{[^}\n]*\}$", re.MULTILINE)
_UA_MARKER = "::marker {"


@lru_cache(maxsize=1)
def _lean_ua_stylesheet() -> CSS | None:
    lean = _UA_EXTRAS.sub("", UA)
    if lean.count(_UA_MARKER) != 1 or lean == UA:
        return None  # not the stylesheet this was written for: keep WeasyPrint's
    lean = lean.replace(_UA_MARKER, "li::marker {")
    # Its @counter-style rules go to a dict of their own: the documents use
    # WeasyPrint's UA_COUNTER_STYLE, which already holds the same definitions
    # (parsing them into it again only logs "invalid counter style" warnings).
    return CSS(string=lean, counter_style=CounterStyle())


_NEEDS_FULL_UA = re.compile(r"footnote|note\(|list-item", re.IGNORECASE)


class _PrintHTML(HTML):  # type: ignore[misc]
    """An HTML document laid out with the lean user-agent stylesheet when it can."""

    lean_ua = False

    def _ua_stylesheets(self, forms: bool = False) -> Any:
        lean = _lean_ua_stylesheet() if self.lean_ua and not forms else None
        return [lean] if lean is not None else super()._ua_stylesheets(forms)


def _html(text: str, css: str, **kwargs: Any) -> Any:
    """`_PrintHTML` of ``text``; lean user-agent styles unless ``text`` or ``css``
    may need the footnote, note or universal marker rules."""
    document = _PrintHTML(string=text, **kwargs)
    document.lean_ua = not (_NEEDS_FULL_UA.search(css) or _NEEDS_FULL_UA.search(text))
    return document


def _parsed_css(state: _WorkerState, text: str, folder: Path) -> tuple[CSS, list[tuple[str, str]]]:
    key = hashlib.sha256(f"{folder}\0{text}".encode()).hexdigest()
    if key not in state.css:
        if len(state.css) > 8:
            state.css.clear()
        fetcher = ConfinedFetcher(folder, {})
        css = CSS(
            string=text,
            base_url=folder.as_uri() + "/",
            url_fetcher=fetcher,
            font_config=state.fonts,
        )
        state.css[key] = (css, fetcher.refused)
    return state.css[key]


def _render_batch(job: _BatchJob) -> list[PageEntry]:
    """Lay out and write one batch of slides; cache and return one entry per slide."""
    try:
        return _render_batch_unchecked(job)
    except (RenderError, MemoryError):
        raise
    except RecursionError:
        raise RenderError(f"{_where(job)} nest elements too deeply for the PDF renderer") from None
    except Exception as exc:  # WeasyPrint has no error hierarchy of its own
        raise RenderError(
            f"{_where(job)} cannot be rendered: {type(exc).__name__}: {exc}"
        ) from None


def _where(job: _BatchJob) -> str:
    first, last = job.slides[0].number, job.slides[-1].number
    return f"slide {first}" if first == last else f"slides {first}-{last}"


def _render_batch_unchecked(job: _BatchJob) -> list[PageEntry]:
    state = _state()
    folder = Path(job.folder)
    css, css_refused = _parsed_css(state, job.css, folder)
    fetcher = ConfinedFetcher(folder, job.assets)
    quiet = logging.getLogger("weasyprint")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # refusals are reported per slide instead
    try:
        document = _html(
            print_document(job.lang, [s.body for s in job.slides]),
            job.css,
            base_url=folder.as_uri() + "/",
            url_fetcher=fetcher,
        ).render(stylesheets=[css], font_config=state.fonts)
        kept, slide_pages, notes_pages, overflows = _map_pages(document, job.slides)
        document = document.copy(kept)
        document.metadata.attachments = []  # <link rel=attachment>: never embedded
        document.fonts = SubsetLater()
        pdf = document.write_pdf(finisher=plain_objects)
    finally:
        quiet.setLevel(level)
    cache = PageCache(Path(job.cache_dir))
    fonts = _save_fonts(document, cache)
    batch = cache.put_batch(pdf)
    refused = css_refused + fetcher.refused
    entries = []
    for s in job.slides:
        mine = [(u, r) for u, r in refused if _mentions(s.body, u)]
        theirs = [(u, r) for u, r in refused if not any(_mentions(t.body, u) for t in job.slides)]
        entry = PageEntry(
            batch=batch,
            page=slide_pages[s.number],
            notes_pages=tuple(notes_pages.get(s.number, ())),
            overflow=overflows[s.number],
            refused=tuple(mine),
            theme_refused=tuple(theirs),
            fonts=fonts,
        )
        cache.put_entry(s.key, entry)
        entries.append(entry)
    return entries


def _mentions(body: str, url: str) -> bool:
    """Whether a refused (absolute) URL comes from this slide's HTML."""
    if url in body or html.escape(url) in body:
        return True
    tail = unquote(urlsplit(url).path).rsplit("/", 1)[-1]
    return bool(tail) and tail in unquote(body)


def _map_pages(
    document: Any, slides: Sequence[_SlideJob]
) -> tuple[list[Any], dict[int, int], dict[int, list[int]], dict[int, tuple[float, float]]]:
    """Keep one page per slide (plus notes pages) and measure each slide's overflow."""
    kept: list[Any] = []
    slide_pages: dict[int, int] = {}
    notes_pages: dict[int, list[int]] = {}
    overflows: dict[int, tuple[float, float]] = {}
    for page in document.pages:
        marker = page_marker(page._page_box)
        if marker is None:
            continue
        if marker.endswith("n"):
            notes_pages.setdefault(int(marker[:-1]), []).append(len(kept))
        else:
            number = int(marker)
            if number in slide_pages:
                continue  # never split a slide over two pages
            slide_pages[number] = len(kept)
            overflows[number] = overflow(page._page_box)
            justify_content(page._page_box)
        kept.append(page)
    missing = [s.number for s in slides if s.number not in slide_pages]
    if missing:
        raise RenderError(f"slide {missing[0]} produced no PDF page")
    return kept, slide_pages, notes_pages, overflows


def _save_fonts(document: Any, cache: PageCache) -> dict[str, str]:
    """Store each embedded font's original file once; map PDF font names to them.

    WeasyPrint subsets every font per document, keeping glyph ids; with the
    originals, the assembler can subset each font once for the whole deck.
    """
    return {
        font.hash: cache.put_font(get_hb_object_data(font.hb_face), font.index)
        for font in document.fonts.values()
        if has_original(font)
    }


# --------------------------------------------------------------------------- orchestration


@dataclass(frozen=True)
class _Rendered:
    entries: list[PageEntry]
    diagnostics: list[Diagnostic]


def _slide_key(css_hash: str, body: str, assets: Mapping[str, tuple[str, bytes]]) -> str:
    h = hashlib.sha256()
    for part in (_CACHE_SALT, weasyprint.__version__, css_hash, body, *sorted(assets)):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def _used_assets(deck: Deck, text: str) -> dict[str, tuple[str, bytes]]:
    used = {}
    for asset_id in _ASSET_RE.findall(text):
        asset = deck.assets.get(asset_id)
        if asset is not None:
            used[asset_id] = (asset.mime, asset.data)
    return used


def _jobs(jobs: int | None) -> int:
    if jobs is not None:
        return max(1, jobs)
    return max(1, len(os.sched_getaffinity(0)))


def _render(
    deck: Deck, *, notes: bool, jobs: int | None, cache_dir: Path | None, limit: int = 0
) -> _Rendered:
    """Cache entries for the deck's slides (the first ``limit`` only, if given)."""
    check_weasyprint_version()
    if not deck.slides:
        raise RenderError(f"{deck.path}: the deck has no slides")
    cache = PageCache(cache_dir or default_cache_dir())
    css = stylesheet(deck)
    slides = deck.slides[:limit] if limit else deck.slides
    entries, slide_jobs = _lookup(deck, slides, css, notes, cache)
    workers = _jobs(jobs)
    batches = _batches(deck, css, slide_jobs, workers, cache)
    if len(batches) > 1 and workers > 1:
        _warm_up(batches[0])
        results = _run_pool(batches, min(workers, len(batches)))
    else:
        results = [_render_batch(b) for b in batches]
    for batch, batch_entries in zip(batches, results, strict=True):
        for s, entry in zip(batch.slides, batch_entries, strict=True):
            entries[s.number] = entry
    cache.prune()
    ordered = [entries[s.number] for s in slides]
    return _Rendered(ordered, _refusal_diagnostics(deck, ordered))


def _lookup(
    deck: Deck, slides: Sequence[Slide], css: str, notes: bool, cache: PageCache
) -> tuple[dict[int, PageEntry], list[tuple[_SlideJob, dict[str, tuple[str, bytes]]]]]:
    """The cached entries of ``slides`` by number, and a job for each of the others."""
    css_hash = hashlib.sha256(css.encode()).hexdigest()
    theme_assets = _used_assets(deck, css)
    entries: dict[int, PageEntry] = {}
    slide_jobs = []
    for slide in slides:
        body = page_body(slide, deck.meta.width, notes, css)
        assets = {**theme_assets, **_used_assets(deck, body)}
        key = _slide_key(css_hash, body, assets)
        entry = cache.get_entry(key)
        if entry is not None:
            entries[slide.number] = entry
        else:
            slide_jobs.append((_SlideJob(key, slide.number, body), assets))
    return entries, slide_jobs


def _batches(
    deck: Deck,
    css: str,
    slide_jobs: Sequence[tuple[_SlideJob, dict[str, tuple[str, bytes]]]],
    workers: int,
    cache: PageCache,
) -> list[_BatchJob]:
    """Group consecutive uncached slides, a few batches per worker."""
    if not slide_jobs:
        return []
    size = max(1, min(_BATCH_MAX, math.ceil(len(slide_jobs) / (workers * 3))))
    batches = []
    for start in range(0, len(slide_jobs), size):
        group = slide_jobs[start : start + size]
        assets: dict[str, tuple[str, bytes]] = {}
        for _, used in group:
            assets.update(used)
        batches.append(
            _BatchJob(
                folder=str(deck.folder.resolve()),
                lang=deck.meta.lang,
                css=css,
                slides=tuple(s for s, _ in group),
                assets=assets,
                cache_dir=str(cache.root),
            )
        )
    return batches


def _warm_up(job: _BatchJob) -> None:
    """Load fonts and parse the stylesheet once, before the workers fork."""
    state = _state()
    css, _ = _parsed_css(state, job.css, Path(job.folder))
    _html(print_document(job.lang, []), job.css).render(stylesheets=[css], font_config=state.fonts)


def warm_up() -> None:
    """Load the fonts and lay out one small page, in a process that will fork
    renders (the warm PDF worker): its children start with Pango ready and
    cffi's C types parsed (it parses each one on first use)."""
    sample = (
        "<h1>Warm</h1><p>text <b>bold</b> <i>italic</i> <code>code</code> "
        '<a href="https://example.org/">link</a></p><ul><li>item</li></ul>'
        "<pre><code>x = 1</code></pre>"
    )
    document = _html(print_document("en", [sample]), "").render(font_config=_state().fonts)
    document.write_pdf()
    for font in document.fonts.values():  # what `_save_fonts` reads
        get_hb_object_data(font.hb_face)


def preload(deck: Deck, *, notes: bool = False, cache_dir: Path | None = None) -> None:
    """Parse what the next renders of ``deck`` will need (its stylesheet, its
    cached pages) in this process, which forks those renders: the warm PDF
    worker, after a render of the deck succeeded. Each fork then starts with
    both, and re-exporting an edit costs little more than the edited slides.

    A stylesheet with ``@import`` or ``@font-face`` is left to each render:
    what it loads is not in its text, and fonts would stay for other decks.
    """
    notes = notes or deck.meta.pdf_notes
    css = stylesheet(deck)
    if not re.search(r"@(import|font-face)", css, re.IGNORECASE):
        _parsed_css(_state(), css, deck.folder.resolve())
    cache = PageCache(cache_dir or default_cache_dir())
    entries, _ = _lookup(deck, deck.slides, css, notes, cache)
    preload_batches(cache, {entry.batch for entry in entries.values()})


def _run_pool(batches: Sequence[_BatchJob], workers: int) -> list[list[PageEntry]]:
    # Forking keeps the already-imported WeasyPrint and Pango: no start-up cost.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            return list(pool.map(_render_batch, batches))
    except BrokenProcessPool:
        raise RenderError("a PDF render worker died (out of memory?)") from None


def _refusal_diagnostics(deck: Deck, entries: Sequence[PageEntry]) -> list[Diagnostic]:
    found: dict[tuple[int, str], Diagnostic] = {}
    for slide, entry in zip(deck.slides, entries, strict=False):
        for url, reason in entry.refused:
            message = f"slide {slide.number}: refused to load {url} ({reason})"
            found.setdefault((slide.line, message), Diagnostic(deck.path, slide.line, message))
        for url, reason in entry.theme_refused:
            message = f"theme or style: refused to load {url} ({reason})"
            found.setdefault((0, message), Diagnostic(deck.path, 0, message))
    return list(found.values())


# --------------------------------------------------------------------------- public API


def pdf_metadata(deck: Deck) -> Metadata:
    """Title, author, subject, creator and a reproducible date for the PDF."""
    return Metadata(
        title=deck.meta.title,
        author=deck.meta.author,
        subject=deck.meta.description,
        creator=f"slidesvc {__version__}",
        producer=f"WeasyPrint {weasyprint.__version__}",
        lang=deck.meta.lang,
        date=_creation_date(deck),
    )


def _creation_date(deck: Deck) -> str:
    """``D:...`` from SOURCE_DATE_EPOCH, else the deck's own date, else none."""
    import datetime as dt

    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch.isdigit():
        stamp = dt.datetime.fromtimestamp(int(epoch), tz=dt.UTC)
        return stamp.strftime("D:%Y%m%d%H%M%S+00'00'")
    match = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", str(deck.meta.date).strip())
    if match:
        return f"D:{match[1]}{match[2]}{match[3]}000000+00'00'"
    return ""


def render_pdf(
    deck: Deck,
    *,
    notes: bool = False,
    jobs: int | None = None,
    cache_dir: Path | None = None,
    diagnostics: list[Diagnostic] | None = None,
) -> bytes:
    """The deck's PDF: one page per slide (each followed by its notes page if asked).

    ``notes`` (or ``pdf: {notes: true}`` in the front matter) adds notes pages;
    ``jobs`` caps the worker processes (default: the usable cores);
    ``cache_dir`` holds rendered pages (default `default_cache_dir`). Refused
    resources become warnings, appended to ``diagnostics`` when given, else
    logged.
    """
    notes = notes or deck.meta.pdf_notes
    rendered = _render(deck, notes=notes, jobs=jobs, cache_dir=cache_dir)
    if diagnostics is not None:
        diagnostics.extend(rendered.diagnostics)
    else:
        for diagnostic in rendered.diagnostics:
            _LOG.warning("%s", diagnostic)
    pages: list[PageRef] = []
    slide_pages: list[int] = []
    height = deck.meta.height * 0.75
    for entry in rendered.entries:
        slide_pages.append(len(pages))
        pages.append(PageRef(entry.batch, entry.page, entry.fonts, height))
        pages.extend(PageRef(entry.batch, n, entry.fonts) for n in entry.notes_pages)
    outline = [(_outline_title(s), i) for s, i in zip(deck.slides, slide_pages, strict=True)]
    return assemble(
        pages,
        outline=outline,
        metadata=pdf_metadata(deck),
        slide_pages=slide_pages,
        cache=PageCache(cache_dir or default_cache_dir()),
    )


def _outline_title(slide: Slide) -> str:
    if slide.title:
        return slide.title
    first_line = slide.text.strip().split("\n", 1)[0].strip()
    return first_line[:80] or f"Slide {slide.number}"


def find_overflows(
    deck: Deck, *, jobs: int | None = None, cache_dir: Path | None = None
) -> list[Diagnostic]:
    """Warnings for slides whose content does not fit their page, per WeasyPrint's layout."""
    rendered = _render(deck, notes=False, jobs=jobs, cache_dir=cache_dir)
    found = []
    for slide, entry in zip(deck.slides, rendered.entries, strict=True):
        dy, dx = entry.overflow
        if dy >= 1:
            message = f"slide {slide.number} overflows by {math.ceil(dy)} px"
            found.append(Diagnostic(deck.path, slide.line, message))
        if dx >= 1:
            message = f"slide {slide.number} is {math.ceil(dx)} px too wide"
            found.append(Diagnostic(deck.path, slide.line, message))
    return found
