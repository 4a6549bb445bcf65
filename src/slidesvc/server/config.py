"""Settings of one deck service, and their conversion from arguments and environment.

Every knob of `slidesvc serve` lives in the frozen `ServerSettings`; the
command line wins over the environment (`SLIDESVC_*`, `PORT`), which wins
over the defaults. All conversion and validation happens here, once, at
start-up: a bad value is a `ServeError` naming the option and the value.
Origins allowed to frame the embed view are checked strictly, because they
end up verbatim in a ``Content-Security-Policy`` header.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from slidesvc.errors import ServeError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
ANY_ORIGIN = "*"
_FALSE = {"0", "false", "no", "off"}

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOST_RE = re.compile(rf"^(\*\.)?{_LABEL}(\.{_LABEL})*$")
_ORIGIN_RE = re.compile(r"^(https?)://(\[[0-9a-f:.]+\]|[^/:\[\]]+)(?::(\d{1,5}))?$")


@dataclass(frozen=True)
class ServerSettings:
    """How one deck process listens, what it calls itself, and who may frame it."""

    host: str = DEFAULT_HOST
    """Interface to bind."""
    port: int = DEFAULT_PORT
    """TCP port; 0 picks a free one."""
    public_url: str = ""
    """Public base URL ending in ``/`` (may carry a path prefix); used for oEmbed,
    discovery links and deck.json. Empty until `with_bound_port` fills the default."""
    embed_origins: tuple[str, ...] = ()
    """Origins from ``--embed-origin`` / ``SLIDESVC_EMBED_ORIGINS`` (validated)."""
    presenter_token: str = field(default="", repr=False)
    """Secret for the presenter view; random when not given."""
    token_generated: bool = False
    """True when the token was made up at start-up (the banner says so)."""
    watch: bool = False
    """Rebuild and reload open pages when the deck's files change."""
    lazy_pdf: bool = False
    """Deck mode: render the PDF on its first download, not right after start-up
    (the publisher asks for this, so that starting many decks costs no renders)."""
    access_log: bool = True
    """Write one common-log-format line per request to stdout."""
    max_live_clients: int = 2000
    """Cap on simultaneous /live connections in this process."""
    max_message_bytes: int = 256
    """Largest live-channel message accepted from a client."""
    shutdown_timeout: float = 5.0
    """Seconds granted to in-flight requests on SIGTERM/SIGINT."""

    def with_bound_port(self, port: int) -> ServerSettings:
        """The settings once the socket is bound: real port, default public URL."""
        public = self.public_url or f"http://{_url_host(self.host)}:{port}/"
        return replace(self, port=port, public_url=public)


def settings_from_args(args: Any, env: Mapping[str, str]) -> ServerSettings:
    """Build settings from parsed `serve` arguments and the environment."""
    host = getattr(args, "host", None) or env.get("SLIDESVC_HOST") or DEFAULT_HOST
    port = port_setting(getattr(args, "port", None), env)
    public = getattr(args, "public_url", None) or env.get("SLIDESVC_PUBLIC_URL") or ""
    origins = list(getattr(args, "embed_origin", None) or [])
    origins += env.get("SLIDESVC_EMBED_ORIGINS", "").replace(",", " ").split()
    token = getattr(args, "presenter_token", None) or env.get("SLIDESVC_PRESENTER_TOKEN") or ""
    access_log = env.get("SLIDESVC_ACCESS_LOG", "1").strip().lower() not in _FALSE
    if token and len(token) < 8:
        raise ServeError("--presenter-token: use at least 8 characters (or omit it for a random)")
    return ServerSettings(
        host=host,
        port=port,
        public_url=normalize_public_url(public) if public else "",
        embed_origins=validate_origins(origins, source="--embed-origin"),
        presenter_token=token or secrets.token_urlsafe(24),
        token_generated=not token,
        watch=bool(getattr(args, "watch", False)),
        lazy_pdf=bool(getattr(args, "lazy_pdf", False)),
        access_log=access_log,
    )


def port_setting(arg: int | None, env: Mapping[str, str]) -> int:
    """The port from ``--port``, else ``SLIDESVC_PORT``, else ``PORT`` (what
    platforms such as Knative and Cloud Run set), else the default."""
    if arg is not None:
        value, name = str(arg), "--port"
    elif "SLIDESVC_PORT" in env:
        value, name = env["SLIDESVC_PORT"], "SLIDESVC_PORT"
    elif "PORT" in env:
        value, name = env["PORT"], "PORT"
    else:
        return DEFAULT_PORT
    value = value.strip()
    if not value.isdigit() or int(value) > 65535:
        raise ServeError(f"{name}: {value!r} is not a port number (0-65535)")
    return int(value)


def normalize_public_url(url: str) -> str:
    """Check a public base URL and return it ending in ``/``."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ServeError(f"--public-url: {url!r} is not a URL ({exc})") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ServeError(f"--public-url: {url!r} must be an http:// or https:// URL with a host")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ServeError(f"--public-url: {url!r} must not carry a query, fragment or user")
    if any(ch in url for ch in "\"'<> \t\r\n\\"):
        raise ServeError(f"--public-url: {url!r} contains characters not allowed in a URL")
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return f"{parts.scheme}://{parts.netloc.lower()}{path}"


def validate_origin(origin: str, *, source: str) -> str:
    """Return `origin` normalised (``scheme://host[:port]``), or raise `ServeError`.

    Accepted: ``*`` (any origin), ``http(s)://host``, with an optional port and an
    optional leading ``*.`` label (any subdomain). One trailing ``/`` is dropped.
    Anything else (paths, wildcards elsewhere, spaces, quotes, ``;``, CR/LF) is refused
    because it would change the meaning of the CSP header it goes into.
    """
    text = origin.lower()
    if text == ANY_ORIGIN:
        return ANY_ORIGIN
    if text.endswith("/") and not text.endswith("//"):
        text = text[:-1]
    match = _ORIGIN_RE.match(text)
    host = match.group(2) if match else ""
    if match is None or not (_HOST_RE.match(host) or _is_ip(host)):
        raise ServeError(
            f"{source}: {origin!r} is not an origin; use scheme://host[:port], "
            "e.g. https://wiki.example.org or https://*.example.org"
        )
    port = match.group(3)
    if port is not None and not 0 < int(port) <= 65535:
        raise ServeError(f"{source}: {origin!r} has a bad port")
    return text


def validate_origins(origins: Iterable[object], *, source: str) -> tuple[str, ...]:
    """Validate a list of origins, dropping duplicates but keeping order."""
    seen: dict[str, None] = {}
    for origin in origins:
        if not isinstance(origin, str):
            raise ServeError(f"{source}: {origin!r} is not an origin string")
        seen[validate_origin(origin, source=source)] = None
    return tuple(seen)


def frame_ancestors(origins: Iterable[str]) -> str:
    """The CSP ``frame-ancestors`` value for the embed view (default: any origin)."""
    allowed = tuple(origins)
    if not allowed or ANY_ORIGIN in allowed:
        return ANY_ORIGIN
    return " ".join(allowed)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def artifacts_dir(args: Any) -> Path | None:
    """The ``--artifacts DIR`` argument, if any."""
    value = getattr(args, "artifacts", None)
    return Path(value) if value else None
