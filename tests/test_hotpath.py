"""The hot path, over real sockets: the deck and embed pages answered without
aiohttp's request machinery, and everything else handed to aiohttp unchanged.

Each test runs one app behind two sites of the same runner: the hot path (as
`slidesvc serve` runs it) and aiohttp's plain `SockSite`. The plain site is
the reference: for every request the hot path must answer exactly what
aiohttp answers (`Date` aside), whether it answered or handed off.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web
from server_fixtures import PUBLIC, TOKEN, MemorySource, make_artifacts

from slidesvc.server import hotpath, run
from slidesvc.server.app import STATE, create_app
from slidesvc.server.config import ServerSettings
from slidesvc.server.hotpath import MAX_HEAD, HotPathSite


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def comparable(self) -> tuple[int, list[tuple[str, str]], bytes]:
        """Everything but the ``Date`` header, headers in any order."""
        headers = sorted((k.lower(), v) for k, v in self.headers if k.lower() != "date")
        return self.status, headers, self.body


@dataclass
class Sites:
    hot: int
    plain: int
    runner: web.AppRunner
    app: web.Application
    site: HotPathSite
    hand_offs: list[bytes]
    """What the hot path passed on to aiohttp, one entry per hand-off."""

    def aiohttp_connections(self) -> int:
        """Connections aiohttp's protocol holds (the hot path's are not among them)."""
        assert self.runner.server is not None
        return len(self.runner.server.connections)


@pytest.fixture
async def sites(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Sites]:
    hand_offs: list[bytes] = []
    hand_off = hotpath.HotPath._hand_off

    def counted(self: hotpath.HotPath, rest: bytes) -> None:
        hand_offs.append(rest)
        hand_off(self, rest)

    monkeypatch.setattr(hotpath.HotPath, "_hand_off", counted)
    settings = ServerSettings(public_url=PUBLIC, presenter_token=TOKEN)
    app = create_app(settings, MemorySource(make_artifacts(slides=12)))
    runner = run.make_runner(app, settings)
    await runner.setup()
    hot, plain = run.bind("127.0.0.1", 0), run.bind("127.0.0.1", 0)
    state = app[STATE]
    site = HotPathSite(runner, hot, lambda: state.site, run.access_line)
    await site.start()
    await web.SockSite(runner, plain).start()
    yield Sites(hot.getsockname()[1], plain.getsockname()[1], runner, app, site, hand_offs)
    if runner.server is not None:  # not cleaned up by the test
        await runner.cleanup()
    run._flush_log()


async def read_response(reader: asyncio.StreamReader, *, head: bool = False) -> Response:
    status_line = await reader.readuntil(b"\r\n")
    status = int(status_line.split()[1])
    headers = []
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name, value.strip()))
    length = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
    body = b"" if head or status == 304 else await reader.readexactly(length)
    return Response(status, headers, body)


async def exchange(
    port: int, raw: bytes, responses: int = 1, *, head: bool = False
) -> list[Response]:
    """Send `raw` on one connection and read `responses` answers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        return [
            await asyncio.wait_for(read_response(reader, head=head), 5) for _ in range(responses)
        ]
    finally:
        writer.close()


