"""Watch mode: rebuild when the deck's files change, tell open pages.

`watch_deck` polls the source's files (the deck's folder: Markdown, images,
local theme; size and mtime, read in a thread) and, once a change has
settled for a moment, rebuilds. A good build is installed and open pages are
told to ``reload`` (the viewer keeps its slide); a broken one leaves the last
good version in place and sends ``error`` with the ``file:line: message``,
which pages show in an overlay and the console prints. Polling needs nothing
beyond the standard library and costs a directory walk every 0.3 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from slidesvc.errors import SlidesvcError
from slidesvc.server.source import Source

if TYPE_CHECKING:
    from slidesvc.server.app import DeckState

log = logging.getLogger("slidesvc.watch")

Snapshot = dict[str, tuple[int, int]]

INTERVAL = 0.3
"""Seconds between two looks at the files."""
SETTLE = 0.15
"""A change must stay unchanged this long before a rebuild (editors write in steps)."""


def snapshot(source: Source, exclude: frozenset[str] = frozenset()) -> Snapshot:
    """Size and modification time of every watched file but those in `exclude`
    (absolute paths: e.g. the file being written)."""
    result: Snapshot = {}
    for path in source.watched_files():
        if exclude and os.path.abspath(path) in exclude:
            continue
        try:
            st = path.stat()
        except OSError:  # vanished between listing and stat
            continue
        result[str(path)] = (st.st_mtime_ns, st.st_size)
    return result


async def watch_deck(
    state: DeckState,
    after_install: Callable[[DeckState], Awaitable[None]],
    *,
    interval: float = INTERVAL,
    settle: float = SETTLE,
) -> None:
    """Run until cancelled: rebuild on every settled change."""
    loop = asyncio.get_running_loop()
    seen = await loop.run_in_executor(None, snapshot, state.source)
    follow_up: asyncio.Future[None] | None = None
    try:
        while True:
            seen = await settled_change(state.source, seen, interval=interval, settle=settle)
            if await rebuild(state):
                if follow_up is not None:
                    follow_up.cancel()
                follow_up = asyncio.ensure_future(after_install(state))
    finally:
        if follow_up is not None:
            follow_up.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follow_up


async def settled_change(
    source: Source,
    seen: Snapshot,
    *,
    interval: float = INTERVAL,
    settle: float = SETTLE,
    exclude: frozenset[str] = frozenset(),
) -> Snapshot:
    """Wait until the files differ from `seen` and then stay unchanged for
    `settle` seconds (editors write in steps); the new snapshot."""
    loop = asyncio.get_running_loop()
    now = seen
    while now == seen:
        await asyncio.sleep(interval)
        now = await loop.run_in_executor(None, snapshot, source, exclude)
    while True:
        await asyncio.sleep(settle)
        later = await loop.run_in_executor(None, snapshot, source, exclude)
        if later == now:
            return now
        now = later


async def rebuild(state: DeckState) -> bool:
    """Build the deck again; True when a new version is being served."""
    hub = state.hub
    old = state.current
    had_error = hub.error is not None
    try:
        site = state.install(await state.source.load())
    except SlidesvcError as exc:
        _report(state, str(exc))
        return False
    except Exception as exc:  # a bug in the build must not end watch mode
        log.exception("rebuild of %s failed", state.source.label)
        _report(state, f"{state.source.label}: internal error while rebuilding: {exc!r}")
        return False
    if site.version != old.version or had_error:
        print(f"slidesvc: rebuilt {state.source.label} (version {site.version})", file=sys.stderr)
        hub.broadcast({"type": "reload", "version": site.version})
    return True


def _report(state: DeckState, message: str) -> None:
    print(
        f"slidesvc: build failed, still serving the last good version:\n{message}",
        file=sys.stderr,
        flush=True,
    )
    state.hub.error = message
    state.hub.broadcast({"type": "error", "message": message})
