"""Running one deck service: bind, banner, access log, signals, shutdown.

`serve_from_args` is what `slidesvc serve` (and ``python -m slidesvc.server``)
calls. It binds the socket first, so ``--port 0`` knows its port before the
default public URL and the banner are made and a port in use is a one-line
`ServeError` (exit code 1). SIGTERM and SIGINT start a graceful shutdown:
live connections are closed with "going away", requests in flight get
`ServerSettings.shutdown_timeout` seconds, PDF workers are stopped. Connections
start on the `hotpath`, which answers the deck and embed pages itself.
The access log is one line per request in the Common Log Format, on stdout.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from slidesvc.errors import ServeError
from slidesvc.server.app import STATE, create_app
from slidesvc.server.config import ServerSettings, artifacts_dir, settings_from_args
from slidesvc.server.hotpath import IDLE_TIMEOUT, HotPathSite
from slidesvc.server.source import DeckSource, FolderSource, Source


def serve_from_args(args: Any, env: Mapping[str, str]) -> int:
    """Serve the deck (or artifact folder) named by `args` until a signal; return 0."""
    settings = settings_from_args(args, env)
    folder, deck = artifacts_dir(args), getattr(args, "source", None)
    if folder is not None and deck:
        raise ServeError("serve: give either DECK.md or --artifacts DIR, not both")
    source: Source
    if folder is not None:
        source = FolderSource(folder)
    elif deck:
        source = DeckSource(Path(deck), watch=settings.watch)
    else:
        raise ServeError("serve: which deck? give DECK.md or --artifacts DIR")
    return serve(settings, source)


def serve(settings: ServerSettings, source: Source, *, out: TextIO | None = None) -> int:
    """Bind, load the deck, print the banner, serve until SIGTERM/SIGINT."""
    sock = bind(settings.host, settings.port)
    settings = settings.with_bound_port(sock.getsockname()[1])
    try:
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            runner.run(_serve(settings, source, sock, out or sys.stdout))
    finally:
        sock.close()
    return 0


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed (faster sockets), else asyncio's.

    ``SLIDESVC_UVLOOP=0`` keeps asyncio's loop even when uvloop is there.
    """
    if os.environ.get("SLIDESVC_UVLOOP", "1").strip().lower() in {"0", "false", "no", "off"}:
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, or a one-line `ServeError` saying why not."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ServeError(f"--host {host!r}: cannot resolve it ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        where = f"{host}:{port}"
        if exc.errno == errno.EADDRINUSE:
            raise ServeError(
                f"{where} is already in use; choose another --port (or --port 0 for a free one)"
            ) from None
        if exc.errno == errno.EACCES:
            raise ServeError(f"{where}: permission denied (ports < 1024 need privileges)") from None
        raise ServeError(f"{where}: cannot listen ({exc.strerror})") from None
    sock.setblocking(False)
    return sock


async def _serve(
    settings: ServerSettings, source: Source, sock: socket.socket, out: TextIO
) -> None:
    app = create_app(settings, source)
    runner = make_runner(app, settings)
    await runner.setup()  # loads (or compiles) the deck: errors surface here
    # Everything made so far lives as long as the process: keep it out of the
    # garbage collector's way so collections stay cheap while serving.
    gc.collect()
    gc.freeze()
    try:
        state = app[STATE]
        log = access_line if settings.access_log else None
        await HotPathSite(runner, sock, lambda: state.site, log).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        deck = state.current.artifacts.deck
        print(banner(settings, deck, source.label), file=out, flush=True)
        await stop.wait()
        print("slidesvc: shutting down", file=sys.stderr, flush=True)
    finally:
        await runner.cleanup()
        _flush_log()


def make_runner(app: web.Application, settings: ServerSettings) -> web.AppRunner:
    """The runner of a deck app: access log, keep-alive and shutdown as served."""
    return web.AppRunner(
        app,
        handle_signals=False,
        shutdown_timeout=settings.shutdown_timeout,
        access_log_class=CommonLogFormat,
        access_log=logging.getLogger("slidesvc.access") if settings.access_log else None,
        keepalive_timeout=IDLE_TIMEOUT,
    )


def banner(settings: ServerSettings, deck: Mapping[str, Any], label: str) -> str:
    """What `slidesvc serve` prints once it listens."""
    public = settings.public_url
    token_note = "  (random token; --presenter-token keeps one)" if settings.token_generated else ""
    lines = [
        f'slidesvc: serving "{deck.get("title", "")}" ({deck.get("slides")} slides) from {label}',
        f"  listening  {settings.host}:{settings.port}",
        f"  deck       {public}",
        f"  embed      {public}embed",
        f"  presenter  {public}presenter#token={settings.presenter_token}{token_note}",
    ]
    if settings.watch:
        lines.append("  watching for changes; open pages reload by themselves")
    lines.append("Press Ctrl+C to stop.")
    return "\n".join(lines)


class CommonLogFormat(AbstractAccessLogger):
    """``host - - [time] "request line" status bytes`` on stdout.

    Lines are collected and written together every 0.2 s: one write per batch
    instead of one per request keeps the log off the hot path.
    """

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time_: float) -> None:
        target = request.raw_path
        if not (target.isascii() and target.isprintable()) or '"' in target or "\\" in target:
            target = target.encode("unicode_escape").decode("ascii").replace('"', '\\"')
        version = request.version
        access_line(
            request.remote or "-",
            f"{request.method} {target} HTTP/{version.major}.{version.minor}",
            response.status,
            response.content_length,
        )


_pending: list[str] = []
"""Access-log lines not written yet (one buffer per process)."""
_stamp: tuple[int, str] = (0, "")


def access_line(remote: str, request_line: str, status: int, size: int | None) -> None:
    """Queue one access-log line; `request_line` must be printable ASCII without ``"``."""
    global _stamp
    now = int(time.time())
    if _stamp[0] != now:
        _stamp = (now, time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)))
    if not _pending:
        asyncio.get_running_loop().call_later(0.2, _flush_log)
    _pending.append(
        f'{remote} - - [{_stamp[1]}] "{request_line}" {status} {"-" if size is None else size}\n'
    )


def _flush_log() -> None:
    lines = _pending
    if lines:
        sys.stdout.write("".join(lines))
        sys.stdout.flush()
        lines.clear()
