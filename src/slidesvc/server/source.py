"""Where a deck service's artifacts come from, and how its PDFs get made.

Two sources share one small interface: `FolderSource` reads a prebuilt
artifact folder (the container image's case; stdlib only), `DeckSource`
compiles a Markdown deck at start-up and renders its PDFs and thumbnail on
demand in worker processes (from the very `Deck` its pages were made of; in
watch mode from a warm worker it keeps, so a re-export after an edit skips
the worker's start-up). The build side is imported lazily inside
`DeckSource`'s methods, so importing this module never pulls in Markdown,
Pygments, YAML or WeasyPrint. `PdfStore` makes sure each PDF variant of a
deck version is rendered at most once, however many requests ask for it
at the same time.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from slidesvc.artifacts import Artifacts
from slidesvc.errors import RenderError, ServeError

if TYPE_CHECKING:
    from slidesvc.model import Deck
    from slidesvc.parse_memo import ConversionMemo
    from slidesvc.pdfworker import WarmWorker

MAX_WATCHED_FILES = 5000
T = TypeVar("T")
_SKIP_DIRS = {"node_modules", "__pycache__", ".git", ".venv"}


class Source(Protocol):
    """What the server needs from wherever its deck comes from."""

    label: str
    """Shown in the start-up banner and in error messages."""

    async def load(self) -> Artifacts:
        """(Re)build or (re)read the artifacts; raises a `SlidesvcError` when broken."""
        ...

    async def render_pdf(self, artifacts: Artifacts, *, notes: bool) -> bytes | None:
        """The PDF of `artifacts` (None: this source has none)."""
        ...

    async def render_thumbnail(self, pdf: bytes) -> bytes | None:
        """A PNG of slide 1 made from the deck's PDF (None: not available)."""
        ...

    def watched_files(self) -> Iterator[Path]:
        """The files whose change should trigger a rebuild in watch mode."""
        ...

    async def close(self) -> None:
        """Stop whatever the source keeps running (its PDF worker)."""
        ...


_EDITOR_FILES = ("~", ".swp", ".tmp")
_OUTPUTS = (".pdf", ".html", ".log")
"""What builds and shells write beside a deck and no deck reads: changes to
them never trigger a rebuild of a Markdown deck (a `pdf --watch` writing
talk.pdf next to talk.md would otherwise trigger itself)."""


def _walk(folder: Path, skip: tuple[str, ...] = _EDITOR_FILES) -> Iterator[Path]:
    count = 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS)
        for name in files:
            if name.startswith(".") or name.lower().endswith(skip):
                continue
            count += 1
            if count > MAX_WATCHED_FILES:
                return
            yield Path(root, name)


class FolderSource:
    """A prebuilt artifact folder (the output of `slidesvc build`)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.label = str(folder)

    async def load(self) -> Artifacts:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(None, Artifacts.load, self.folder)
        except (OSError, ValueError, KeyError) as exc:
            raise ServeError(f"{self.folder}: cannot read the deck's artifacts: {exc}") from None

    async def render_pdf(self, artifacts: Artifacts, *, notes: bool) -> bytes | None:
        return artifacts.notes_pdf if notes else artifacts.pdf

    async def render_thumbnail(self, pdf: bytes) -> bytes | None:
        return None  # a build writes thumbnail.png; without it the title card is used

    def watched_files(self) -> Iterator[Path]:
        return _walk(self.folder)

    async def close(self) -> None:
        pass


class DeckSource:
    """A Markdown deck compiled in memory; PDFs rendered lazily in workers."""

    def __init__(self, deck_path: Path, *, watch: bool = False) -> None:
        """``watch``: the deck will be loaded again and again, so keep a warm PDF
        worker and remember slide conversions from one load to the next."""
        self.deck_path = deck_path
        self.label = str(deck_path)
        self._decks: dict[str, Deck] = {}
        """The parsed decks of the versions served lately, by version."""
        self._worker: WarmWorker | None = None
        self._memo: ConversionMemo | None = None
        if watch:
            from slidesvc.parse_memo import ConversionMemo
            from slidesvc.pdfworker import WarmWorker

            self._worker = WarmWorker(preload=True)
            self._memo = ConversionMemo()

    async def load(self) -> Artifacts:
        from slidesvc import build  # build side: only in deck mode, never at import

        if not self.deck_path.is_file():
            raise ServeError(f"{self.deck_path}: no such deck file")
        loop = asyncio.get_running_loop()
        deck, artifacts = await loop.run_in_executor(
            None, build.compile_deck, self.deck_path, self._memo
        )
        recent = list(self._decks.items())[-2:]
        self._decks = {**dict(recent), artifacts.version: deck}
        return artifacts

    async def render_pdf(self, artifacts: Artifacts, *, notes: bool) -> bytes | None:
        from slidesvc.pdfworker import render_pdf_isolated_async

        deck = self._decks.get(artifacts.version, self.deck_path)
        return await render_pdf_isolated_async(deck, notes=notes, worker=self._worker)

    async def render_thumbnail(self, pdf: bytes) -> bytes | None:
        from slidesvc.thumbnail import png_of_first_page

        return await asyncio.get_running_loop().run_in_executor(None, png_of_first_page, pdf)

    def watched_files(self) -> Iterator[Path]:
        # The deck, its images and a local theme all live in the deck's folder;
        # the built-in themes folder matters when hacking on slidesvc itself.
        yield from _walk(self.deck_path.parent, _EDITOR_FILES + _OUTPUTS)
        themes = Path(__file__).resolve().parents[1] / "themes"
        if themes.is_dir():
            yield from _walk(themes)

    async def close(self) -> None:
        if self._worker is not None:
            await self._worker.close()


class PdfStore(Generic[T]):
    """Each PDF variant of one deck version, rendered once, shared by all requests."""

    def __init__(self, render: Callable[[bool], Awaitable[T | None]]) -> None:
        self._render = render
        self._tasks: dict[bool, asyncio.Future[T | None]] = {}

    async def get(self, *, notes: bool) -> T | None:
        """The PDF (None: not available); raises `RenderError` if rendering failed."""
        task = self._tasks.get(notes)
        if task is None:
            task = asyncio.ensure_future(self._render(notes))
            self._tasks[notes] = task
            task.add_done_callback(lambda t: self._forget_failure(notes, t))
        # shield: a client hanging up must not cancel the render others wait for
        return await asyncio.shield(task)

    def _forget_failure(self, notes: bool, task: asyncio.Future[T | None]) -> None:
        # after a failure let a later request try again (a timeout may be bad luck)
        failed = task.cancelled() or task.exception() is not None
        if failed and self._tasks.get(notes) is task:
            del self._tasks[notes]

    async def close(self) -> None:
        """Stop renders in flight (their worker processes are killed on cancel)."""
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


__all__ = ["DeckSource", "FolderSource", "PdfStore", "RenderError", "Source"]
