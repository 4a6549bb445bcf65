"""The aiohttp application of one deck: routes, handlers, error pages.

`create_app(settings, source)` builds the service of the HTTP contract in
DESIGN.md. The deck is loaded (and, in watch mode, reloaded) by cleanup
contexts; every handler answers from the `Site` prepared for the current
version, so the hot routes cost a lookup and a `web.Response`. PDFs come
from a `PdfStore` (one render per variant and version, in a worker process
in deck mode). `guard` turns errors into small pages and puts the security
headers on every response that does not already carry them; it wraps every
handler but the four hot ones (deck, embed, deck.json, health), whose prepared
responses carry their headers and cannot fail. A catch-all route answers
unknown paths (404) and other methods (405), so no middleware runs per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

from slidesvc.artifacts import Artifacts
from slidesvc.errors import RenderError, SlidesvcError
from slidesvc.server import presenter as auth
from slidesvc.server.config import ServerSettings
from slidesvc.server.live import Hub
from slidesvc.server.oembed import OEmbedError, oembed, to_xml
from slidesvc.server.pages import (
    BASE_HEADERS,
    DATA_CSP,
    NO_FRAMES,
    Prepared,
    Site,
    data_headers,
    html_headers,
    json_bytes,
    small_page,
)
from slidesvc.server.source import DeckSource, PdfStore, Source

log = logging.getLogger("slidesvc.server")

_FILENAME_RE = re.compile(r"[^A-Za-z0-9._-]+")
_FAILED_LOGIN_DELAY = 0.25


class DeckState:
    """The deck version being served, its PDFs, and the live hub."""

    def __init__(self, settings: ServerSettings, source: Source, hub: Hub) -> None:
        self.settings = settings
        self.source = source
        self.hub = hub
        self.site: Site | None = None
        self.pdfs: PdfStore[Prepared] = PdfStore(_no_pdf)
        self._stores: list[PdfStore[Prepared]] = []

    @property
    def current(self) -> Site:
        if self.site is None:  # only before start-up finished
            raise web.HTTPServiceUnavailable(text="the deck is still loading")
        return self.site

    def install(self, artifacts: Artifacts, *, keep_pdfs: bool = False) -> Site:
        """Serve `artifacts` from now on (raises `ServeError` on bad front-matter origins)."""
        site = Site.build(artifacts, self.settings)
        self.site = site
        if not keep_pdfs:  # same deck version: the PDFs rendered so far stay valid
            self.pdfs = PdfStore(lambda notes: self._render_pdf(artifacts, notes))
            self._stores = [*self._stores[-3:], self.pdfs]
        self.hub.reset(site.slides)
        return site

    async def _render_pdf(self, artifacts: Artifacts, notes: bool) -> Prepared | None:
        data = await self.source.render_pdf(artifacts, notes=notes)
        if data is None:
            return None
        deck = artifacts.deck
        name = str(deck.get("pdf_filename") or f"{artifacts.slug}.pdf")
        if notes:
            name = name.removesuffix(".pdf") + "-notes.pdf"
        name = _FILENAME_RE.sub("-", name).strip(".-") or "deck.pdf"
        headers = {
            **data_headers("application/pdf"),
            "Content-Disposition": f'attachment; filename="{name}"',
        }
        if notes and not deck.get("pdf_notes"):
            headers["Cache-Control"] = "private, no-store"  # speaker notes: no shared caches
        return Prepared(data, headers, compress=False)

    async def close(self) -> None:
        """Stop every PDF render still running, and the source's worker."""
        for store in self._stores:
            await store.close()
        await self.source.close()


async def _no_pdf(notes: bool) -> Prepared | None:
    return None


STATE = web.AppKey("state", DeckState)
ALLOWED = web.AppKey("allowed", dict[str, set[str]])
"""The methods each path answers (for 405s)."""


# --- errors -------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_DEFAULT_HEADERS = {**BASE_HEADERS, "Content-Security-Policy": DATA_CSP, **NO_FRAMES}
_REASONS = {
    400: "Bad request",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    413: "Request too large",
    501: "Not implemented",
    503: "Unavailable",
}


