"""The front door's forwarding, against a small real upstream server (real sockets)."""

from __future__ import annotations

import asyncio
import gzip
import json
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from slidesvc.publish.proxy import forward_http, forward_websocket, is_websocket, proxy_session

BIG = bytes(range(256)) * 4096  # 1 MiB: takes the streaming path


async def echo(request: web.Request) -> web.Response:
    body = await request.read()
    return web.json_response(
        {"path": request.raw_path, "headers": dict(request.headers), "body": body.decode()},
        headers={"Content-Security-Policy": "frame-ancestors 'none'", "X-Custom": "kept"},
    )


async def redirect(request: web.Request) -> web.Response:
    response = web.Response(status=303, headers={"Location": "/presenter"})
    response.set_cookie("a", "1", path="/")
    response.set_cookie("b", "2", path="/deck/")
    return response


async def big(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/pdf"})
    response.content_length = len(BIG)
    await response.prepare(request)
    if request.method == "HEAD":
        return response
    for i in range(0, len(BIG), 65536):
        await response.write(BIG[i : i + 65536])
    return response


async def dies(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/pdf"})
    response.content_length = len(BIG)
    await response.prepare(request)
    await response.write(BIG[:65536])
    await asyncio.sleep(0.05)
    assert request.transport is not None
    request.transport.abort()  # the deck process dies mid-body
    return response


async def etagged(request: web.Request) -> web.Response:
    if request.headers.get("If-None-Match") == '"v1"':
        return web.Response(status=304, headers={"ETag": '"v1"'})
    return web.Response(text="x" * 100, headers={"ETag": '"v1"'})


async def gzipped(request: web.Request) -> web.Response:
    body = b"hello " * 100
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        return web.Response(body=gzip.compress(body), headers={"Content-Encoding": "gzip"})
    return web.Response(body=body)


async def live(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.send_str(json.dumps({"cookie": request.headers.get("Cookie", "")}))
    async for msg in ws:
        if msg.data == "close":
            await ws.close(code=4001)
        else:
            await ws.send_str("echo:" + msg.data)
    return ws


@pytest.fixture
async def door(aiohttp_server: Any, aiohttp_client: Any) -> Any:
    upstream = web.Application()
    upstream.router.add_route("*", "/echo{tail:.*}", echo)
    upstream.router.add_get("/redirect", redirect)
    upstream.router.add_get("/big", big)
    upstream.router.add_get("/etag", etagged)
    upstream.router.add_get("/live", live)
    upstream.router.add_get("/gzip", gzipped)
    upstream.router.add_get("/dies", dies)
    server = await aiohttp_server(upstream)
    session = proxy_session()

    async def handler(request: web.Request) -> web.StreamResponse:
        url = URL(str(server.make_url("")) + request.raw_path[len("/deck") :], encoded=True)
        if is_websocket(request):
            return await forward_websocket(request, session, url, "/deck")
        return await forward_http(request, session, url, "/deck")

    front = web.Application()
    front.router.add_route("*", "/deck/{tail:.*}", handler)
    client = await aiohttp_client(front)
    yield client
    await session.close()


async def test_client_forwarding_headers_and_hop_by_hop_headers_are_dropped(door: Any) -> None:
    """Spoofed X-Forwarded-* and hop-by-hop headers never reach the deck; the door sets its own."""
    resp = await door.get(
        "/deck/echo/a%2Fb%20c?q=a%26b",
        headers={
            "X-Forwarded-For": "6.6.6.6",
            "X-Forwarded-Host": "evil.example",
            "Forwarded": "for=6.6.6.6",
            "Connection": "keep-alive, X-Secret-Hop",
            "X-Secret-Hop": "1",
            "Proxy-Authorization": "Basic Zm9v",
            "Cookie": "slidesvc_presenter=abc",
        },
    )
    seen = await resp.json()
    headers = {k.lower(): v for k, v in seen["headers"].items()}
    assert seen["path"] == "/echo/a%2Fb%20c?q=a%26b"
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-prefix"] == "/deck"
    assert "x-forwarded-host" not in headers and "forwarded" not in headers
    assert "x-secret-hop" not in headers and "proxy-authorization" not in headers
    assert headers["cookie"] == "slidesvc_presenter=abc"
    assert resp.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
    assert resp.headers["X-Custom"] == "kept"


async def test_request_bodies_are_forwarded(door: Any) -> None:
    """A form POST reaches the deck with its body."""
    resp = await door.post("/deck/echo", data={"token": "s3cret"})
    assert (await resp.json())["body"] == "token=s3cret"


async def test_location_and_cookie_paths_gain_the_prefix_once(door: Any) -> None:
    """Root-relative redirects and cookie paths are mounted under /<slug>, never twice."""
    resp = await door.get("/deck/redirect", allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"] == "/deck/presenter"
    cookies = {c.split("=")[0]: c for c in resp.headers.getall("Set-Cookie")}
    assert "Path=/deck/" in cookies["a"] and "Path=/deck/deck/" not in cookies["a"]
    assert "Path=/deck/;" in cookies["b"] + ";"


async def test_compressed_bodies_pass_through_untouched(door: Any) -> None:
    """The deck's gzip bytes reach a client that asked for gzip; nobody else gets gzip."""
    resp = await door.get("/deck/gzip", headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    assert resp.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(await resp.read()) == b"hello " * 100
    resp = await door.get("/deck/gzip", skip_auto_headers=["Accept-Encoding"])
    assert "Content-Encoding" not in resp.headers and await resp.read() == b"hello " * 100


async def test_large_bodies_stream_through_unchanged(door: Any) -> None:
    """A 1 MiB body arrives byte for byte with its length."""
    resp = await door.get("/deck/big")
    assert resp.status == 200 and resp.headers["Content-Type"] == "application/pdf"
    assert await resp.read() == BIG


async def test_head_and_conditional_requests(door: Any) -> None:
    """HEAD keeps the length without a body; If-None-Match gets the deck's 304."""
    resp = await door.head("/deck/big")
    assert resp.status == 200 and int(resp.headers["Content-Length"]) == len(BIG)
    assert await resp.read() == b""
    resp = await door.get("/deck/etag", headers={"If-None-Match": '"v1"'})
    assert resp.status == 304


async def test_websocket_is_relayed_both_ways_with_close_code(door: Any) -> None:
    """Messages flow both ways, cookies reach the deck, the deck's close code reaches the client."""
    async with door.ws_connect("/deck/live", headers={"Cookie": "slidesvc_presenter=abc"}) as ws:
        hello = await ws.receive_json(timeout=5)
        assert hello == {"cookie": "slidesvc_presenter=abc"}
        await ws.send_str("hi")
        assert (await ws.receive(timeout=5)).data == "echo:hi"
        await ws.send_str("close")
        msg = await ws.receive(timeout=5)
        assert msg.type is aiohttp.WSMsgType.CLOSE
        await asyncio.sleep(0)
    assert ws.close_code == 4001


async def test_client_leaving_mid_download_is_quiet_and_harmless(
    door: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that hangs up during a large body leaves no error and no broken door."""
    reader, writer = await asyncio.open_connection(door.host, door.port)
    writer.write(f"GET /deck/big HTTP/1.1\r\nHost: {door.host}\r\n\r\n".encode())
    await writer.drain()
    assert (await reader.read(65536)).startswith(b"HTTP/1.1 200")
    writer.transport.abort()
    await asyncio.sleep(0.3)
    resp = await door.get("/deck/big")
    assert await resp.read() == BIG
    assert [r for r in caplog.records if r.levelname == "ERROR"] == []


async def test_deck_dying_mid_body_breaks_the_download_not_the_door(
    door: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """When the deck process dies mid-body the client sees a broken body, not a short success."""
    resp = await door.get("/deck/dies")
    assert resp.status == 200
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.read()
    assert await (await door.get("/deck/big")).read() == BIG
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == []
