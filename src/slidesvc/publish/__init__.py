"""`slidesvc publish`: every deck of a folder, one process per deck, one front door.

The front door (`app.create_app`) serves an index of the decks and forwards
``/<slug>/...`` to that deck's own `slidesvc serve` process, which the
`supervisor` starts on the first request, restarts after a crash (with
back-off), and stops when idle or when the cap on running decks needs room.
Children listen on loopback only and die with the publisher. See
``docs/PUBLISH.md``.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from slidesvc.errors import PublishError
from slidesvc.publish.app import PUBLISHER, Publisher, create_app
from slidesvc.publish.settings import PublishSettings, settings_from_args

__all__ = ["PUBLISHER", "PublishSettings", "Publisher", "create_app", "publish_from_args"]


def publish_from_args(args: Any, environ: Mapping[str, str]) -> int:
    """Run the publisher (or, with ``--status``, print a running one's state)."""
    settings = settings_from_args(args, environ)
    if getattr(args, "status", False):
        return print_status(settings)
    from aiohttp import web

    try:
        sock = socket.create_server((settings.host, settings.port))
    except OSError as exc:
        raise PublishError(
            f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}"
        ) from None
    settings = replace(settings, port=int(sock.getsockname()[1]))
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    print(f"slidesvc publish: decks of {settings.decks_dir} at {settings.base_url}", flush=True)
    web.run_app(
        create_app(settings, announce=_announce),
        sock=sock,
        print=None,
        handle_signals=True,
        access_log=None,
        shutdown_timeout=settings.stop_timeout,
    )
    return 0


def _announce(line: str) -> None:
    print(line, flush=True)


def print_status(settings: PublishSettings) -> int:
    """`slidesvc publish DIR --status`: ask the publisher on this machine."""
    host = settings.host if settings.host not in {"0.0.0.0", "::"} else "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    url = f"http://{host}:{settings.port}/_status"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            data = json.load(resp)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise PublishError(f"no publisher answers at {url}: {exc}") from None
    print(format_status(data))
    return 0


def format_status(data: dict[str, Any]) -> str:
    """The status JSON as a table."""
    pub = data["publisher"]
    lines = [
        f"publisher pid {pub['pid']}, {_mib(pub['rss_bytes'])} RSS, up {pub['uptime_s']:.0f} s, "
        f"{pub['running']}/{pub['max_running']} running, {pub['public_url']}",
        f"{'DECK':24} {'STATE':9} {'PID':>7} {'RSS':>9} {'UPTIME':>8} {'REQUESTS':>8}  NOTE",
    ]
    for d in data["decks"]:
        note = d.get("deck_error") or d.get("last_error") or ""
        lines.append(
            f"{d['slug']:24} {d['state']:9} {d['pid'] or '-':>7} {_mib(d['rss_bytes']):>9} "
            f"{d['uptime_s']:>7.0f}s {d['requests']:>8}  {note[:60]}".rstrip()
        )
    return "\n".join(lines)


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**20:.1f} MiB"
