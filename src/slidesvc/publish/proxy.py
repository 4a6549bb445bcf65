"""Forwarding requests from the front door to a deck process, and back.

HTTP bodies stream in both directions (a PDF is never held twice), small
answers are passed on in one piece (the common case, and the fastest);
WebSockets (`/live`) are relayed message by message both ways. Hop-by-hop
headers are dropped, as are any ``X-Forwarded-*`` / ``Forwarded`` headers the
client sent (the front door sets its own). The child's own headers,
security headers included, pass through untouched except where a path must
gain the deck's ``/<slug>`` prefix: ``Location`` and cookie paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Iterable

import aiohttp
from aiohttp import WSMsgType, hdrs, web
from multidict import CIMultiDict
from yarl import URL

log = logging.getLogger("slidesvc.publish")

HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
        "Proxy-Connection", "TE", "Trailer", "Trailers", "Transfer-Encoding", "Upgrade",
    )
)  # fmt: skip
_CLIENT_ONLY = frozenset({"host", "forwarded", "x-real-ip"})
_WS_HANDSHAKE = frozenset(
    {"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
     "sec-websocket-protocol", "sec-websocket-accept"}
)  # fmt: skip
_SMALL_BODY = 256 * 1024
_COOKIE_PATH = re.compile(r"(;\s*path=)(/[^;]*)", re.IGNORECASE)


def proxy_session() -> aiohttp.ClientSession:
    """The one client session of a publisher: keep-alive pool to every deck process."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=5),
        auto_decompress=False,  # bodies pass through as the deck compressed them
        # Cookies belong to the browsers, never to the shared session (a stored
        # presenter cookie would make every later visitor a presenter). The default
        # jar happens to ignore cookies of IP hosts; say it outright instead.
        cookie_jar=aiohttp.DummyCookieJar(),
        skip_auto_headers=(hdrs.USER_AGENT, hdrs.ACCEPT, hdrs.ACCEPT_ENCODING),
    )


def _connection_tokens(headers: CIMultiDict[str] | web.BaseRequest | object) -> set[str]:
    values: Iterable[str] = getattr(headers, "getall")(hdrs.CONNECTION, ())  # noqa: B009
    return {token.strip().lower() for value in values for token in value.split(",")}


def upstream_headers(
    request: web.Request, prefix: str, *, websocket: bool = False
) -> CIMultiDict[str]:
    """The client's headers as the deck process should see them."""
    drop = HOP_BY_HOP | _CLIENT_ONLY | _connection_tokens(request.headers)
    if websocket:
        drop |= _WS_HANDSHAKE
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in request.headers.items():
        low = name.lower()
        if low in drop or low.startswith("x-forwarded-"):
            continue
        out.add(name, value)
    if request.remote:
        out["X-Forwarded-For"] = request.remote
    out["X-Forwarded-Proto"] = request.scheme
    out["X-Forwarded-Prefix"] = prefix
    return out


def downstream_headers(upstream: aiohttp.ClientResponse, prefix: str) -> CIMultiDict[str]:
    """The deck process's headers as the client should see them."""
    drop = HOP_BY_HOP | _connection_tokens(upstream.headers)
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in upstream.headers.items():
        low = name.lower()
        if low in drop:
            continue
        if low == "location" and _needs_prefix(value, prefix):
            value = prefix + value
        elif low == "set-cookie":
            value = _COOKIE_PATH.sub(
                lambda m: (
                    m.group(1) + (prefix if _needs_prefix(m.group(2), prefix) else "") + m.group(2)
                ),
                value,
            )
        out.add(name, value)
    return out


def _needs_prefix(path: str, prefix: str) -> bool:
    """True for a root-relative path the deck made without knowing its mount point."""
    if not path.startswith("/") or path.startswith("//"):
        return False
    return not (path == prefix or path.startswith(prefix + "/"))


