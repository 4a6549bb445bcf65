"""What the index page knows about each deck, gathered off the event loop.

The publisher lists the decks of its folder (``*.md``, polled about once a
second, no extra dependency), and parses each new or edited one in a worker
process (`summarize`) for its title, author, date, slide count and content
hash. A deck that does not parse is still listed, with its error as
``file:line: message``. Thumbnails (slide 1 as PNG) are rendered by the build
side's isolated worker, one at a time, and cached by content hash, so the
index never starts a deck's process just to show a picture.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import replace
from pathlib import Path

from slidesvc.errors import SlidesvcError
from slidesvc.index_page import DeckSummary
from slidesvc.slug import slugify

log = logging.getLogger("slidesvc.publish")

_THUMBNAILS_KEPT = 512
FileKey = tuple[int, int]
"""(mtime_ns, size): changes when a deck file is edited."""


def summarize(path: Path) -> DeckSummary:
    """Parse a deck for the index (runs in a worker process)."""
    from slidesvc.parse import load_deck

    slug = slugify(path)
    try:
        deck = load_deck(path)
    except SlidesvcError as exc:
        # The index is public: name the file, not where it lives on the server.
        error = str(exc).splitlines()[0].replace(str(path), path.name)
        return DeckSummary(slug=slug, path=path, title=slug, error=error)
    meta = deck.meta
    return DeckSummary(
        slug=deck.slug,
        path=path,
        title=meta.title,
        author=meta.author,
        date=str(meta.date or ""),
        description=meta.description,
        slides=len(deck.slides),
        width=meta.width,
        height=meta.height,
        content_hash=deck.content_hash,
    )


def scan(folder: Path) -> dict[Path, FileKey]:
    """The deck files of a folder with their change keys (blocking: run in an executor)."""
    from slidesvc.build import deck_files

    found: dict[Path, FileKey] = {}
    for path in deck_files(folder):
        try:
            st = os.stat(path)
        except FileNotFoundError:
            continue
        found[path] = (st.st_mtime_ns, st.st_size)
    return found


def assign_slugs(paths: list[Path]) -> tuple[dict[str, Path], dict[Path, str]]:
    """Slugs for deck files; the first (sorted) file wins a slug two files share."""
    slugs: dict[str, Path] = {}
    clashes: dict[Path, str] = {}
    for path in sorted(paths):
        slug = slugify(path)
        if slug in slugs:
            clashes[path] = f"{path.name}: same URL /{slug}/ as {slugs[slug].name}; rename one"
        else:
            slugs[slug] = path
    return slugs, clashes


class Thumbnails:
    """Slide-1 PNGs by content hash, rendered one at a time."""

    def __init__(self, render: Callable[[Path], Awaitable[bytes]] | None = None) -> None:
        self._render = render or _render_thumbnail
        self._cache: dict[str, bytes | None] = {}
        self._one_at_a_time = asyncio.Semaphore(1)

    async def get(self, summary: DeckSummary) -> bytes | None:
        """The deck's thumbnail, or None when it cannot be rendered."""
        key = summary.content_hash
        if not key:
            return None
        if key in self._cache:
            return self._cache[key]
        async with self._one_at_a_time:
            if key not in self._cache:
                self._cache[key] = await self._render_safely(summary)
                while len(self._cache) > _THUMBNAILS_KEPT:  # old versions of edited decks
                    del self._cache[next(iter(self._cache))]
        return self._cache[key]

    async def _render_safely(self, summary: DeckSummary) -> bytes | None:
        try:
            return await self._render(summary.path)
        except (SlidesvcError, OSError, ImportError) as exc:
            log.warning("[%s] no thumbnail: %s", summary.slug, exc)
            return None


async def _render_thumbnail(path: Path) -> bytes:
    from slidesvc.build import render_thumbnail_async

    return await render_thumbnail_async(path)


class Catalog:
    """The summaries of every deck, refreshed when their files change."""

    def __init__(self, folder: Path, pool_factory: Callable[[], Executor] | None = None) -> None:
        self.folder = folder
        self._pool_factory = pool_factory
        self._pool: Executor | None = None
        """Created for a batch of parses and shut down when they are done, so a
        worker process (and the build side's memory) only exists while needed."""
        self.summaries: dict[str, DeckSummary] = {}
        self.clashes: dict[Path, str] = {}
        self.files: dict[Path, FileKey] = {}
        self.version = 0
        """Bumped whenever the index would change."""
        self._pending: dict[str, asyncio.Task[None]] = {}

    def set_placeholder(self, slug: str, path: Path) -> None:
        self.summaries[slug] = DeckSummary(slug=slug, path=path, title=slug, loading=True)
        self.version += 1

    def drop(self, slug: str) -> None:
        self.summaries.pop(slug, None)
        task = self._pending.pop(slug, None)
        if task is not None:
            task.cancel()
        self.version += 1

    def refresh(self, slug: str, path: Path) -> None:
        """Re-parse a deck in the background (the latest request wins)."""
        old = self._pending.pop(slug, None)
        if old is not None:
            old.cancel()  # its worker job still finishes; the pool stays for the new one
        self._pending[slug] = asyncio.create_task(self._refresh(slug, path))

    async def _refresh(self, slug: str, path: Path) -> None:
        loop = asyncio.get_running_loop()
        if self._pool is None and self._pool_factory is not None:
            self._pool = self._pool_factory()
        try:
            summary = await loop.run_in_executor(self._pool, summarize, path)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a worker crash must not take the index down
            log.warning("[%s] cannot read the deck: %r", slug, exc)
            summary = DeckSummary(slug=slug, path=path, title=slug, error=f"{path.name}: {exc!r}")
        if slug in self.summaries:
            self.summaries[slug] = replace(summary, slug=slug)
            self.version += 1
        if self._pending.get(slug) is asyncio.current_task():
            del self._pending[slug]
        if not self._pending:
            self.close()

    def close(self) -> None:
        """Shut the parse worker down (a new one starts with the next parse)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    async def settle(self) -> None:
        """Wait until every pending parse has finished (for tests and preload)."""
        while self._pending:
            await asyncio.gather(*self._pending.values(), return_exceptions=True)
