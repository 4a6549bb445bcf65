"""The per-deck service's HTTP contract, through a real aiohttp server."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Awaitable, Callable
from html.parser import HTMLParser
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from server_fixtures import PUBLIC, TOKEN, MemorySource, make_artifacts

from slidesvc.artifacts import Artifacts
from slidesvc.errors import ServeError
from slidesvc.server.app import create_app
from slidesvc.server.config import ServerSettings

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]

ROUTES = ["/", "/embed", "/deck.json", "/healthz", "/deck.pdf", "/thumbnail.png", "/presenter"]


def settings(**kw: Any) -> ServerSettings:
    return ServerSettings(**{"public_url": PUBLIC, "presenter_token": TOKEN, **kw})


@pytest.fixture
def serve(aiohttp_client: Any) -> MakeClient:
    async def start(artifacts: Artifacts | None = None, **kw: Any) -> Client:
        source = kw.pop("source", None) or MemorySource(artifacts or make_artifacts())
        client: Client = await aiohttp_client(create_app(settings(**kw), source))
        return client

    return start


async def login(client: Client) -> None:
    resp = await client.post("/presenter", data={"token": TOKEN}, allow_redirects=False)
    assert resp.status == 303


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[dict[str, str | None]] = []
        self.metas: list[dict[str, str | None]] = []
        self.mode: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "link":
            self.links.append(dict(attrs))
        elif tag == "meta":
            self.metas.append(dict(attrs))
        elif tag == "html":
            self.mode = dict(attrs).get("data-mode")


def parse(html: str) -> _Links:
    parser = _Links()
    parser.feed(html)
    return parser


# --- pages --------------------------------------------------------------------


async def test_deck_page_is_public_html_without_notes(serve: MakeClient) -> None:
    """/ serves the deck in deck mode, with no speaker notes."""
    client = await serve()
    resp = await client.get("/")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    text = await resp.text()
    assert parse(text).mode == "deck"
    assert "Slide 5" in text
    assert "secret note" not in text


async def test_embed_page_has_embed_mode(serve: MakeClient) -> None:
    """/embed is the same deck with data-mode="embed"."""
    client = await serve()
    text = await (await client.get("/embed")).text()
    assert parse(text).mode == "embed"
    assert "secret note" not in text


async def test_pages_carry_discovery_links_and_live_meta(serve: MakeClient) -> None:
    """Deck pages link the oEmbed endpoint (absolute, from the public URL) and the live channel."""
    client = await serve()
    for path in ("/", "/embed"):
        page = parse(await (await client.get(path)).text())
        types = {link.get("type"): link.get("href") for link in page.links}
        assert types["application/json+oembed"] == (
            "http://deck.test/oembed?url=http%3A%2F%2Fdeck.test%2F&format=json"
        )
        assert types["text/xml+oembed"].endswith("&format=xml")  # type: ignore[union-attr]
        live = [m for m in page.metas if m.get("name") == "slidesvc:live"]
        assert live == [{"name": "slidesvc:live", "content": "live"}]


async def test_etag_and_conditional_get(serve: MakeClient) -> None:
    """Pages have strong ETags; If-None-Match answers 304 without a body."""
    client = await serve()
    for path in ("/", "/embed", "/deck.json", "/deck.pdf", "/thumbnail.png"):
        first = await client.get(path, headers={"Accept-Encoding": "identity"})
        etag = first.headers["ETag"]
        assert etag.startswith('"') and not etag.startswith("W/")
        again = await client.get(
            path, headers={"If-None-Match": etag, "Accept-Encoding": "identity"}
        )
        assert again.status == 304, path
        assert await again.read() == b""
        assert again.headers["ETag"] == etag
        assert again.headers["X-Content-Type-Options"] == "nosniff"
        other = await client.get(path, headers={"If-None-Match": '"other"'})
        assert other.status == 200


async def test_gzip_is_precompressed_and_has_its_own_etag(serve: MakeClient) -> None:
    """gzip is served when accepted, with Vary and a different ETag; identity otherwise."""
    client = await serve()
    gz = await client.get("/", headers={"Accept-Encoding": "gzip, br"}, auto_decompress=False)
    plain = await client.get("/", headers={"Accept-Encoding": "identity"})
    assert gz.headers["Content-Encoding"] == "gzip"
    assert gz.headers["Vary"] == "Accept-Encoding"
    assert "Content-Encoding" not in plain.headers
    assert gzip.decompress(await gz.read()) == await plain.read()
    assert gz.headers["ETag"] != plain.headers["ETag"]
    refused = await client.get("/", headers={"Accept-Encoding": "gzip;q=0"})
    assert "Content-Encoding" not in refused.headers


async def test_cache_control_lets_browsers_revalidate(serve: MakeClient) -> None:
    """Pages may be cached but must be revalidated; health is never cached."""
    client = await serve()
    assert (await client.get("/")).headers["Cache-Control"] == "no-cache"
    assert (await client.get("/healthz")).headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "query",
    ["abc", "-1", "0", "999999", "1e3", "%0d%0aSet-Cookie:x", "<script>", "%3Cscript%3E"],
)
async def test_embed_slide_parameter_is_never_reflected(serve: MakeClient, query: str) -> None:
    """?slide= with junk still answers the same bytes as /embed; nothing is reflected."""
    client = await serve()
    plain = await (await client.get("/embed")).read()
    resp = await client.get(f"/embed?slide={query}&controls=0&follow=1")
    assert resp.status == 200
    assert await resp.read() == plain
    assert "Set-Cookie" not in resp.headers
    for value in resp.headers.values():
        assert "script" not in value.lower() or value.startswith("default-src")


# --- headers and framing ------------------------------------------------------


async def test_every_response_has_security_headers(serve: MakeClient) -> None:
    """nosniff, Referrer-Policy and a CSP on every route, error pages included."""
    client = await serve()
    paths = [*ROUTES, "/oembed?url=http://deck.test/", "/nope", "/live", "/thumbnail.svg"]
    for path in paths:
        resp = await client.get(path)
        assert resp.headers["X-Content-Type-Options"] == "nosniff", path
        assert resp.headers["Referrer-Policy"] == "no-referrer", path
        assert "Content-Security-Policy" in resp.headers, path
    resp = await client.delete("/")
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


async def test_only_embed_may_be_framed(serve: MakeClient) -> None:
    """/embed: frame-ancestors from the allowlist and no X-Frame-Options; others refuse."""
    client = await serve()
    embed = await client.get("/embed")
    assert "X-Frame-Options" not in embed.headers
    assert embed.headers["Content-Security-Policy"].endswith("frame-ancestors *")
    for path in [*ROUTES, "/oembed?url=http://deck.test/", "/nope"]:
        if path == "/embed":
            continue
        resp = await client.get(path)
        assert resp.headers["X-Frame-Options"] in {"SAMEORIGIN", "DENY"}, path
        assert (
            "frame-ancestors 'self'" in resp.headers["Content-Security-Policy"]
            or "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
        ), path


async def test_embed_allowlist_joins_front_matter_and_settings(serve: MakeClient) -> None:
    """embed.origins from the deck plus --embed-origin make the frame-ancestors list."""
    artifacts = make_artifacts(embed_origins=("https://wiki.example.org",))
    client = await serve(artifacts, embed_origins=("http://127.0.0.2:8080",))
    csp = (await client.get("/embed")).headers["Content-Security-Policy"]
    assert csp.endswith("frame-ancestors https://wiki.example.org http://127.0.0.2:8080")


async def test_bad_front_matter_origin_stops_start_up() -> None:
    """A malformed origin in the deck is a start-up error naming it."""
    artifacts = make_artifacts(embed_origins=("https://wiki.example.org; script-src *",))
    server = TestServer(create_app(settings(), MemorySource(artifacts)))
    try:
        with pytest.raises(ServeError, match=r"embed\.origins"):
            await server.start_server()
    finally:
        await server.close()


async def test_html_csp_reuses_the_page_policy(serve: MakeClient) -> None:
    """The header CSP is the page's own meta policy plus frame-ancestors."""
    client = await serve()
    csp = (await client.get("/")).headers["Content-Security-Policy"]
    assert "script-src 'sha256-" in csp
    assert "connect-src 'self'" in csp
    assert csp.endswith("frame-ancestors 'self'")


