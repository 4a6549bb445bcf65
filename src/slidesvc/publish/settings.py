"""Settings of the publisher, and their conversion from arguments and environment.

The command line wins over the environment (``SLIDESVC_*``, ``PORT``), which
wins over the defaults; every value is checked once, here, and a bad one is a
`PublishError` naming the option and the value.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slidesvc.errors import PublishError, ServeError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_IDLE_TIMEOUT = 600.0
DEFAULT_MAX_RUNNING = 32
PUBLISHER_PID_ENV = "SLIDESVC_PUBLISHER_PID"
"""Tells a deck process which PID its publisher has (see `slidesvc.publish.child`)."""


def default_child_command() -> tuple[str, ...]:
    """How a deck process is started: `slidesvc serve` tied to the publisher's life."""
    return (sys.executable, "-m", "slidesvc.publish.child")


@dataclass(frozen=True)
class PublishSettings:
    """Everything the publisher needs to know, validated."""

    decks_dir: Path
    """The folder whose ``*.md`` files are the decks."""
    host: str = DEFAULT_HOST
    """Interface of the front door (deck processes always listen on 127.0.0.1)."""
    port: int = DEFAULT_PORT
    """Port of the front door."""
    public_url: str = ""
    """Public base URL ending in ``/``; deck ``s`` lives at ``public_url + "s/"``.
    Empty means ``http://host:port/``."""
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    """Seconds without requests (and without open live connections) before a deck
    process is stopped; 0 keeps processes up."""
    max_running: int = DEFAULT_MAX_RUNNING
    """Cap on deck processes running at once; the least recently used one makes room."""
    preload: bool = False
    """Start every deck at start-up instead of on its first request."""
    presenter_token: str = field(default="", repr=False)
    """One presenter token for every deck; empty means a random one per deck."""
    poll_interval: float = 1.0
    """Seconds between two looks at the folder for added, removed or edited decks."""
    start_timeout: float = 60.0
    """Seconds a deck process gets to answer its health check."""
    stop_timeout: float = 5.0
    """Seconds a deck process gets to finish after SIGTERM before SIGKILL."""
    child_command: tuple[str, ...] = field(default_factory=default_child_command)
    """Command (before the deck and `serve` options) that starts a deck process."""

    @property
    def base_url(self) -> str:
        """`public_url`, or the front door's own address."""
        if self.public_url:
            return self.public_url
        host = f"[{self.host}]" if ":" in self.host else self.host
        if host in {"0.0.0.0", "[::]"}:
            host = "127.0.0.1"
        return f"http://{host}:{self.port}/"


def settings_from_args(args: Any, env: Mapping[str, str]) -> PublishSettings:
    """Build settings from parsed `publish` arguments and the environment."""
    folder = Path(args.source)
    if not folder.is_dir():
        raise PublishError(f"{folder}: not a folder of decks")
    host = getattr(args, "host", None) or env.get("SLIDESVC_HOST") or DEFAULT_HOST
    port = _port(getattr(args, "port", None), env)
    public = getattr(args, "public_url", None) or env.get("SLIDESVC_PUBLIC_URL") or ""
    idle = getattr(args, "idle_timeout", None)
    idle = DEFAULT_IDLE_TIMEOUT if idle is None else float(idle)
    if idle < 0:
        raise PublishError(f"--idle-timeout: {idle:g} must be 0 (never) or a number of seconds")
    cap = getattr(args, "max_running", None)
    cap = DEFAULT_MAX_RUNNING if cap is None else int(cap)
    if cap < 1:
        raise PublishError(f"--max-running: {cap} must be at least 1")
    token = env.get("SLIDESVC_PRESENTER_TOKEN", "")
    if token and len(token) < 8:
        raise PublishError("SLIDESVC_PRESENTER_TOKEN: use at least 8 characters (or unset it)")
    return PublishSettings(
        decks_dir=folder.resolve(),
        host=host,
        port=port,
        public_url=_public_url(public) if public else "",
        idle_timeout=idle,
        max_running=cap,
        preload=bool(getattr(args, "preload", False)),
        presenter_token=token,
    )


def _port(arg: int | None, env: Mapping[str, str]) -> int:
    from slidesvc.server.config import port_setting

    try:
        return port_setting(arg, env)
    except ServeError as exc:
        raise PublishError(str(exc)) from None


def _public_url(url: str) -> str:
    from slidesvc.server.config import normalize_public_url

    try:
        return normalize_public_url(url)
    except ServeError as exc:
        raise PublishError(str(exc)) from None
