"""Everything a deck service answers, prepared once per deck version.

`Site.build` turns one `Artifacts` (plus the settings) into ready-made
responses: the deck, embed and presenter pages with their head hooks filled,
deck.json, the health document and the thumbnail. Each `Prepared` body is
gzip-compressed once and carries strong ETags (a hash of the exact bytes of
each representation), so a request costs a dictionary lookup and a
`web.Response`, never a render. Security headers are part of the prepared
header sets; `app.guard` adds them only to responses made elsewhere.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import html
import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web

from slidesvc.artifacts import Artifacts, inject_head, page_csp, set_mode
from slidesvc.server.config import ServerSettings, frame_ancestors, validate_origins

REFERRER_POLICY = "no-referrer"
BASE_HEADERS: Mapping[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": REFERRER_POLICY,
    "Server": "slidesvc",
}
NO_FRAMES = {"X-Frame-Options": "SAMEORIGIN"}
DATA_CSP = "default-src 'none'; frame-ancestors 'self'"
"""CSP for everything that is not one of the deck's HTML pages."""
REVALIDATE = "no-cache"
"""Browsers may keep a copy but must revalidate it (cheap: ETag → 304)."""
_GZIP_MIN = 512


def _etag(data: bytes, variant: str) -> str:
    return '"' + hashlib.sha256(data).hexdigest()[:24] + "-" + variant + '"'


@functools.lru_cache(maxsize=64)  # browsers send a handful of distinct values
def accepts_gzip(header: str) -> bool:
    """Whether an ``Accept-Encoding`` value allows gzip (``q=0`` refuses it)."""
    for item in header.lower().split(","):
        name, _, params = item.partition(";")
        if name.strip() in {"gzip", "*"}:
            q = params.replace(" ", "")
            return not (q.startswith("q=0") and q.rstrip("0.") in {"q=", "q"})
    return False


def etag_matches(header: str, etag: str) -> bool:
    """``If-None-Match`` semantics: weak comparison, ``*`` matches anything."""
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


class Prepared:
    """One resource's bytes, its gzip form, ETags and complete header sets."""

    __slots__ = ("body", "gz_body", "gz_headers", "headers", "not_modified_headers")

    def __init__(self, body: bytes, headers: Mapping[str, str], *, compress: bool = True) -> None:
        self.body = body
        etag = _etag(body, "id")
        common = {**BASE_HEADERS, **headers}
        self.headers = {**common, "ETag": etag}
        self.gz_body: bytes | None = None
        self.gz_headers: dict[str, str] = {}
        if compress and len(body) >= _GZIP_MIN:
            self.gz_body = gzip.compress(body, compresslevel=9, mtime=0)
            self.headers["Vary"] = "Accept-Encoding"
            self.gz_headers = {
                **self.headers,
                "Content-Encoding": "gzip",
                "ETag": _etag(self.gz_body, "gz"),
            }
        self.not_modified_headers = {
            k: v for k, v in self.headers.items() if k in {"Cache-Control", "Vary", *BASE_HEADERS}
        }

    def respond(self, request: web.Request) -> web.Response:
        """The response for `request`: 304, gzip or identity."""
        request_headers = request.headers
        variant = self.variant(
            request_headers.get("Accept-Encoding"), request_headers.get("If-None-Match")
        )
        status, headers, body = self.answer(*variant)
        return web.Response(status=status, headers=headers, body=body if status == 200 else None)

    def variant(self, accept_encoding: str | None, if_none_match: str | None) -> tuple[bool, bool]:
        """Whether a request with these two headers gets gzip, and a 304."""
        gzip = bool(accept_encoding) and self.gz_body is not None and accepts_gzip(accept_encoding)
        etag = (self.gz_headers if gzip else self.headers)["ETag"]
        return gzip, if_none_match is not None and etag_matches(if_none_match, etag)

    def answer(self, gzip: bool, not_modified: bool) -> tuple[int, Mapping[str, str], bytes]:
        """Status, headers and body of one `variant`."""
        body, headers = (
            (self.gz_body or b"", self.gz_headers) if gzip else (self.body, self.headers)
        )
        if not_modified:
            return 304, {**self.not_modified_headers, "ETag": headers["ETag"]}, b""
        return 200, headers, body


def html_headers(csp: str, ancestors: str, *, framable: bool = False) -> dict[str, str]:
    """Headers of an HTML page: its own CSP plus ``frame-ancestors``."""
    headers = {
        "Content-Type": "text/html; charset=utf-8",
        "Cache-Control": REVALIDATE,
        "Content-Security-Policy": f"{csp.rstrip('; ')}; frame-ancestors {ancestors}",
    }
    if not framable:
        headers.update(NO_FRAMES)
    return headers


def data_headers(
    content_type: str, *, cache: str = REVALIDATE, cors: bool = False
) -> dict[str, str]:
    headers = {
        "Content-Type": content_type,
        "Cache-Control": cache,
        "Content-Security-Policy": DATA_CSP,
        **NO_FRAMES,
    }
    if cors:  # public, credential-free documents other sites' scripts may read
        headers["Access-Control-Allow-Origin"] = "*"
    return headers