def get(target: str = "/", *headers: str, version: str = "1.1") -> bytes:
    lines = [f"GET {target} HTTP/{version}", "Host: deck.test", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def both(sites: Sites, raw: bytes, responses: int = 1, **kw: bool) -> list[Response]:
    """The hot path's answers to `raw`, after checking aiohttp gives the same."""
    hot = await exchange(sites.hot, raw, responses, **kw)
    plain = await exchange(sites.plain, raw, responses, **kw)
    assert [r.comparable() for r in hot] == [r.comparable() for r in plain]
    return hot


def etag_of(response: Response) -> str:
    etag = response.header("ETag")
    assert etag
    return etag


# --- what the hot path answers itself -------------------------------------------


@pytest.mark.parametrize("target", ["/", "/embed", "/embed?slide=3&controls=0", "/?x=%22"])
@pytest.mark.parametrize("encoding", [None, "gzip, deflate, br", "gzip;q=0", "identity"])
async def test_pages_are_answered_exactly_as_aiohttp_answers(
    sites: Sites, target: str, encoding: str | None
) -> None:
    extra = [f"Accept-Encoding: {encoding}"] if encoding else []
    (page,) = await both(sites, get(target, *extra, "User-Agent: test/1.0", "Accept: */*"))
    assert page.status == 200
    assert page.header("Content-Encoding") == ("gzip" if encoding == "gzip, deflate, br" else None)
    assert page.header("Date")
    expected_mode = b'data-mode="embed"' if target.startswith("/embed") else b'data-mode="deck"'
    if page.header("Content-Encoding") is None:
        assert expected_mode in page.body
    assert sites.hand_offs == []  # the hot path answered


@pytest.mark.parametrize("encoding", [None, "gzip"])
async def test_conditional_requests_get_the_same_304s(sites: Sites, encoding: str | None) -> None:
    extra = [f"Accept-Encoding: {encoding}"] if encoding else []
    (page,) = await both(sites, get("/embed", *extra))
    etag = etag_of(page)
    for inm in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        (again,) = await both(sites, get("/embed", *extra, f"If-None-Match: {inm}"))
        assert again.status == 304
        assert again.body == b""
        assert again.header("ETag") == etag
    (changed,) = await both(sites, get("/embed", *extra, 'If-None-Match: "stale"'))
    assert changed.status == 200
    assert sites.hand_offs == []


async def test_forwarded_headers_change_nothing(sites: Sites) -> None:
    forwarded = ("X-Forwarded-Host: evil.example", "X-Forwarded-Proto: http", "Forwarded: for=x")
    (page,) = await both(sites, get("/", *forwarded))
    assert b"evil.example" not in page.body
    assert all("evil.example" not in value for _, value in page.headers)
    assert sites.hand_offs == []


async def test_hot_requests_never_reach_aiohttp(sites: Sites) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", sites.hot)
    for target in ("/", "/embed", "/embed?slide=2"):
        writer.write(get(target))
        assert (await read_response(reader)).status == 200
    assert sites.aiohttp_connections() == 0
    writer.write(get("/deck.json"))  # not a page the hot path answers
    assert (await read_response(reader)).status == 200
    assert sites.aiohttp_connections() == 1  # handed off, on the same connection
    assert sites.hand_offs == [get("/deck.json")]
    writer.write(get("/"))
    assert (await read_response(reader)).status == 200  # aiohttp answers it from now on
    writer.close()


async def test_connection_close_is_honoured(sites: Sites) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", sites.hot)
    writer.write(get("/", "Connection: close"))
    page = await read_response(reader)
    assert page.header("Connection") == "close"
    assert await asyncio.wait_for(reader.read(), 5) == b""  # and the server closed
    writer.close()
    await both(sites, get("/", "Connection: close"))


async def test_pipelined_requests_are_answered_in_order_across_the_hand_off(
    sites: Sites,
) -> None:
    raw = get("/") + get("/embed") + get("/deck.json") + get("/") + get("/healthz")
    answers = await both(sites, raw, 5)
    assert [a.status for a in answers] == [200] * 5
    assert b'"status":"ok"' in answers[4].body
    assert answers[2].header("Content-Type") == "application/json"


async def test_a_request_sent_byte_by_byte_is_answered(sites: Sites) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", sites.hot)
    for byte in get("/embed"):
        writer.write(bytes([byte]))
        await writer.drain()
    assert (await read_response(reader)).status == 200
    assert sites.hand_offs == []
    writer.close()


async def test_access_log_lines_match_aiohttps(
    sites: Sites, capsys: pytest.CaptureFixture[str]
) -> None:
    for port in (sites.hot, sites.plain):
        await exchange(port, get("/embed?slide=2&controls=0"))
        await exchange(port, get("/", "Accept-Encoding: gzip"))
    run._flush_log()
    lines = [re.sub(r"\[[^]]+\]", "[T]", line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 4
    assert lines[:2] == lines[2:]
    assert lines[0].startswith('127.0.0.1 - - [T] "GET /embed?slide=2&controls=0 HTTP/1.1" 200 ')


async def test_a_new_deck_version_is_served_at_once(sites: Sites) -> None:
    (before,) = await exchange(sites.hot, get("/"))
    state = sites.app[STATE]
    state.install(make_artifacts(slides=3, title="Second version"))
    (after,) = await both(sites, get("/"))
    assert b"Second version" in after.body
    assert etag_of(after) != etag_of(before)


# --- what it hands to aiohttp -------------------------------------------------

HAND_OFFS = {
    "head": b"HEAD / HTTP/1.1\r\nHost: deck.test\r\n\r\n",
    "post": b"POST / HTTP/1.1\r\nHost: deck.test\r\nContent-Length: 0\r\n\r\n",
    "other path": get("/deck.json"),
    "unknown path": get("/embed/"),
    "double slash": get("//"),
    "absolute form": get("http://evil.example/"),
    "fragment": get("/#1"),
    "http/1.0": get("/", version="1.0"),
    "no host": b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n",
    "two hosts": get("/", "Host: evil.example"),
    "content-length": get("/", "Content-Length: 0"),
    "chunked": get("/", "Transfer-Encoding: chunked") + b"0\r\n\r\n",
    "upgrade": get("/", "Connection: Upgrade", "Upgrade: websocket"),
    "expect": get("/", "Expect: 100-continue"),
    "two accept-encodings": get("/", "Accept-Encoding: identity", "Accept-Encoding: gzip"),
    "connection token": get("/", "Connection: keep-alive, TE"),
    "space before colon": get("/", "Accept-Encoding : gzip"),
    "obs-fold": get("/", "Accept-Encoding: identity", " gzip"),
    "bare LF": b"GET / HTTP/1.1\nHost: deck.test\n\n" + get("/deck.json"),
    "non-ascii value": get("/", "User-Agent: caf\u00e9".encode("utf-8").decode("latin-1")),
    "nul in value": get("/", "User-Agent: a\x00b"),
}


@pytest.mark.parametrize("raw", HAND_OFFS.values(), ids=HAND_OFFS.keys())
async def test_anything_unusual_gets_aiohttps_answer(sites: Sites, raw: bytes) -> None:
    (answer,) = await both(sites, raw, head=raw.startswith(b"HEAD"))
    assert sites.hand_offs == [raw]  # all of it, untouched
    assert b"evil.example" not in answer.body
    assert all("evil.example" not in value for _, value in answer.headers)


async def test_a_body_is_never_read_as_a_second_request(sites: Sites) -> None:
    smuggled = get("/deck.json")
    raw = get("/", f"Content-Length: {len(smuggled)}") + smuggled + get("/healthz")
    answers = await both(sites, raw, 2)
    assert b"<html" in answers[0].body  # the GET / with its (ignored) body
    assert b'"status":"ok"' in answers[1].body  # then /healthz; /deck.json was a body


async def test_an_endless_head_goes_to_aiohttps_limits(sites: Sites) -> None:
    raw = b"GET / HTTP/1.1\r\nHost: deck.test\r\nX-Pad: " + b"a" * (MAX_HEAD + 10_000)
    (answer,) = await both(sites, raw)
    assert answer.status in {400, 431}


# --- connections --------------------------------------------------------------


async def test_a_client_that_stops_reading_cannot_grow_the_server(sites: Sites) -> None:
    """Pipelined requests from a client that reads nothing for a while: the
    hot path stops answering once the transport's buffer is full, then stops
    reading; when the client reads again, every request gets its answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", sites.hot)
    writer.write(get("/") * 3000)  # asks for 80 MB of answers
    await writer.drain()
    await asyncio.sleep(0.3)
    (connection,) = sites.site._open
    assert connection._transport is not None
    assert connection._transport.get_write_buffer_size() < 1_000_000
    assert connection._reading_paused
    statuses = {(await read_response(reader)).status for _ in range(3000)}
    assert statuses == {200}
    writer.close()


async def test_idle_connections_are_closed(sites: Sites, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hotpath, "IDLE_TIMEOUT", 0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", sites.hot)
    writer.write(get("/"))
    await read_response(reader)
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_shutdown_closes_idle_connections(sites: Sites) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", sites.hot)
    writer.write(get("/embed"))
    await read_response(reader)
    await sites.runner.cleanup()
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
