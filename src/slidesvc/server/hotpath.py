"""The hot path: the deck and embed pages, answered before the framework.

`GET /` and `GET /embed` are nearly all of a deck service's traffic, and their
answers are prepared bytes (`pages.Prepared`). Around each of them aiohttp
spends about 35 µs of Python (request and response objects, routing, header
serialisation): more than the kernel needs to send the 76 KiB page.

`HotPath` is the asyncio protocol of every connection. While the requests on
a connection are plain ``GET``s of those two pages, it answers them with
complete responses kept for the current second (only ``Date`` changes). The
first request that is anything else hands the connection to aiohttp's own
protocol for good, together with every byte not yet answered: another path
or method, HTTP/1.0, a body or a hint of one, an upgrade, a header it does not
fully understand, a head that is not complete within `MAX_HEAD` bytes. The
rule is "when in doubt, hand off": the hot path never answers an error and
never guesses where a request ends. Its answers are the ones
`Prepared.respond` gives through aiohttp, header for header (a test compares
them).
"""

from __future__ import annotations

import asyncio
import email.utils
import re
import socket
import time
from collections.abc import Callable
from typing import Any, NamedTuple, cast

from aiohttp import web

from slidesvc.server.pages import Prepared, Site

AccessLog = Callable[[str, str, int, int], None]
"""Writes one access-log line: ``(remote, request line, status, body size)``."""

MAX_HEAD = 8192
"""A request head this long without its end goes to aiohttp (which limits it)."""
IDLE_TIMEOUT = 75.0
"""Seconds a connection may go without a complete request (nginx's default)."""

_REQUEST_LINE = re.compile(rb"GET (/|/embed)(?:\?[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*)? HTTP/1\.1")
_FIELD = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*((?:[\x21-\x7e][ \t]*)*)")
_BODY_OR_UPGRADE = frozenset({b"content-length", b"transfer-encoding", b"upgrade", b"expect"})
_READ = frozenset({b"host", b"connection", b"accept-encoding", b"if-none-match"})


class Request(NamedTuple):
    """A request the hot path can answer."""

    line: bytes
    """The request line, for the access log (visible ASCII)."""
    path: bytes
    fields: dict[bytes, bytes]
    """The fields the answer depends on, by lower-case name."""
    close: bool
    """The client closes the connection after this answer."""


def parse_head(head: bytes) -> Request | None:
    """The request in `head` (up to, not including, its blank line), or None:
    hand it off.

    It must be RFC 9112 at its plainest: a `_REQUEST_LINE`, then ``name:
    value`` fields of visible ASCII, exactly one ``Host``, no field that
    announces a body or a protocol change, no repeated field among those
    read, ``Connection`` at most ``keep-alive`` or ``close``.
    """
    line, *fields = head.split(b"\r\n")
    match = _REQUEST_LINE.fullmatch(line)
    if match is None:
        return None
    read: dict[bytes, bytes] = {}
    for field in fields:
        parsed = _FIELD.fullmatch(field)
        if parsed is None:
            return None
        name = parsed[1].lower()
        if name in _BODY_OR_UPGRADE:
            return None
        if name in _READ:
            if name in read:
                return None
            read[name] = parsed[2].rstrip(b" \t")
    connection = {token.strip() for token in read.get(b"connection", b"").lower().split(b",")}
    if b"host" not in read or not connection <= {b"", b"keep-alive", b"close"}:
        return None
    return Request(line, match[1], read, b"close" in connection)


class Answers:
    """Complete responses for the current second, shared by all connections."""

    def __init__(self, site: Callable[[], Site | None]) -> None:
        self._site = site
        self._second = 0
        self._date = b""
        self._made: dict[tuple[Prepared, bool, bool, bool], tuple[bytes, int, int]] = {}
        """By page, gzip, 304 and close: at most 8 per page."""

    def page(self, path: bytes) -> Prepared | None:
        site = self._site()
        if site is None:
            return None
        return site.deck_page if path == b"/" else site.embed_page

    def response(self, page: Prepared, request: Request) -> tuple[bytes, int, int]:
        """What `page.respond` answers `request`: the bytes, the status, the body size."""
        now = int(time.time())
        if now != self._second:
            self._second, self._made = now, {}
            self._date = email.utils.formatdate(now, usegmt=True).encode()
        fields = request.fields
        encodings, inm = fields.get(b"accept-encoding"), fields.get(b"if-none-match")
        gzip, not_modified = page.variant(
            encodings.decode() if encodings is not None else None,
            inm.decode() if inm is not None else None,
        )
        key = (page, gzip, not_modified, request.close)  # holds the page: no id reuse
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = self._make(*key)
        return made

    def _make(
        self, page: Prepared, gzip: bool, not_modified: bool, close: bool
    ) -> tuple[bytes, int, int]:
        status, headers, body = page.answer(gzip, not_modified)
        lines = [b"HTTP/1.1 200 OK" if status == 200 else b"HTTP/1.1 304 Not Modified"]
        lines += [f"{name}: {value}".encode() for name, value in headers.items()]
        if status == 200:
            lines.append(b"Content-Length: %d" % len(body))
        lines.append(b"Date: " + self._date)
        if close:
            lines.append(b"Connection: close")
        return b"\r\n".join(lines) + b"\r\n\r\n" + body, status, len(body)