async def test_forwarded_host_appears_nowhere(serve: MakeClient) -> None:
    """X-Forwarded-Host / Host never leak into any response."""
    client = await serve()
    evil = {
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Proto": "https",
        "Host": "evil.example",
    }
    paths = [*ROUTES, "/oembed?url=http://deck.test/", "/oembed?url=http://deck.test/&format=xml"]
    for path in [*paths, "/nope"]:
        resp = await client.get(path, headers=evil)
        assert b"evil.example" not in await resp.read(), path
        assert "evil.example" not in str(resp.headers), path
    resp = await client.post(
        "/presenter", data={"token": TOKEN}, headers=evil, allow_redirects=False
    )
    assert "evil.example" not in str(resp.headers)


# --- methods and unknown paths -----------------------------------------------


async def test_head_works_wherever_get_does(serve: MakeClient) -> None:
    """HEAD answers like GET, without a body."""
    client = await serve()
    for path in ROUTES:
        get = await client.get(path, headers={"Accept-Encoding": "identity"})
        head = await client.head(path, headers={"Accept-Encoding": "identity"})
        assert head.status == get.status, path
        assert head.headers.get("ETag") == get.headers.get("ETag"), path
        assert await head.read() == b""


async def test_other_methods_are_405(serve: MakeClient) -> None:
    """PUT/DELETE/PATCH get 405 with Allow and a small page."""
    client = await serve()
    for method in ("PUT", "DELETE", "PATCH"):
        resp = await client.request(method, "/")
        assert resp.status == 405
        assert "GET" in resp.headers["Allow"]
        assert "Method not allowed" in await resp.text()
    assert (await client.post("/deck.pdf")).status == 405
    assert (await client.options("/embed")).status == 405
    for method in ("POST", "DELETE", "HEAD"):  # no route at all: 404 whatever the method
        assert (await client.request(method, "/nowhere")).status == 404