def guard(handler: Handler) -> Handler:
    """The handler, with errors mapped to small pages and the security headers
    put on its responses."""

    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                exc.headers.update(_DEFAULT_HEADERS)
                raise
            response = _error_page(exc)
        except SlidesvcError as exc:  # e.g. a watch-mode failure surfacing in a handler
            log.warning("%s %s: %s", request.method, request.path, exc)
            response = small_page(503, "Unavailable", str(exc))
        if not response.prepared and "X-Content-Type-Options" not in response.headers:
            for key, value in _DEFAULT_HEADERS.items():
                response.headers.setdefault(key, value)
        return response

    return guarded


@guard
async def no_route(request: web.Request) -> web.StreamResponse:
    """Everything no route answers: 405 on a known path, else 404."""
    allowed = request.app[ALLOWED].get(request.path)
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    raise web.HTTPNotFound()


def _error_page(exc: web.HTTPException) -> web.Response:
    reason = _REASONS.get(exc.status, exc.reason)
    message = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else reason
    if exc.status == 404 and message == reason:
        message = "There is nothing at this address. The deck is at ./"
    if exc.status == 405:
        message = "This address only answers " + exc.headers.get("Allow", "GET, HEAD") + "."
    response = small_page(exc.status, reason, message)
    for key in ("Allow", "Retry-After"):
        if key in exc.headers:
            response.headers[key] = exc.headers[key]
    return response


# --- handlers -----------------------------------------------------------------


async def deck_page(request: web.Request) -> web.StreamResponse:
    return request.app[STATE].current.deck_page.respond(request)


async def embed_page(request: web.Request) -> web.StreamResponse:
    return request.app[STATE].current.embed_page.respond(request)


async def deck_json(request: web.Request) -> web.StreamResponse:
    return request.app[STATE].current.deck_json.respond(request)


async def healthz(request: web.Request) -> web.StreamResponse:
    return request.app[STATE].current.health.respond(request)


@guard
async def thumbnail(request: web.Request) -> web.StreamResponse:
    site = request.app[STATE].current
    if request.path.rsplit("/", 1)[-1] != site.thumbnail.path:
        raise web.HTTPNotFound(text="this deck's thumbnail is at " + site.thumbnail.path)
    return site.thumbnail_body.respond(request)


def _is_presenter(request: web.Request) -> bool:
    token = request.app[STATE].settings.presenter_token
    return auth.cookie_ok(request.cookies.get(auth.COOKIE), token)


