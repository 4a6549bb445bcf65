"""The live channel: one WebSocket hub per deck process.

Followers (the deck and embed views) receive the presenter's position as soon
as they connect (once a presenter has moved) and whenever it changes; in
watch mode they also receive ``reload`` and ``error`` notices. Only a
connection whose upgrade request carried a valid presenter cookie may move
the deck. A client that sends
something wrong (too large, not JSON, not a move, a move without being the
presenter) gets an ``{"type": "rejected"}`` answer or, for oversize frames,
its own connection closed; other clients never notice. Each broadcast is
serialised once and written to every socket without waiting on slow readers.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

MAX_SLIDE = 100_000
MAX_FRAGMENT = 10_000


@dataclass
class Position:
    slide: int = 1
    fragment: int = 0

    def message(self) -> str:
        return json.dumps({"type": "position", "slide": self.slide, "fragment": self.fragment})


def parse_move(text: str, slides: int) -> Position | str:
    """A presenter's ``{"slide": n, "fragment": k}``, or why it is refused."""
    try:
        data: Any = json.loads(text)
    except ValueError:
        return "not JSON"
    if not isinstance(data, dict):
        return "expected an object"
    slide, fragment = data.get("slide"), data.get("fragment", 0)
    if type(slide) is not int or type(fragment) is not int:
        return "slide and fragment must be integers"
    if not 1 <= slide <= min(slides, MAX_SLIDE) or not 0 <= fragment <= MAX_FRAGMENT:
        return "slide or fragment out of range"
    return Position(slide, fragment)


def _rejected(reason: str) -> str:
    return json.dumps({"type": "rejected", "reason": reason})


class Hub:
    """Who is connected, where the presenter is, and how to tell everyone."""

    def __init__(self, *, max_clients: int, max_message_bytes: int) -> None:
        self.max_clients = max_clients
        self.max_message_bytes = max_message_bytes
        self.position: Position | None = None
        """Where the presenter is; None until a presenter has moved (readers stay put)."""
        self.error: str | None = None
        """The last watch-mode build error, shown to pages that connect meanwhile."""
        self.slides = 1
        self._clients: set[web.WebSocketResponse] = set()
        self._presenters: set[web.WebSocketResponse] = set()
        self._sending: set[asyncio.Future[list[Any]]] = set()

    @property
    def clients(self) -> int:
        return len(self._clients)

    @property
    def presenters(self) -> int:
        return len(self._presenters)

    def full(self) -> bool:
        return len(self._clients) >= self.max_clients

    async def serve(
        self, request: web.Request, *, presenter: bool, headers: Mapping[str, str]
    ) -> web.WebSocketResponse:
        """Run one client's connection until it closes."""
        ws = web.WebSocketResponse(
            heartbeat=30.0, max_msg_size=self.max_message_bytes, compress=False
        )
        ws.headers.update(headers)
        await ws.prepare(request)
        self._clients.add(ws)
        try:
            if self.position is not None:
                await ws.send_str(self.position.message())
            if self.error is not None:
                await ws.send_str(json.dumps({"type": "error", "message": self.error}))
            if presenter:
                self._presenters.add(ws)
                self.broadcast({"type": "presenter", "connected": True})
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await self._receive(ws, msg.data, presenter=presenter)
                elif msg.type is WSMsgType.BINARY:
                    await ws.send_str(_rejected("binary messages are not accepted"))
        finally:
            self._clients.discard(ws)
            if ws in self._presenters:
                self._presenters.discard(ws)
                if not self._presenters:
                    self.broadcast({"type": "presenter", "connected": False})
        return ws

    async def _receive(self, ws: web.WebSocketResponse, text: str, *, presenter: bool) -> None:
        if not presenter:
            await ws.send_str(_rejected("only the presenter can move the deck"))
            return
        move = parse_move(text, self.slides)
        if isinstance(move, str):
            await ws.send_str(_rejected(move))
            return
        self.position = move
        self._send_all(move.message(), exclude=ws)

    def broadcast(self, message: dict[str, Any]) -> None:
        """Send `message` to every client (serialised once)."""
        self._send_all(json.dumps(message))

    def reset(self, slides: int) -> None:
        """A new deck version: keep the position inside it, clear a shown error."""
        self.slides = max(1, slides)
        if self.position is not None and self.position.slide > self.slides:
            self.position = Position(self.slides, 0)
        self.error = None

    def _send_all(self, text: str, exclude: web.WebSocketResponse | None = None) -> None:
        targets = [ws for ws in self._clients if ws is not exclude and not ws.closed]
        if not targets:
            return
        # One task per socket (via gather) so a slow reader never holds up the others.
        task = asyncio.ensure_future(
            asyncio.gather(*(ws.send_str(text) for ws in targets), return_exceptions=True)
        )
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def close_all(self) -> None:
        """Close every connection with "going away" (server shutdown)."""
        clients = tuple(self._clients)
        await asyncio.gather(
            *(ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown") for ws in clients),
            return_exceptions=True,
        )
