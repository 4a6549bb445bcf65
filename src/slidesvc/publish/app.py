"""The front door: one aiohttp application in front of every deck process.

`create_app` builds it. ``/`` is the deck index, ``/<slug>/...`` reaches
that deck's own process (started on demand and held until healthy),
``/<slug>/thumbnail.png`` is answered by the front door from its cache,
``/_status`` reports every deck's process to loopback clients only. The
`Publisher` (under `PUBLISHER`) ties the folder to the processes: it
polls the folder, registers new decks, stops removed ones, refreshes the
index when a deck changes, and stops idle processes. One `ClientSession`
with a keep-alive pool talks to every child.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import multiprocessing
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from aiohttp import hdrs, web
from yarl import URL

from slidesvc import index_page as pages
from slidesvc.index_page import DeckSummary
from slidesvc.publish.catalog import (
    Catalog,
    FileKey,
    Thumbnails,
    assign_slugs,
    scan,
)
from slidesvc.publish.proxy import forward_http, forward_websocket, is_websocket, proxy_session
from slidesvc.publish.settings import PublishSettings
from slidesvc.publish.supervisor import DeckState, DeckUnavailable, Supervisor, rss_bytes
from slidesvc.slug import slugify

log = logging.getLogger("slidesvc.publish")

SLUG = r"{slug:[a-z0-9][a-z0-9-]*}"
_RETRY_METHODS = frozenset({hdrs.METH_GET, hdrs.METH_HEAD})
_SECURITY_HEADERS = {
    "Content-Security-Policy": pages.CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class Publisher:
    """The decks of one folder, their summaries and their processes."""

    def __init__(
        self,
        settings: PublishSettings,
        session: aiohttp.ClientSession,
        *,
        pool_factory: Callable[[], Executor] | None = None,
        thumbnails: Thumbnails | None = None,
        announce: Callable[[str], None] = print,
    ) -> None:
        self.settings = settings
        self.session = session
        self.catalog = Catalog(settings.decks_dir, pool_factory)
        self.supervisor = Supervisor(settings, session)
        self.thumbnails = thumbnails or Thumbnails()
        self.started = time.monotonic()
        self._announce = announce
        self._index: tuple[int, bytes] = (-1, b"")
        self.sockets: set[web.WebSocketResponse] = set()
        """Open client WebSockets (closed first on shutdown)."""

    @property
    def home(self) -> str:
        return urlsplit(self.settings.base_url).path or "/"

    async def sync(self) -> None:
        """Bring decks in line with the folder: add, remove, refresh changed ones."""
        loop = asyncio.get_running_loop()
        files: dict[Path, FileKey] = await loop.run_in_executor(None, scan, self.catalog.folder)
        slugs, clashes = assign_slugs(list(files))
        current = self.supervisor.decks
        for slug in [s for s, d in current.items() if slugs.get(s) != d.path]:
            log.info("[%s] deck file removed; stopping", slug)
            self.catalog.drop(slug)
            await self.supervisor.remove(slug)
        for slug, path in slugs.items():
            if slug not in current:
                token = self.settings.presenter_token or secrets.token_urlsafe(24)
                deck = self.supervisor.add(slug, path, token)
                self.catalog.set_placeholder(slug, path)
                self.catalog.refresh(slug, path)
                self._announce(
                    f"presenter view of {slug}: {deck.public_url}presenter#token={token}"
                )
            elif files[path] != self.catalog.files.get(path):
                self.catalog.refresh(slug, path)
                current[slug].forgive()  # an edit may be the fix: no back-off wait
        if clashes != self.catalog.clashes:
            for message in set(clashes.values()) - set(self.catalog.clashes.values()):
                log.warning("%s", message)
            self.catalog.clashes = clashes
            self.catalog.version += 1
        self.catalog.files = files

    async def watch_folder(self) -> None:
        problem = ""
        while True:
            await asyncio.sleep(self.settings.poll_interval)
            try:
                await self.sync()
            except OSError as exc:
                if str(exc) != problem:  # say it once, not every second
                    log.warning("cannot read %s: %s", self.catalog.folder, exc)
                problem = str(exc)
            else:
                problem = ""

    async def reap_idle(self) -> None:
        period = min(1.0, max(0.05, self.settings.idle_timeout / 4))
        while True:
            await asyncio.sleep(period)
            await self.supervisor.reap_idle()

    def index_bytes(self) -> bytes:
        version, body = self._index
        if version != self.catalog.version:
            summaries = list(self.catalog.summaries.values())
            for path, message in self.catalog.clashes.items():
                summaries.append(
                    DeckSummary(
                        slug=f"{slugify(path)}-duplicate", path=path, title=path.name, error=message
                    )
                )
            body = pages.render_index(summaries, self.settings.base_url).encode("utf-8")
            self._index = (self.catalog.version, body)
        return body

    def status(self) -> dict[str, object]:
        decks = []
        for slug, deck in sorted(self.supervisor.decks.items()):
            line = deck.status()
            summary = self.catalog.summaries.get(slug)
            line["deck_error"] = summary.error if summary else ""
            decks.append(line)
        running = sum(d.state is DeckState.RUNNING for d in self.supervisor.decks.values())
        return {
            "publisher": {
                "pid": os.getpid(),
                "rss_bytes": rss_bytes(os.getpid()),
                "uptime_s": round(time.monotonic() - self.started, 1),
                "public_url": self.settings.base_url,
                "decks_dir": str(self.settings.decks_dir),
                "running": running,
                "max_running": self.settings.max_running,
                "idle_timeout_s": self.settings.idle_timeout,
            },
            "decks": decks,
        }


SETTINGS = web.AppKey("settings", PublishSettings)
PUBLISHER = web.AppKey("publisher", Publisher)


def create_app(
    settings: PublishSettings,
    *,
    render_thumbnail: Callable[[Path], Awaitable[bytes]] | None = None,
    announce: Callable[[str], None] = print,
) -> web.Application:
    """The front door for the decks of `settings.decks_dir`."""
    app = web.Application(middlewares=[_errors_and_headers])
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_publisher_ctx(render_thumbnail, announce))
    app.on_shutdown.append(_close_live_sockets)
    app.router.add_get("/", index)
    app.router.add_get("/_status", status)
    app.router.add_get(f"/{SLUG}", add_slash)
    app.router.add_get(f"/{SLUG}/thumbnail.png", thumbnail)
    app.router.add_route("*", f"/{SLUG}/{{tail:.*}}", deck)
    return app


def _publisher_ctx(
    render_thumbnail: Callable[[Path], Awaitable[bytes]] | None,
    announce: Callable[[str], None],
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        session = proxy_session()
        publisher = Publisher(
            settings,
            session,
            pool_factory=_parse_pool,
            thumbnails=Thumbnails(render_thumbnail),
            announce=announce,
        )
        app[PUBLISHER] = publisher
        tasks: list[asyncio.Task[None]] = []
        try:
            await publisher.sync()
            if settings.preload:  # in the background: the index answers meanwhile
                tasks.append(asyncio.create_task(_preload(publisher), name="preload"))
            tasks.append(asyncio.create_task(publisher.watch_folder(), name="watch folder"))
            if settings.idle_timeout > 0:
                tasks.append(asyncio.create_task(publisher.reap_idle(), name="idle reaper"))
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await publisher.supervisor.stop_all()
            await session.close()
            publisher.catalog.close()

    return ctx


def _parse_pool() -> Executor:
    # A separate process: parsing is CPU work that must not slow the proxy down.
    return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))


async def _close_live_sockets(app: web.Application) -> None:
    """Tell live followers we are going away instead of holding shutdown up."""
    sockets = list(app[PUBLISHER].sockets)
    await asyncio.gather(
        *(ws.close(code=aiohttp.WSCloseCode.GOING_AWAY) for ws in sockets),
        return_exceptions=True,
    )


async def _preload(publisher: Publisher) -> None:
    slugs = list(publisher.supervisor.decks)[: publisher.settings.max_running]

    async def start(slug: str) -> None:
        try:
            await publisher.supervisor.acquire(slug)
        except DeckUnavailable as exc:
            log.warning("[%s] preload failed: %s", slug, exc.reason)

    await asyncio.gather(*(start(s) for s in slugs))


@web.middleware
async def _errors_and_headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        response = await handler(request)
    except DeckUnavailable as exc:
        response = _page(
            request,
            503,
            "Deck unavailable",
            f"The deck “{exc.slug}” is not available right now: {exc.reason}. "
            f"Try again in {exc.retry_after} s.",
        )
        response.headers[hdrs.RETRY_AFTER] = str(exc.retry_after)
    except web.HTTPNotFound:
        response = _page(request, 404, "Not found", "There is no such deck or page here.")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = _page(request, exc.status, exc.reason, exc.text or exc.reason)
    if not response.prepared and hdrs.CONTENT_SECURITY_POLICY not in response.headers:
        response.headers.update(_SECURITY_HEADERS)
    return response


def _page(request: web.Request, status: int, title: str, message: str) -> web.Response:
    home = request.app[PUBLISHER].home
    return web.Response(
        status=status, text=pages.render_message(title, message, home), content_type="text/html"
    )


async def index(request: web.Request) -> web.StreamResponse:
    body = request.app[PUBLISHER].index_bytes()
    return web.Response(
        body=body,
        content_type="text/html",
        charset="utf-8",
        headers={hdrs.CACHE_CONTROL: "no-cache"},
    )


async def status(request: web.Request) -> web.StreamResponse:
    if not _is_local(request):
        raise web.HTTPForbidden(text="/_status answers loopback clients only\n")
    return web.json_response(request.app[PUBLISHER].status())


def _is_local(request: web.Request) -> bool:
    """A client on this machine: loopback, or our own address (front door on a LAN IP)."""
    remote = request.remote
    if not remote:
        return False
    try:
        if ipaddress.ip_address(remote).is_loopback:
            return True
    except ValueError:
        return False
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    return isinstance(sockname, tuple) and remote == sockname[0]


async def add_slash(request: web.Request) -> web.StreamResponse:
    slug = request.match_info["slug"]
    if slug not in request.app[PUBLISHER].supervisor.decks:
        raise web.HTTPNotFound()
    raise web.HTTPPermanentRedirect(request.rel_url.with_path(f"{request.path}/"))


async def thumbnail(request: web.Request) -> web.StreamResponse:
    publisher = request.app[PUBLISHER]
    summary = publisher.catalog.summaries.get(request.match_info["slug"])
    if summary is None:
        raise web.HTTPNotFound()
    etag = f'"{summary.content_hash}"'
    if summary.content_hash and request.headers.get(hdrs.IF_NONE_MATCH) == etag:
        return web.Response(status=304, headers={hdrs.ETAG: etag})
    png = await publisher.thumbnails.get(summary)
    if png is None:
        raise web.HTTPNotFound()
    return web.Response(
        body=png,
        content_type="image/png",
        headers={hdrs.ETAG: etag, hdrs.CACHE_CONTROL: "no-cache"},
    )


async def deck(request: web.Request) -> web.StreamResponse:
    """Everything under ``/<slug>/``: forwarded to the deck's own process."""
    publisher = request.app[PUBLISHER]
    slug = request.match_info["slug"]
    process = publisher.supervisor.decks.get(slug)
    if process is None:
        raise web.HTTPNotFound()
    prefix = f"/{slug}"
    # The raw (still percent-encoded) path and query, minus the deck's prefix.
    target = request.raw_path[len(prefix) :]
    process.requests += 1
    process.active += 1
    try:
        for attempt in (1, 2, 3):
            base = await publisher.supervisor.acquire(slug)
            url = URL(base + target, encoded=True)
            try:
                if is_websocket(request):
                    return await forward_websocket(
                        request, publisher.session, url, prefix, registry=publisher.sockets
                    )
                return await forward_http(request, publisher.session, url, prefix)
            except aiohttp.ClientConnectionError as exc:  # refused, reset, disconnected
                if attempt == 3 or request.method not in _RETRY_METHODS:
                    raise DeckUnavailable(slug, "its process stopped answering", 1) from exc
                # A keep-alive connection the process closed (idle, or dying), or a
                # port that refuses connections (dying or dead): a GET is safe to send
                # again. Let a death be noticed first, so that the retry starts a new
                # process; a refusal always means one.
                refused = isinstance(exc, aiohttp.ClientConnectorError)
                await process.confirm_exit(refused=refused)
            except aiohttp.ClientError as exc:  # e.g. died in the middle of a small answer
                raise DeckUnavailable(slug, "its process stopped answering", 1) from exc
        raise AssertionError("unreachable")
    finally:
        process.active -= 1
        process.last_used = time.monotonic()