class HotPath(asyncio.Protocol):
    """One connection: hot ``GET``s answered here, the rest by `aiohttp_protocol`."""

    def __init__(
        self,
        aiohttp_protocol: Callable[[], asyncio.Protocol],
        answers: Answers,
        access_log: AccessLog | None,
        open_paths: set[HotPath],
    ) -> None:
        self._aiohttp_protocol = aiohttp_protocol
        self._answers = answers
        self._log = access_log
        self._open = open_paths
        self._buffer = b""
        self._paused = False
        self._reading_paused = False
        self._transport: asyncio.Transport | None = None
        self._remote = "-"
        self._last_request = 0.0
        self._idle_timer: asyncio.TimerHandle | None = None

    # asyncio.Protocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        peer: Any = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and peer:
            self._remote = str(peer[0])
        self._open.add(self)
        loop = asyncio.get_running_loop()
        self._last_request = loop.time()
        self._idle_timer = loop.call_later(IDLE_TIMEOUT, self._check_idle)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._answer_buffered()

    def eof_received(self) -> bool | None:
        return None  # the client is done: close

    def connection_lost(self, exc: BaseException | None) -> None:
        self._stop()

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if self._reading_paused and self._transport is not None:
            self._reading_paused = False
            self._transport.resume_reading()
        self._answer_buffered()

    # answering and handing off ----------------------------------------------

    def close(self) -> None:
        """Close the connection (idle, shutdown, ``Connection: close``); answers
        already written are sent first."""
        if self._transport is not None:
            self._transport.close()
        self._stop()

    def _answer_buffered(self) -> None:
        """Answer the complete requests buffered, until one is for aiohttp or
        the transport asks to wait."""
        buffer, start = self._buffer, 0
        while not self._paused and self._transport is not None:
            end = buffer.find(b"\r\n\r\n", start)
            if end < 0:
                break
            request = parse_head(buffer[start:end])
            page = self._answers.page(request.path) if request else None
            if request is None or page is None:
                self._hand_off(buffer[start:])
                return
            response, status, size = self._answers.response(page, request)
            self._transport.write(response)
            if self._log is not None:
                self._log(self._remote, request.line.decode("ascii"), status, size)
            start = end + 4
            self._last_request = asyncio.get_running_loop().time()
            if request.close:
                self.close()
                return
        self._buffer = rest = buffer[start:]
        if len(rest) <= MAX_HEAD or self._transport is None:
            return
        if not self._paused:
            self._hand_off(rest)  # a head that does not end: aiohttp's limits answer it
        elif not self._reading_paused:
            self._reading_paused = True  # a client that sends and does not read
            self._transport.pause_reading()

    def _hand_off(self, rest: bytes) -> None:
        """aiohttp takes this connection from here, with the bytes not answered."""
        transport = self._transport
        self._stop()
        if transport is None or transport.is_closing():
            return
        protocol = self._aiohttp_protocol()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if self._paused:
            protocol.pause_writing()
        if self._reading_paused:
            transport.resume_reading()
        if rest:
            protocol.data_received(rest)

    def _check_idle(self) -> None:
        loop = asyncio.get_running_loop()
        left = self._last_request + IDLE_TIMEOUT - loop.time()
        if left > 0:
            self._idle_timer = loop.call_later(left, self._check_idle)
        else:
            self.close()

    def _stop(self) -> None:
        self._open.discard(self)
        self._transport = None
        self._buffer = b""
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None


class HotPathSite(web.BaseSite):
    """An aiohttp site on a listening socket whose connections start on a `HotPath`."""

    def __init__(
        self,
        runner: web.AppRunner,
        sock: socket.socket,
        site: Callable[[], Site | None],
        access_log: AccessLog | None,
    ) -> None:
        super().__init__(runner)
        self._sock = sock
        self._answers = Answers(site)
        self._access_log = access_log
        self._open: set[HotPath] = set()

    @property
    def name(self) -> str:
        host, port = self._sock.getsockname()[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        answers, log, open_paths = self._answers, self._access_log, self._open
        self._server = await asyncio.get_running_loop().create_server(
            lambda: HotPath(server, answers, log, open_paths), sock=self._sock
        )

    async def stop(self) -> None:
        await super().stop()
        for connection in list(self._open):
            connection.close()
