"""Shared fixtures: tool checks, a real Chromium, deck files in a temp folder."""

from __future__ import annotations

import os
import shutil
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DECKS = ROOT / "decks"
CHROMIUM = os.environ.get("SLIDESVC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def require_tool(name: str) -> str:
    """Path of an external tool; skip without it, but fail under CI=true."""
    path = name if os.path.isabs(name) and os.access(name, os.X_OK) else shutil.which(name)
    if path is None:
        message = f"{name} is not installed (the README's test command installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def write_deck(tmp_path: Path) -> Callable[..., Path]:
    """Write a deck (dedented) into a temp folder and return its path."""

    def write(text: str, name: str = "talk.md", *, dedent: bool = True) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text) if dedent else text, encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A real headless Chromium (the system one), shared by the session."""
    require_tool(CHROMIUM)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser page (own context) that is closed after the test."""
    context = browser.new_context()
    pg = context.new_page()
    yield pg
    context.close()