def json_bytes(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def png_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG's IHDR chunk, or None if it is not a PNG."""
    if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def title_card_svg(title: str, width: int, height: int) -> bytes:
    """A plain title card, the thumbnail when no PNG of slide 1 was built."""
    w, h = 480, max(1, round(480 * height / max(width, 1)))
    text = html.escape(title[:60])
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}"><rect width="100%" height="100%" fill="#1f2937"/>'
        f'<text x="50%" y="50%" fill="#f9fafb" font-family="sans-serif" font-size="24" '
        f'text-anchor="middle" dominant-baseline="middle">{text}</text></svg>'
    ).encode()


@dataclass(frozen=True)
class Thumbnail:
    path: str
    """Route of the image, relative to the public URL."""
    width: int
    height: int


@dataclass(frozen=True)
class Site:
    """The prepared responses of one deck version."""

    artifacts: Artifacts
    settings: ServerSettings
    deck_page: Prepared
    embed_page: Prepared
    presenter_page: Prepared | None
    deck_json: Prepared
    health: Prepared
    thumbnail: Thumbnail
    thumbnail_body: Prepared
    embed_origins: tuple[str, ...]

    @property
    def version(self) -> str:
        return self.artifacts.version

    @property
    def slides(self) -> int:
        return int(self.artifacts.deck.get("slides") or 1)

    @property
    def size(self) -> tuple[int, int]:
        deck = self.artifacts.deck
        return int(deck.get("width") or 1280), int(deck.get("height") or 720)

    @classmethod
    def build(cls, artifacts: Artifacts, settings: ServerSettings) -> Site:
        """Prepare every response; raises `ServeError` on bad front-matter origins."""
        deck = artifacts.deck
        public = settings.public_url
        origins = validate_origins(
            [*deck.get("embed_origins", ()), *settings.embed_origins], source="embed.origins"
        )
        head = _head_extras(public, str(deck.get("title", "")))
        index = inject_head(artifacts.index_html, head)
        csp = page_csp(index)
        deck_page = Prepared(set_mode(index, "deck").encode(), html_headers(csp, "'self'"))
        embed_page = Prepared(
            set_mode(index, "embed").encode(),
            html_headers(csp, frame_ancestors(origins), framable=True),
        )
        presenter = None
        if artifacts.presenter_html is not None:
            text = inject_head(artifacts.presenter_html, _LIVE_META)
            presenter = Prepared(
                set_mode(text, "presenter").encode(),
                {**html_headers(page_csp(text), "'self'"), "Cache-Control": "no-store"},
            )
        width, height = int(deck.get("width") or 1280), int(deck.get("height") or 720)
        if artifacts.thumbnail_png is not None and (size := png_size(artifacts.thumbnail_png)):
            thumb = Thumbnail("thumbnail.png", *size)
            thumb_body = Prepared(
                artifacts.thumbnail_png, data_headers("image/png"), compress=False
            )
        else:
            svg = title_card_svg(str(deck.get("title", "")), width, height)
            thumb = Thumbnail("thumbnail.svg", 480, max(1, round(480 * height / max(width, 1))))
            thumb_body = Prepared(svg, data_headers("image/svg+xml"))
        describe = {
            key: deck.get(key)
            for key in ("slug", "title", "author", "date", "description", "slides", "outline")
        }
        describe.update(
            aspect=deck.get("aspect"),
            width=width,
            height=height,
            version=artifacts.version,
            links={
                "deck": public,
                "embed": public + "embed",
                "pdf": public + "deck.pdf",
                "oembed": public + "oembed?url=" + quote(public, safe="") + "&format=json",
                "thumbnail": public + thumb.path,
                "live": public + "live",
            },
        )
        health = {
            "status": "ok",
            "deck": artifacts.slug,
            "slides": deck.get("slides"),
            "version": artifacts.version,
        }
        return cls(
            artifacts=artifacts,
            settings=settings,
            deck_page=deck_page,
            embed_page=embed_page,
            presenter_page=presenter,
            deck_json=Prepared(json_bytes(describe), data_headers("application/json", cors=True)),
            health=Prepared(json_bytes(health), data_headers("application/json", cache="no-store")),
            thumbnail=thumb,
            thumbnail_body=thumb_body,
            embed_origins=origins,
        )


_LIVE_META = '<meta name="slidesvc:live" content="live">\n'


def _head_extras(public: str, title: str) -> str:
    """Discovery links (absolute, from the configured public URL) and the live channel."""
    target = quote(public, safe="")
    attr = html.escape(title, quote=True)
    links = [
        f'<link rel="canonical" href="{html.escape(public, quote=True)}">',
        *(
            f'<link rel="alternate" type="{kind}" '
            f'href="{html.escape(public + "oembed?url=" + target + "&format=" + fmt, quote=True)}" '
            f'title="{attr}">'
            for kind, fmt in (("application/json+oembed", "json"), ("text/xml+oembed", "xml"))
        ),
    ]
    return "\n".join(links) + "\n" + _LIVE_META


def small_page(status: int, title: str, message: str) -> web.Response:
    """A tiny self-contained HTML page for errors and notices."""
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:4em auto;"
        "padding:0 1em;color:#222}</style></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>"
    )
    headers = {
        **BASE_HEADERS,
        **html_headers("default-src 'none'; style-src 'unsafe-inline'", "'self'"),
        "Cache-Control": "no-store",
    }
    return web.Response(status=status, body=body.encode(), headers=headers)
