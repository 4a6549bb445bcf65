"""Deck mode: a Markdown deck compiled at start-up, PDFs from a worker, watch mode."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from server_fixtures import TOKEN

from slidesvc.server.app import STATE, create_app
from slidesvc.server.config import ServerSettings
from slidesvc.server.source import DeckSource

DECK = """\
---
title: Served deck
author: Grace
embed:
  origins: [https://wiki.example.org]
---
# Hello

* one
* two

???
Private remark

---
# Second
"""


def settings(**kw: Any) -> ServerSettings:
    return ServerSettings(public_url="http://deck.test/", presenter_token=TOKEN, **kw)


async def test_deck_mode_serves_compiled_deck(
    aiohttp_client: Any, write_deck: Callable[..., Path]
) -> None:
    """The deck is compiled once at start-up; notes stay private; origins come from it."""
    path = write_deck(DECK)
    client = await aiohttp_client(create_app(settings(), DeckSource(path)))
    resp = await client.get("/")
    text = await resp.text()
    assert "Hello" in text and "Private remark" not in text
    embed = await client.get("/embed")
    assert embed.headers["Content-Security-Policy"].endswith(
        "frame-ancestors https://wiki.example.org"
    )
    health = await (await client.get("/healthz")).json()
    assert health["deck"] == "talk" and health["slides"] == 2
    await client.post("/presenter", data={"token": TOKEN})
    assert "Private remark" in await (await client.get("/presenter")).text()


@pytest.mark.slow
async def test_deck_mode_pdf_is_rendered_once(
    aiohttp_client: Any, write_deck: Callable[..., Path]
) -> None:
    """/deck.pdf renders a real PDF in a worker, once for concurrent requests."""
    from pypdf import PdfReader

    path = write_deck(DECK)
    client = await aiohttp_client(create_app(settings(), DeckSource(path)))
    first, second = await asyncio.gather(client.get("/deck.pdf"), client.get("/deck.pdf"))
    assert first.status == second.status == 200
    body = await first.read()
    assert body == await second.read()
    assert first.headers["Content-Disposition"] == 'attachment; filename="talk.pdf"'
    assert len(PdfReader(io.BytesIO(body)).pages) == 2
    again = await client.get("/deck.pdf", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status == 304
    for _ in range(200):  # slide 1 as PNG follows the PDF, in the background
        data = await (await client.get("/oembed?url=http://deck.test/")).json()
        if data["thumbnail_url"].endswith(".png"):
            break
        await asyncio.sleep(0.1)
    assert data["thumbnail_url"] == "http://deck.test/thumbnail.png"
    png = await (await client.get("/thumbnail.png")).read()
    assert png.startswith(b"\x89PNG")
    assert (data["thumbnail_width"], data["thumbnail_height"]) == (640, 360)


async def test_missing_deck_is_a_start_up_error(tmp_path: Path) -> None:
    """A deck path that does not exist stops start-up with a clear error."""
    from aiohttp.test_utils import TestServer

    from slidesvc.errors import ServeError

    server = TestServer(create_app(settings(), DeckSource(tmp_path / "nope.md")))
    try:
        with pytest.raises(ServeError, match="no such deck file"):
            await server.start_server()
    finally:
        await server.close()


async def test_watch_reload_and_error(aiohttp_client: Any, write_deck: Callable[..., Path]) -> None:
    """A change pushes reload; a broken deck pushes file:line and keeps the last good version."""
    path = write_deck(DECK)
    client = await aiohttp_client(create_app(settings(watch=True), DeckSource(path)))
    ws = await client.ws_connect("/live")
    first = client.app[STATE].current.version

    path.write_text(DECK.replace("# Second", "# Second, edited"), encoding="utf-8")
    msg = await ws.receive_json(timeout=10)
    assert msg["type"] == "reload" and msg["version"] != first
    assert "edited" in await (await client.get("/")).text()

    path.write_text("---\ntitle: [broken\n---\n# x\n", encoding="utf-8")
    msg = await ws.receive_json(timeout=10)
    assert msg["type"] == "error"
    assert msg["message"].startswith(f"{path}:2: ")
    assert "edited" in await (await client.get("/")).text()  # last good version
    late = await client.ws_connect("/live")  # a page opened meanwhile sees the error too
    assert (await late.receive_json(timeout=2))["type"] == "error"

    path.write_text(DECK, encoding="utf-8")
    msg = await ws.receive_json(timeout=10)
    assert msg == {"type": "reload", "version": first}


async def test_lazy_pdf_renders_nothing_until_asked(
    aiohttp_client: Any, write_deck: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `--lazy-pdf` (what the publisher uses) start-up starts no PDF render."""
    calls: list[bool] = []
    source = DeckSource(write_deck(DECK))

    async def counting_render(*args: Any, **kwargs: Any) -> bytes:
        calls.append(True)
        raise AssertionError("no render expected")

    monkeypatch.setattr(source, "render_pdf", counting_render)
    client = await aiohttp_client(create_app(settings(lazy_pdf=True), source))
    assert (await client.get("/healthz")).status == 200
    await asyncio.sleep(0.3)
    assert calls == []
    data = await (await client.get("/oembed?url=http://deck.test/")).json()
    assert data["thumbnail_url"].endswith(".svg"), "the title card stands in for slide 1"


@pytest.mark.slow
async def test_watch_mode_pdf_follows_edits_from_one_warm_worker(
    aiohttp_client: Any, write_deck: Callable[..., Path]
) -> None:
    """In watch mode /deck.pdf is the PDF of the version served, rendered by forks
    of one warm worker that lives as long as the app."""
    from pdf_helpers import page_texts, warm_workers

    path = write_deck(DECK)
    client = await aiohttp_client(create_app(settings(watch=True), DeckSource(path, watch=True)))
    ws = await client.ws_connect("/live")
    first = await (await client.get("/deck.pdf")).read()
    assert "Second" in page_texts(first)[1]
    warm = warm_workers()
    assert len(warm) == 1

    path.write_text(DECK.replace("# Second", "# Second, edited"), encoding="utf-8")
    assert (await ws.receive_json(timeout=10))["type"] == "reload"
    edited = await (await client.get("/deck.pdf")).read()
    assert "Second, edited" in page_texts(edited)[1]
    assert warm_workers() == warm
    await client.close()
    assert warm_workers() == set()
