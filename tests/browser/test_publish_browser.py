"""Decks through the publisher's front door, in a real Chromium: viewer, live follow."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

pytestmark = pytest.mark.browser

DECK = """\
---
title: Followed talk
---

# One

---

## Two

---

## Three
"""


@dataclass
class Running:
    url: str
    tokens: dict[str, str]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def publisher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    folder = tmp_path_factory.mktemp("decks")
    (folder / "talk.md").write_text(DECK, encoding="utf-8")
    out = folder.parent / "publisher.out"
    port = _free_port()
    with open(out, "wb") as stdout:
        proc = subprocess.Popen(
            [sys.executable, "-m", "slidesvc", "publish", str(folder), "--port", str(port)],
            stdout=stdout,
            stderr=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url + "_status", timeout=5) as resp:
                    json.load(resp)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        tokens = dict(re.findall(r"presenter view of (\S+): \S+#token=(\S+)", out.read_text()))
        yield Running(url, tokens)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context()
    yield ctx
    ctx.close()


def test_deck_runs_through_the_front_door_without_errors(publisher: Running, context: Any) -> None:
    """The proxied deck loads, keeps its CSP happy, and opens its live channel under /<slug>/."""
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("requestfailed", lambda r: problems.append(r.url))
    with page.expect_websocket() as ws_info:
        page.goto(publisher.url + "talk/")
    assert ws_info.value.url == publisher.url.replace("http:", "ws:") + "talk/live"
    assert page.locator("section.slide").count() == 3
    page.keyboard.press("ArrowRight")
    page.wait_for_function("location.hash === '#2'")
    assert problems == []


def test_follower_moves_with_the_presenter_through_the_front_door(
    publisher: Running, context: Any
) -> None:
    """The presenter's keystrokes move a follower's embed, both through the publisher."""
    follower = context.new_page()
    follower.goto(publisher.url + "talk/embed?follow=1")
    presenter = context.new_page()
    presenter.goto(f"{publisher.url}talk/presenter#token={publisher.tokens['talk']}")
    presenter.wait_for_selector('html[data-mode="presenter"]')
    presenter.wait_for_timeout(300)  # its live socket connects
    presenter.keyboard.press("ArrowRight")
    presenter.keyboard.press("ArrowRight")
    follower.wait_for_function(
        "document.querySelector('section.slide.current')?.id === '3'", timeout=10_000
    )
