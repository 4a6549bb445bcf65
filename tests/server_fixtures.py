"""Deck artifacts for the server tests, made with the real HTML renderer.

The server serves what a build produces; these helpers produce it from a
hand-made `Deck` (so server tests do not depend on the Markdown parser) and
write it as an artifact folder, exactly as `slidesvc build` would.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from slidesvc.artifacts import (
    DECK_JSON,
    DECK_PDF,
    INDEX_HTML,
    NOTES_PDF,
    PRESENTER_HTML,
    THUMBNAIL_PNG,
    Artifacts,
)
from slidesvc.thumbnail import encode_png

TOKEN = "presenter-secret-token"
PUBLIC = "http://deck.test/"


def tiny_png(width: int = 64, height: int = 36) -> bytes:
    """A valid grey PNG of the given size."""
    return encode_png([b"\x80" * 3 * width] * height, width, height)


def make_artifacts(
    *,
    title: str = "Test <Talk> & Co",
    slides: int = 5,
    version: str = "v1",
    embed_origins: tuple[str, ...] = (),
    pdf_notes: bool = False,
    with_pdf: bool = True,
    with_presenter: bool = True,
    slug: str = "talk",
    width: int = 1280,
    height: int = 720,
) -> Artifacts:
    """Artifacts of a deck with `slides` slides, rendered by `render_html`."""
    from slidesvc.model import Deck, DeckMeta, Slide
    from slidesvc.render_html import render_html

    meta = DeckMeta(
        title=title,
        author="Ada Lovelace",
        width=width,
        height=height,
        embed_origins=embed_origins,
        pdf_notes=pdf_notes,
    )
    deck = Deck(
        path=Path(f"/decks/{slug}.md"),
        slug=slug,
        meta=meta,
        slides=tuple(
            Slide(
                number=n,
                line=n * 4,
                html=f"<h1>Slide {n}</h1><p>body of slide {n}</p>",
                notes_html=f"<p>secret note {n}</p>",
                title=f"Slide {n}",
            )
            for n in range(1, slides + 1)
        ),
        theme_css="",
        content_hash=version,
    )
    described: dict[str, Any] = {
        "slug": slug,
        "title": title,
        "author": "Ada Lovelace",
        "date": "",
        "description": "",
        "slides": slides,
        "outline": [{"slide": n, "title": f"Slide {n}"} for n in range(1, slides + 1)],
        "aspect": f"{width}x{height}",
        "width": width,
        "height": height,
        "version": version,
        "has_notes": True,
        "pdf_notes": pdf_notes,
        "pdf_filename": f"{slug}.pdf",
        "embed_origins": list(embed_origins),
    }
    return Artifacts(
        index_html=render_html(deck),
        deck=described,
        pdf=b"%PDF-1.7 public " + version.encode() if with_pdf else None,
        thumbnail_png=tiny_png(),
        presenter_html=render_html(deck, notes=True) if with_presenter else None,
        notes_pdf=b"%PDF-1.7 notes " + version.encode() if with_pdf else None,
    )


def write_artifacts(folder: Path, artifacts: Artifacts) -> Path:
    """Write `artifacts` as a build's artifact folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / INDEX_HTML).write_text(artifacts.index_html, encoding="utf-8")
    (folder / DECK_JSON).write_text(json.dumps(artifacts.deck), encoding="utf-8")
    optional = {
        DECK_PDF: artifacts.pdf,
        THUMBNAIL_PNG: artifacts.thumbnail_png,
        NOTES_PDF: artifacts.notes_pdf,
        PRESENTER_HTML: artifacts.presenter_html.encode() if artifacts.presenter_html else None,
    }
    for name, data in optional.items():
        if data is not None:
            (folder / name).write_bytes(data)
    return folder


class MemorySource:
    """A `Source` serving artifacts held in memory, with a controllable PDF render."""

    def __init__(
        self, artifacts: Artifacts, *, pdf_delay: float = 0.0, pdf_error: str = ""
    ) -> None:
        self.artifacts = artifacts
        self.label = "memory"
        self.pdf_delay = pdf_delay
        self.pdf_error = pdf_error
        self.renders = 0

    async def load(self) -> Artifacts:
        return self.artifacts

    async def render_pdf(self, artifacts: Artifacts, *, notes: bool) -> bytes | None:
        import asyncio

        from slidesvc.errors import RenderError

        self.renders += 1
        await asyncio.sleep(self.pdf_delay)
        if self.pdf_error:
            raise RenderError(self.pdf_error)
        return artifacts.notes_pdf if notes else artifacts.pdf

    async def close(self) -> None:
        pass

    async def render_thumbnail(self, pdf: bytes) -> bytes | None:
        return None

    def watched_files(self) -> Any:
        return iter(())


def with_version(artifacts: Artifacts, version: str) -> Artifacts:
    return replace(artifacts, deck={**artifacts.deck, "version": version})


class ServerThread:
    """The real service on a loopback port, run by an event loop in a thread.

    For tests whose client is synchronous (Playwright's sync API, urllib-based
    oEmbed consumers), which cannot share the test's event loop.
    """

    def __init__(self, settings: Any, source: Any, host: str = "127.0.0.1") -> None:
        from slidesvc.server.run import bind

        self._sock = bind(host, 0)
        self.settings = settings.with_bound_port(self._sock.getsockname()[1])
        self.source = source
        self.url = f"http://{host}:{self.settings.port}/"
        self._loop: Any = None
        self._thread: Any = None

    def __enter__(self) -> ServerThread:
        import asyncio
        import threading

        from aiohttp import web

        from slidesvc.server.app import create_app

        ready = threading.Event()
        loop = asyncio.new_event_loop()
        self._loop = loop
        self.app = create_app(self.settings, self.source)
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.SockSite(runner, self._sock).start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("test server did not start")
        return self

    def call(self, func: Any) -> Any:
        """Run `func()` (a coroutine function) on the server's loop and return its result."""
        import asyncio

        return asyncio.run_coroutine_threadsafe(func(), self._loop).result(10)

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._sock.close()