async def test_unknown_path_is_a_small_404_page(serve: MakeClient) -> None:
    """Unknown paths answer 404 with a short HTML page that reflects nothing."""
    client = await serve()
    resp = await client.get("/<script>alert(1)</script>")
    assert resp.status == 404
    text = await resp.text()
    assert resp.content_type == "text/html"
    assert "<script" not in text and len(text) < 1000


# --- JSON documents -----------------------------------------------------------


async def test_deck_json_describes_the_deck(serve: MakeClient) -> None:
    """deck.json has title, author, count, outline, aspect, version and absolute links."""
    client = await serve()
    data = await (await client.get("/deck.json")).json()
    assert data["title"] == "Test <Talk> & Co"
    assert data["author"] == "Ada Lovelace"
    assert data["slides"] == 5
    assert data["outline"][1] == {"slide": 2, "title": "Slide 2"}
    assert (data["width"], data["height"]) == (1280, 720)
    assert data["version"] == "v1"
    assert data["links"]["embed"] == "http://deck.test/embed"
    assert data["links"]["pdf"] == "http://deck.test/deck.pdf"
    assert data["links"]["deck"] == PUBLIC


async def test_public_url_with_path_prefix(serve: MakeClient) -> None:
    """A public URL under a path prefix is used verbatim for absolute links."""
    client = await serve(public_url="https://example.org/decks/talk/")
    data = await (await client.get("/deck.json")).json()
    assert data["links"]["embed"] == "https://example.org/decks/talk/embed"


async def test_healthz(serve: MakeClient) -> None:
    """/healthz reports status, slug, slide count and version."""
    client = await serve()
    resp = await client.get("/healthz")
    assert await resp.json() == {"status": "ok", "deck": "talk", "slides": 5, "version": "v1"}


# --- PDF ----------------------------------------------------------------------


async def test_pdf_download(serve: MakeClient) -> None:
    """/deck.pdf is an attachment named after the deck, with an ETag."""
    client = await serve()
    resp = await client.get("/deck.pdf")
    assert resp.status == 200
    assert resp.content_type == "application/pdf"
    assert resp.headers["Content-Disposition"] == 'attachment; filename="talk.pdf"'
    assert "ETag" in resp.headers
    assert (await resp.read()).startswith(b"%PDF")


async def test_notes_pdf_is_private_by_default(serve: MakeClient) -> None:
    """?notes=1 is 404 for the public and served to the presenter."""
    client = await serve()
    assert (await client.get("/deck.pdf?notes=1")).status == 404
    await login(client)
    resp = await client.get("/deck.pdf?notes=1")
    assert resp.status == 200
    assert await resp.read() == b"%PDF-1.7 notes v1"
    assert resp.headers["Content-Disposition"] == 'attachment; filename="talk-notes.pdf"'
    assert resp.headers["Cache-Control"] == "private, no-store"


async def test_notes_pdf_public_when_deck_opts_in(serve: MakeClient) -> None:
    """pdf.notes: true in the deck makes the notes PDF public."""
    client = await serve(make_artifacts(pdf_notes=True))
    assert (await client.get("/deck.pdf?notes=1")).status == 200


