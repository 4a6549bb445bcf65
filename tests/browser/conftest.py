"""Browser tests get their own Chromium per module.

The shared session-wide browser keeps Playwright's sync API (and its event
loop) alive for the rest of the run, which breaks the pytest-aiohttp tests
collected after this folder; a module-scoped browser is gone by then.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import CHROMIUM, CHROMIUM_ARGS, require_tool


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A real headless Chromium (the system one) for this test module."""
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