async def forward_http(
    request: web.Request, session: aiohttp.ClientSession, url: URL, prefix: str
) -> web.StreamResponse:
    """Send `request` to `url` (a deck process) and relay its answer."""
    body = request.content if request.body_exists else None
    async with session.request(
        request.method,
        url,
        headers=upstream_headers(request, prefix),
        data=body,
        allow_redirects=False,
    ) as upstream:
        headers = downstream_headers(upstream, prefix)
        length = upstream.content_length
        if request.method == hdrs.METH_HEAD or upstream.status in (204, 304):
            response = web.StreamResponse(
                status=upstream.status, reason=upstream.reason, headers=headers
            )
            await response.prepare(request)
            await response.write_eof()
            return response
        if length is not None and length <= _SMALL_BODY:
            headers.popall(hdrs.CONTENT_LENGTH, None)
            return web.Response(
                status=upstream.status,
                reason=upstream.reason,
                headers=headers,
                body=await upstream.read(),
            )
        response = web.StreamResponse(
            status=upstream.status, reason=upstream.reason, headers=headers
        )
        await response.prepare(request)
        try:
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
            # The deck process went away mid-body. Closing the client's connection
            # is the only honest answer now: a proper ending would fake a success.
            log.warning("%s %s: the deck stopped sending (%s)", request.method, request.path, exc)
            if request.transport is not None:
                request.transport.abort()
            return response
        await response.write_eof()
        return response


def is_websocket(request: web.Request) -> bool:
    return (
        request.method == hdrs.METH_GET
        and request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"
        and "upgrade" in _connection_tokens(request.headers)
    )


async def forward_websocket(
    request: web.Request,
    session: aiohttp.ClientSession,
    url: URL,
    prefix: str,
    *,
    registry: set[web.WebSocketResponse] | None = None,
) -> web.StreamResponse:
    """Relay a WebSocket between the client and a deck process, both ways."""
    protocols = [
        p.strip()
        for p in request.headers.get(hdrs.SEC_WEBSOCKET_PROTOCOL, "").split(",")
        if p.strip()
    ]
    try:
        upstream = await session.ws_connect(
            url,
            headers=upstream_headers(request, prefix, websocket=True),
            protocols=protocols,
            autoclose=False,
            max_msg_size=1 << 20,
        )
    except aiohttp.WSServerHandshakeError as exc:
        # The deck refused (no token, too many clients, ...): pass its status on.
        raise _status_error(exc.status) from None
    async with upstream:
        downstream = web.WebSocketResponse(
            protocols=[upstream.protocol] if upstream.protocol else (),
            autoclose=False,
            max_msg_size=1 << 20,
        )
        await downstream.prepare(request)
        if registry is not None:
            registry.add(downstream)
        to_deck = asyncio.create_task(_relay(downstream, upstream))
        to_client = asyncio.create_task(_relay(upstream, downstream))
        try:
            done, _ = await asyncio.wait({to_deck, to_client}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if registry is not None:
                registry.discard(downstream)
            for task in (to_deck, to_client):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(to_deck, to_client, return_exceptions=True)
        code = upstream.close_code if to_client in done else downstream.close_code
        await upstream.close(code=code or 1000)
        await downstream.close(code=code or 1000)
        return downstream


async def _relay(
    src: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
    dst: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
) -> None:
    async for msg in src:
        if msg.type is WSMsgType.TEXT:
            await dst.send_str(msg.data)
        elif msg.type is WSMsgType.BINARY:
            await dst.send_bytes(msg.data)
        elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.ERROR):
            return


def _status_error(status: int) -> web.HTTPException:
    cls = {
        401: web.HTTPUnauthorized,
        403: web.HTTPForbidden,
        404: web.HTTPNotFound,
        429: web.HTTPTooManyRequests,
        503: web.HTTPServiceUnavailable,
    }.get(status)
    if cls is not None:
        return cls(text=f"the deck refused the live connection ({status})\n")
    return web.HTTPBadGateway(text=f"the deck refused the live connection ({status})\n")