async def test_missing_pdf_is_404(serve: MakeClient) -> None:
    """A build without PDF answers 404 with a clear page."""
    client = await serve(make_artifacts(with_pdf=False))
    resp = await client.get("/deck.pdf")
    assert resp.status == 404
    assert "without a PDF" in await resp.text()


async def test_concurrent_pdf_requests_share_one_render(serve: MakeClient) -> None:
    """Ten requests during a render cause one render."""
    source = MemorySource(make_artifacts(), pdf_delay=0.2)
    client = await serve(source=source)
    responses = await asyncio.gather(*(client.get("/deck.pdf") for _ in range(10)))
    assert [r.status for r in responses] == [200] * 10
    await client.get("/deck.pdf")
    assert source.renders == 1


async def test_failed_render_is_503_and_service_keeps_serving(serve: MakeClient) -> None:
    """A render that times out answers 503 with a message; other routes still work."""
    source = MemorySource(make_artifacts(), pdf_error="PDF worker exceeded its 60 s limit")
    client = await serve(source=source)
    resp = await client.get("/deck.pdf")
    assert resp.status == 503
    assert "exceeded its 60 s limit" in await resp.text()
    assert resp.headers["Retry-After"] == "30"
    assert (await client.get("/")).status == 200
    await client.get("/deck.pdf")
    assert source.renders == 2  # a failure is not cached


# --- presenter ----------------------------------------------------------------


async def test_presenter_requires_login(serve: MakeClient) -> None:
    """Without the cookie /presenter is the login page, not the notes."""
    client = await serve()
    resp = await client.get("/presenter")
    text = await resp.text()
    assert resp.status == 200
    assert "secret note" not in text
    assert 'name="token"' in text
    assert resp.headers["Cache-Control"] == "no-store"
    assert "script-src 'sha256-" in resp.headers["Content-Security-Policy"]


async def test_presenter_wrong_token_is_403(serve: MakeClient) -> None:
    """A wrong token gets 403 and no cookie."""
    client = await serve()
    resp = await client.post("/presenter", data={"token": "wrong"}, allow_redirects=False)
    assert resp.status == 403
    assert "Set-Cookie" not in resp.headers
    assert (await client.post("/presenter", data={}, allow_redirects=False)).status == 403


async def test_presenter_login_sets_a_safe_cookie(serve: MakeClient) -> None:
    """A valid token sets an HttpOnly, SameSite=Strict cookie that is not the token."""
    client = await serve()
    resp = await client.post("/presenter", data={"token": TOKEN}, allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"] == "presenter"
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith("slidesvc_presenter=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert TOKEN not in cookie
    page = await client.get("/presenter")
    text = await page.text()
    assert parse(text).mode == "presenter"
    assert "secret note 3" in text


async def test_presenter_cookie_is_scoped_to_public_path(serve: MakeClient) -> None:
    """Behind a path prefix the cookie path is that prefix; https makes it Secure."""
    client = await serve(public_url="https://example.org/decks/talk/")
    resp = await client.post("/presenter", data={"token": TOKEN}, allow_redirects=False)
    cookie = resp.headers["Set-Cookie"]
    assert "Path=/decks/talk/" in cookie and "Secure" in cookie


async def test_presenter_without_presenter_html_is_404(serve: MakeClient) -> None:
    """A public-only build has no presenter view: a clear 404."""
    client = await serve(make_artifacts(with_presenter=False))
    await login(client)
    resp = await client.get("/presenter")
    assert resp.status == 404
    assert "presenter view" in await resp.text()


async def test_oversized_login_body_is_rejected(serve: MakeClient) -> None:
    """A huge POST body is refused (413), the service lives on."""
    client = await serve()
    resp = await client.post("/presenter", data={"token": "x" * 200_000})
    assert resp.status == 413
    assert (await client.get("/healthz")).status == 200


async def test_live_without_upgrade_is_400(serve: MakeClient) -> None:
    """A plain GET of /live explains it is a WebSocket."""
    client = await serve()
    resp = await client.get("/live")
    assert resp.status == 400
    assert "WebSocket" in await resp.text()


async def test_responses_are_prepared_once(serve: MakeClient) -> None:
    """The deck page bytes are identical across requests (nothing rendered per request)."""
    client = await serve()
    bodies = {await (await client.get("/")).read() for _ in range(3)}
    assert len(bodies) == 1
    data = json.loads(await (await client.get("/deck.json")).read())
    assert data["slug"] == "talk"
