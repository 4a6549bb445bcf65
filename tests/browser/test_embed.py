"""The deck service in a real Chromium: framing by partner sites, live follow, watch reload."""

from __future__ import annotations

import re
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import pytest
from server_fixtures import TOKEN, MemorySource, ServerThread, make_artifacts

from slidesvc.server.app import STATE
from slidesvc.server.config import ServerSettings
from slidesvc.server.source import DeckSource

pytestmark = pytest.mark.browser

PARTNER_HOST = "127.0.0.2"
PARTNER_PAGE = textwrap.dedent(
    """\
    <!doctype html><html><head><title>Partner wiki</title></head><body>
    <h1>Partner wiki</h1><input id="search" autofocus>
    <iframe id="deck" src="{src}" width="640" height="360"></iframe>
    </body></html>"""
)


class Partner:
    """A "partner wiki" on another loopback origin whose page frames a deck."""

    def __init__(self) -> None:
        self.iframe_src = "about:blank"
        partner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                page = PARTNER_PAGE.format(src=partner.iframe_src).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((PARTNER_HOST, 0), Handler)
        self.origin = f"http://{PARTNER_HOST}:{self.server.server_address[1]}"
        self.url = self.origin + "/wiki"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Partner:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def deck_server(**settings: Any) -> ServerThread:
    base = ServerSettings(presenter_token=TOKEN, **settings)
    return ServerThread(base, MemorySource(make_artifacts(slides=5)))


def current_slide(frame: Any) -> str:
    return str(frame.evaluate("document.querySelector('section.slide.current')?.id || ''"))


def embed_frame(page: Any) -> Any:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for frame in page.frames:
            if "/embed" in frame.url:
                return frame
        page.wait_for_timeout(50)
    raise AssertionError(f"no embed frame in {[f.url for f in page.frames]}")


def test_partner_origin_in_allowlist_frames_the_embed(browser: Any) -> None:
    """An allowed partner origin frames /embed; ?slide=2 opens slide 2; focus stays on the host."""
    with Partner() as partner, deck_server(embed_origins=(partner.origin,)) as deck:
        partner.iframe_src = deck.url + "embed?slide=2"
        assert partner.origin != deck.url.rstrip("/")
        context = browser.new_context()
        page = context.new_page()
        page.goto(partner.url)
        frame = embed_frame(page)
        frame.wait_for_selector("section.slide.current", state="attached", timeout=10_000)
        assert current_slide(frame) == "2"
        assert frame.evaluate("document.documentElement.dataset.mode") == "embed"
        # the viewer in the iframe never steals the host page's focus or keys
        assert page.evaluate("document.activeElement.id") == "search"
        page.keyboard.press("ArrowRight")
        page.wait_for_timeout(200)
        assert current_slide(frame) == "2"
        context.close()


def test_origin_not_in_allowlist_is_refused(browser: Any) -> None:
    """A partner that is not in the allowlist gets a blocked frame, not the deck."""
    with Partner() as partner, deck_server(embed_origins=("https://wiki.example.org",)) as deck:
        partner.iframe_src = deck.url + "embed"
        context = browser.new_context()
        page = context.new_page()
        messages: list[str] = []
        page.on("console", lambda msg: messages.append(msg.text))
        page.goto(partner.url)
        page.wait_for_timeout(1000)
        framed = [f for f in page.frames if f is not page.main_frame]
        assert framed
        for frame in framed:
            assert not frame.evaluate("!!document.querySelector('main.deck')")
        assert any("frame-ancestors" in m for m in messages), messages
        context.close()


def test_full_deck_refuses_every_framer(browser: Any) -> None:
    """/ (not the embed view) cannot be framed by another site, even an allowlisted one."""
    with Partner() as partner, deck_server(embed_origins=(partner.origin,)) as deck:
        partner.iframe_src = deck.url
        context = browser.new_context()
        page = context.new_page()
        page.goto(partner.url)
        page.wait_for_timeout(1000)
        for frame in page.frames:
            if frame is not page.main_frame:
                assert not frame.evaluate("!!document.querySelector('main.deck')")
        context.close()