@guard
async def deck_pdf(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    notes = request.query.get("notes") == "1"
    if notes and not (state.current.artifacts.deck.get("pdf_notes") or _is_presenter(request)):
        raise web.HTTPNotFound(text="speaker notes are private for this deck")
    try:
        prepared = await state.pdfs.get(notes=notes)
    except RenderError as exc:
        raise web.HTTPServiceUnavailable(
            text=f"the PDF could not be rendered right now ({exc}); try again later",
            headers={"Retry-After": "30"},
        ) from None
    if prepared is None:
        raise web.HTTPNotFound(text="this deck was published without a PDF")
    return prepared.respond(request)


@guard
async def oembed_endpoint(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    site = state.current
    query = request.query
    fmt = query.get("format", "json")
    if fmt not in {"json", "xml"}:
        raise web.HTTPNotImplemented(text="supported formats: json, xml")
    try:
        data = oembed(
            site.artifacts,
            state.settings.public_url,
            url=query.get("url"),
            maxwidth=query.get("maxwidth"),
            maxheight=query.get("maxheight"),
            thumbnail=(site.thumbnail.path, site.thumbnail.width, site.thumbnail.height),
        )
    except OEmbedError as exc:
        if exc.status == 404:
            raise web.HTTPNotFound(text=str(exc)) from None
        raise web.HTTPBadRequest(text=str(exc)) from None
    if fmt == "xml":
        body, ctype = to_xml(data), "text/xml; charset=utf-8"
    else:
        body, ctype = json_bytes(data), "application/json"
    headers = {**BASE_HEADERS, **data_headers(ctype, cache="max-age=300", cors=True)}
    return web.Response(body=body, headers=headers)


@guard
async def presenter_page(request: web.Request) -> web.StreamResponse:
    site = request.app[STATE].current
    if not _is_presenter(request):
        return _login(site, status=200)
    if site.presenter_page is None:
        raise web.HTTPNotFound(text="this deck was published without its presenter view")
    return site.presenter_page.respond(request)


@guard
async def presenter_login(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    form = await request.post()
    token = form.get("token")
    if not isinstance(token, str) or not auth.token_ok(token, state.settings.presenter_token):
        await asyncio.sleep(_FAILED_LOGIN_DELAY)  # slows guessing; the loop stays free
        return _login(state.current, status=403, failed=True)
    public = urlsplit(state.settings.public_url)
    response = web.Response(
        status=303, headers={"Location": "presenter", "Cache-Control": "no-store"}
    )
    response.set_cookie(
        auth.COOKIE,
        auth.session_value(state.settings.presenter_token),
        path=public.path,
        httponly=True,
        samesite="Strict",
        secure=public.scheme == "https",
    )
    return response


def _login(site: Site, *, status: int, failed: bool = False) -> web.Response:
    title = str(site.artifacts.deck.get("title", ""))
    headers = {
        **BASE_HEADERS,
        **html_headers(auth.LOGIN_CSP, "'none'"),
        "Cache-Control": "no-store",
        "X-Frame-Options": "DENY",
    }
    return web.Response(status=status, body=auth.login_page(title, failed=failed), headers=headers)


@guard
async def live(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    if not web.WebSocketResponse().can_prepare(request).ok:
        raise web.HTTPBadRequest(text="/live is a WebSocket endpoint")
    if state.hub.full():
        raise web.HTTPServiceUnavailable(
            text="too many live connections", headers={"Retry-After": "5"}
        )
    headers = {**BASE_HEADERS, "Content-Security-Policy": DATA_CSP}
    return await state.hub.serve(request, presenter=_is_presenter(request), headers=headers)


# --- application --------------------------------------------------------------


def create_app(settings: ServerSettings, source: Source) -> web.Application:
    """The service of one deck; the deck is loaded when the app starts."""
    app = web.Application(client_max_size=64 * 1024)
    hub = Hub(max_clients=settings.max_live_clients, max_message_bytes=settings.max_message_bytes)
    app[STATE] = DeckState(settings, source, hub)
    app.cleanup_ctx.append(_deck_lifecycle)
    if settings.watch:
        app.cleanup_ctx.append(_watcher)
    app.on_shutdown.append(_close_live)

    routes = app.router
    routes.add_get("/", deck_page)
    routes.add_get("/index.html", deck_page)
    routes.add_get("/embed", embed_page)
    routes.add_get("/deck.pdf", deck_pdf)
    routes.add_get("/oembed", oembed_endpoint)
    routes.add_get("/deck.json", deck_json)
    routes.add_get("/thumbnail.png", thumbnail)
    routes.add_get("/thumbnail.svg", thumbnail)
    routes.add_get("/live", live)
    routes.add_get("/presenter", presenter_page)
    routes.add_post("/presenter", presenter_login)
    routes.add_get("/healthz", healthz)
    app[ALLOWED] = {r.canonical: {route.method for route in r} for r in routes.resources()}
    routes.add_route("*", "/{path:.*}", no_route)
    return app


async def _deck_lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Load the deck before the first request; stop PDF work on the way out."""
    state = app[STATE]
    state.install(await state.source.load())
    thumb = asyncio.ensure_future(_render_thumbnail(state))
    yield
    thumb.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await thumb
    await state.close()


async def _render_thumbnail(state: DeckState) -> None:
    """Deck mode: render the PDF ahead of the first download, and slide 1 from it
    for oEmbed (until then oEmbed points at a title card)."""
    site = state.current
    if site.artifacts.thumbnail_png is not None or not isinstance(state.source, DeckSource):
        return
    if state.settings.lazy_pdf:
        return
    try:
        pdf = await state.pdfs.get(notes=False)
        png = await state.source.render_thumbnail(pdf.body) if pdf is not None else None
    except SlidesvcError as exc:
        log.warning("thumbnail: %s (using a title card)", exc)
        return
    if png is not None and state.site is site:
        state.install(dataclasses.replace(site.artifacts, thumbnail_png=png), keep_pdfs=True)


async def _watcher(app: web.Application) -> AsyncIterator[None]:
    from slidesvc.server.watch import watch_deck

    task = asyncio.ensure_future(watch_deck(app[STATE], _render_thumbnail))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _close_live(app: web.Application) -> None:
    await app[STATE].hub.close_all()
