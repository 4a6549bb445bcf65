"""The live channel: presenter moves, followers follow, bad input stays contained."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType
from server_fixtures import PUBLIC, TOKEN, MemorySource, make_artifacts

from slidesvc.server.app import STATE, create_app
from slidesvc.server.config import ServerSettings
from slidesvc.server.live import Position, parse_move


async def start(aiohttp_client: Any, **kw: Any) -> Any:
    settings = ServerSettings(**{"public_url": PUBLIC, "presenter_token": TOKEN, **kw})
    return await aiohttp_client(create_app(settings, MemorySource(make_artifacts())))


@pytest.fixture
async def client(aiohttp_client: Any) -> Any:
    return await start(aiohttp_client)


async def presenter_socket(client: Any) -> aiohttp.ClientWebSocketResponse:
    """A WebSocket opened with the presenter cookie (set by logging in)."""
    resp = await client.post("/presenter", data={"token": TOKEN}, allow_redirects=False)
    assert resp.status == 303
    return await client.ws_connect("/live")


async def next_of(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    while True:
        msg: dict[str, Any] = await ws.receive_json(timeout=2)
        if msg["type"] == kind:
            return msg


def test_parse_move() -> None:
    """Moves must be objects with in-range integer slide and fragment."""
    assert parse_move('{"slide": 3, "fragment": 1}', 5) == Position(3, 1)
    assert parse_move('{"slide": 2}', 5) == Position(2, 0)
    for bad in ["nope", "[]", '{"slide": "2"}', '{"slide": 9}', '{"slide": 0}',
                '{"slide": 2, "fragment": -1}', '{"slide": true}', '{"slide": 2.0}']:  # fmt: skip
        assert isinstance(parse_move(bad, 5), str), bad


async def test_follower_gets_position_on_connect(client: Any) -> None:
    """Once the presenter has moved, a new connection receives the position first."""
    reader = await client.ws_connect("/live")
    with pytest.raises(asyncio.TimeoutError):  # no presenter yet: readers stay where they are
        await reader.receive_json(timeout=0.3)
    presenter = await presenter_socket(client)
    await presenter.send_str(json.dumps({"slide": 3, "fragment": 1}))
    assert await next_of(reader, "position") == {"type": "position", "slide": 3, "fragment": 1}
    client.session.cookie_jar.clear()
    ws = await client.ws_connect("/live")
    assert await ws.receive_json(timeout=2) == {"type": "position", "slide": 3, "fragment": 1}
    await ws.close()


async def test_upgrade_response_has_security_headers(client: Any) -> None:
    """The 101 answer carries the security headers too."""
    ws = await client.ws_connect("/live")
    assert ws._response.headers["X-Content-Type-Options"] == "nosniff"
    await ws.close()


async def test_presenter_moves_reach_followers(client: Any) -> None:
    """A presenter move is broadcast to followers and remembered for newcomers."""
    followers = [await client.ws_connect("/live") for _ in range(3)]
    presenter = await presenter_socket(client)
    for ws in followers:
        assert await next_of(ws, "presenter") == {"type": "presenter", "connected": True}
    await presenter.send_str(json.dumps({"slide": 4, "fragment": 2}))
    for ws in followers:
        assert await next_of(ws, "position") == {"type": "position", "slide": 4, "fragment": 2}
    client.session.cookie_jar.clear()  # a newcomer without the presenter cookie
    late = await client.ws_connect("/live")
    assert await late.receive_json(timeout=2) == {"type": "position", "slide": 4, "fragment": 2}
    await presenter.close()
    for ws in followers:
        assert await next_of(ws, "presenter") == {"type": "presenter", "connected": False}


async def test_follower_moves_are_rejected(client: Any) -> None:
    """A client without the presenter cookie cannot move the deck, and stays connected."""
    follower = await client.ws_connect("/live")
    other = await client.ws_connect("/live")  # a bystander that must stay connected
    await follower.send_str(json.dumps({"slide": 3, "fragment": 0}))
    answer = await follower.receive_json(timeout=2)
    assert answer["type"] == "rejected"
    assert "presenter" in answer["reason"]
    assert not follower.closed
    assert client.app[STATE].hub.position is None
    assert not other.closed


async def test_forged_cookie_is_not_a_presenter(client: Any) -> None:
    """A cookie holding the token itself (or anything else) is not a session."""
    ws = await client.ws_connect("/live", headers={"Cookie": f"slidesvc_presenter={TOKEN}"})
    await ws.send_str(json.dumps({"slide": 3}))
    assert (await ws.receive_json(timeout=2))["type"] == "rejected"


@pytest.mark.parametrize(
    "message", ["{not json", "[1, 2]", '{"slide": "3"}', '{"slide": 99}', '"x"', "null"]
)
async def test_bad_presenter_messages_are_rejected(client: Any, message: str) -> None:
    """Malformed moves are answered with "rejected"; nobody is disconnected."""
    follower = await client.ws_connect("/live")
    presenter = await presenter_socket(client)
    await presenter.send_str(message)
    await next_of(presenter, "rejected")
    await presenter.send_str(json.dumps({"slide": 2, "fragment": 0}))
    assert (await next_of(follower, "position"))["slide"] == 2


async def test_oversized_message_closes_only_its_sender(client: Any) -> None:
    """A frame over the size limit closes that socket (1009); others keep working."""
    follower = await client.ws_connect("/live")
    presenter = await presenter_socket(client)
    client.session.cookie_jar.clear()
    bully = await client.ws_connect("/live")
    await bully.send_str("x" * 10_000)
    msg = await bully.receive(timeout=2)
    assert msg.type in {WSMsgType.CLOSE, WSMsgType.CLOSED}
    assert bully.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    await presenter.send_str(json.dumps({"slide": 5, "fragment": 0}))
    assert (await next_of(follower, "position"))["slide"] == 5


async def test_binary_messages_are_rejected(client: Any) -> None:
    """Binary frames are refused without closing."""
    ws = await client.ws_connect("/live")
    await ws.send_bytes(b"\x00\x01")
    assert (await ws.receive_json(timeout=2))["type"] == "rejected"


async def test_connection_cap(aiohttp_client: Any) -> None:
    """Past the cap new connections get 503; after one leaves, there is room again."""
    client = await start(aiohttp_client, max_live_clients=3)
    sockets = [await client.ws_connect("/live") for _ in range(3)]
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect("/live")
    assert info.value.status == 503
    await sockets[0].close()
    async with asyncio.timeout(5):  # its slot frees once the server's handler returns
        while True:
            try:
                extra = await client.ws_connect("/live")
                break
            except aiohttp.WSServerHandshakeError as exc:
                assert exc.status == 503
                await asyncio.sleep(0.01)
    assert not extra.closed


async def test_many_followers(client: Any) -> None:
    """300 followers all receive a move."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        url = client.make_url("/live")
        followers = [await session.ws_connect(url) for _ in range(300)]
        presenter = await presenter_socket(client)
        await presenter.send_str(json.dumps({"slide": 3, "fragment": 1}))
        got = await asyncio.gather(*(next_of(ws, "position") for ws in followers))
        assert all(m == {"type": "position", "slide": 3, "fragment": 1} for m in got)
        assert client.app[STATE].hub.clients == 301
        for ws in followers:
            await ws.close()


async def test_shutdown_says_going_away(client: Any) -> None:
    """On shutdown every socket is closed with 1001 (going away)."""
    ws = await client.ws_connect("/live")
    shutdown = asyncio.ensure_future(client.app.shutdown())
    msg = await ws.receive(timeout=2)
    assert msg.type is WSMsgType.CLOSE
    assert msg.data == aiohttp.WSCloseCode.GOING_AWAY
    await asyncio.wait_for(shutdown, 2)