def test_embed_follows_the_presenter_within_a_second(browser: Any) -> None:
    """With ?follow=1 the framed deck follows each presenter move in under one second."""
    with Partner() as partner, deck_server() as deck:
        partner.iframe_src = deck.url + "embed?follow=1"
        audience = browser.new_context()
        wiki = audience.new_page()
        wiki.goto(partner.url)
        frame = embed_frame(wiki)
        frame.wait_for_selector("section.slide.current", state="attached", timeout=10_000)

        speaker = browser.new_context()
        presenter = speaker.new_page()
        # the token travels in the fragment; the login page turns it into a cookie
        presenter.goto(deck.url + "presenter#token=" + TOKEN)
        presenter.wait_for_selector("html[data-mode=presenter]", state="attached")
        assert "token" not in presenter.url
        assert "secret note 1" in presenter.content()

        async def presenters() -> int:
            return deck.app[STATE].hub.presenters

        deadline = time.monotonic() + 10
        while deck.call(presenters) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)

        for expected in ("2", "3", "4"):
            presenter.keyboard.press("ArrowRight")
            pressed = time.monotonic()
            while current_slide(frame) != expected and time.monotonic() - pressed < 1.0:
                time.sleep(0.01)
            assert current_slide(frame) == expected
            assert time.monotonic() - pressed < 1.0
        speaker.close()
        audience.close()


def test_presenter_login_form_without_fragment(browser: Any) -> None:
    """Pasting the token into the form also opens the presenter view."""
    with deck_server() as deck:
        context = browser.new_context()
        page = context.new_page()
        page.goto(deck.url + "presenter")
        assert "secret note" not in page.content()
        page.fill("input[name=token]", TOKEN)
        page.click("button[type=submit]")
        page.wait_for_selector("html[data-mode=presenter]", state="attached")
        assert "secret note 2" in page.content()
        cookies = context.cookies()
        assert [c["name"] for c in cookies] == ["slidesvc_presenter"]
        assert cookies[0]["httpOnly"] and cookies[0]["sameSite"] == "Strict"
        context.close()


DECK_V1 = """\
---
title: Watched
---
# First slide

---
# Second slide, version one
"""


def on_current_slide(page: Any, text: str, timeout: float = 10.0) -> None:
    """Wait until the current slide shows `text` (polled from here: the CSP forbids eval)."""
    script = "t => !!document.querySelector('section.slide.current')?.textContent.includes(t)"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if page.evaluate(script, text):
                return
        except Exception as exc:  # the page is navigating (reload): look again
            if "navigat" not in str(exc) and "destroyed" not in str(exc):
                raise
        time.sleep(0.05)
    raise AssertionError(f"current slide never showed {text!r}")


def test_watch_mode_reloads_and_shows_errors(browser: Any, tmp_path: Path) -> None:
    """Editing the deck reloads open pages on the same slide; a broken edit shows file:line."""
    deck_file = tmp_path / "talk.md"
    deck_file.write_text(DECK_V1, encoding="utf-8")
    settings = ServerSettings(presenter_token=TOKEN, watch=True)
    with ServerThread(settings, DeckSource(deck_file)) as server:
        context = browser.new_context()
        page = context.new_page()
        page.goto(server.url + "#2")
        on_current_slide(page, "version one")
        page.wait_for_timeout(300)  # the live socket is open

        deck_file.write_text(DECK_V1.replace("version one", "version two"), encoding="utf-8")
        on_current_slide(page, "version two")
        assert page.url.endswith("#2")

        deck_file.write_text("---\ntitle: [broken\n---\n# x\n", encoding="utf-8")
        overlay = page.wait_for_selector(".live-error", timeout=10_000)
        assert re.search(r"talk\.md:2: ", overlay.text_content() or "")
        with urlopen(server.url, timeout=5) as resp:  # the last good version is still served
            assert b"version two" in resp.read()

        deck_file.write_text(DECK_V1.replace("version one", "version three"), encoding="utf-8")
        on_current_slide(page, "version three")
        assert page.query_selector(".live-error") is None
        context.close()
