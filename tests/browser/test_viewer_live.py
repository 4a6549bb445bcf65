"""The viewer's live channel against a real aiohttp WebSocket server, in Chromium.

The server here is a small stand-in that records what the viewer sends and
pushes what a test tells it to, so these tests pin down the viewer's side of
the message format in docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from slidesvc.artifacts import inject_head, set_mode
from slidesvc.parse import load_deck
from slidesvc.render_html import render_html

pytestmark = pytest.mark.browser

DECK = """\
# One

???
Notes one
---

## Two
---

## Three

1) first
2) second
---

## Four
"""


class LiveServer:
    """Serves one page per mode and a /live WebSocket, on a thread of its own."""

    def __init__(self, pages: dict[str, str]) -> None:
        self.pages = pages
        self.received: list[Any] = []
        self.connections = 0
        self._sockets: list[web.WebSocketResponse] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    def __enter__(self) -> LiveServer:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.drop_all()  # open sockets would hold the shutdown up
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def send(self, message: dict[str, Any]) -> None:
        async def push() -> None:
            for ws in list(self._sockets):
                await ws.send_str(json.dumps(message))

        asyncio.run_coroutine_threadsafe(push(), self._loop).result(10)

    def drop_all(self) -> None:
        async def close() -> None:
            for ws in list(self._sockets):
                await ws.close()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/live", self._live)
        app.router.add_get("/{page}", self._page)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = self._runner.addresses[0][1]
        self._ready.set()
        self._loop.run_forever()

    async def _page(self, request: web.Request) -> web.Response:
        return web.Response(text=self.pages[request.match_info["page"]], content_type="text/html")

    async def _live(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connections += 1
        self._sockets.append(ws)
        async for msg in ws:
            self.received.append(json.loads(msg.data))
        self._sockets.remove(ws)
        return ws


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    source = tmp_path / "live.md"
    source.write_text(DECK, encoding="utf-8")
    deck = load_deck(source)
    live = '<meta name="slidesvc:live" content="live">'
    public = inject_head(render_html(deck), live)
    noted = inject_head(render_html(deck, notes=True), live)
    pages = {
        "deck": public,
        "embed": set_mode(public, "embed"),
        "presenter": set_mode(noted, "presenter"),
        "plain": render_html(deck),
    }
    with LiveServer(pages) as srv:
        yield srv


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(reduced_motion="reduce")
    yield ctx.new_page()
    ctx.close()


def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for a condition that the test process (not the page) observes."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def slide_is(page: Any, n: int, shown: int | None = None) -> None:
    page.wait_for_function(
        """([n, shown]) => {
          const s = document.querySelector('section.slide.current');
          if (!s || s.id !== String(n)) return false;
          const revealed = s.querySelectorAll('.fragments > li:not(.future)').length;
          return shown === null || revealed === shown;
        }""",
        arg=[n, shown],
    )


def test_deck_follows_position_messages(page: Any, server: LiveServer) -> None:
    """In deck mode, {"type": "position"} moves the slide and the fragment."""
    page.goto(server.url("deck"))
    until(lambda: server.connections == 1)
    server.send({"type": "position", "slide": 3, "fragment": 1})
    slide_is(page, 3, 1)
    assert page.url.endswith("#3")


def test_presenter_sends_every_move(page: Any, server: LiveServer) -> None:
    """The presenter view sends {"slide": n, "fragment": k} on connect and on each step."""
    page.goto(server.url("presenter"))
    until(lambda: server.received == [{"slide": 1, "fragment": 0}])
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    until(lambda: len(server.received) == 4)
    assert server.received[1:] == [
        {"slide": 2, "fragment": 0},
        {"slide": 3, "fragment": 0},
        {"slide": 3, "fragment": 1},
    ]


def test_followers_send_nothing(page: Any, server: LiveServer) -> None:
    """The public deck never tries to move anyone."""
    page.goto(server.url("deck"))
    until(lambda: server.connections == 1)
    page.keyboard.press("ArrowRight")
    page.wait_for_timeout(300)
    assert server.received == []


def test_embed_follows_only_when_asked(page: Any, server: LiveServer) -> None:
    """/embed ignores positions unless ?follow=1."""
    page.goto(server.url("embed"))
    until(lambda: server.connections == 1)
    server.send({"type": "position", "slide": 4, "fragment": 0})
    page.wait_for_timeout(300)
    slide_is(page, 1)
    page.goto(server.url("embed?follow=1"))
    until(lambda: server.connections == 2)
    server.send({"type": "position", "slide": 4, "fragment": 0})
    slide_is(page, 4)


def test_reload_keeps_the_slide_and_clears_the_error(page: Any, server: LiveServer) -> None:
    """An error shows an overlay; reload brings the page back on the same slide, without it."""
    page.goto(server.url("deck") + "#2")
    until(lambda: server.connections == 1)
    server.send({"type": "error", "message": "talk.md:3: image not found: <b>x</b>"})
    page.wait_for_selector(".live-error")
    assert page.text_content(".live-error") == "talk.md:3: image not found: <b>x</b>"
    page.evaluate("window.beforeReload = true")
    with page.expect_event("load"):
        server.send({"type": "reload", "version": "v2"})
    assert page.evaluate("window.beforeReload === undefined")
    slide_is(page, 2)
    assert page.query_selector(".live-error") is None


def test_reconnects_after_the_server_drops_it(page: Any, server: LiveServer) -> None:
    """A dropped live connection comes back on its own."""
    page.goto(server.url("deck"))
    until(lambda: server.connections == 1)
    server.drop_all()
    until(lambda: server.connections == 2, timeout=8)
    server.send({"type": "position", "slide": 2, "fragment": 0})
    slide_is(page, 2)


def test_no_live_meta_no_connection(page: Any, server: LiveServer) -> None:
    """A page without the server's live meta never opens a WebSocket."""
    page.goto(server.url("plain"))
    page.keyboard.press("ArrowRight")
    page.wait_for_timeout(500)
    assert server.connections == 0


def test_same_origin_tabs_follow_the_presenter_by_broadcast_channel(
    browser: Any, server: LiveServer
) -> None:
    """Without a server relay, deck tabs follow a presenter tab and it follows them back
    (telling the server); deck tabs do not follow each other."""
    ctx = browser.new_context(reduced_motion="reduce")
    try:
        first, second, presenter = ctx.new_page(), ctx.new_page(), ctx.new_page()
        first.goto(server.url("deck"))
        second.goto(server.url("deck"))
        presenter.goto(server.url("presenter"))
        presenter.keyboard.press("End")
        slide_is(first, 4)
        slide_is(second, 4)
        until(lambda: server.received[-1:] == [{"slide": 4, "fragment": 0}])
        first.keyboard.press("Home")
        slide_is(presenter, 1)
        # ...and the presenter passes that move on to the server's followers.
        until(lambda: server.received[-1:] == [{"slide": 1, "fragment": 0}])
        second.wait_for_timeout(300)
        slide_is(second, 4)
    finally:
        ctx.close()
