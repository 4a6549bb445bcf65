"""oEmbed 1.0 for one deck: recognise its own URLs, answer a ``rich`` embed.

The provider only ever describes itself: `own_slide` accepts a URL only when
it is this deck's configured public URL (its ``/`` or ``/embed``, optionally
with ``#N`` or ``?slide=N``) and never fetches anything. Sizes honour the
consumer's ``maxwidth``/``maxheight`` while keeping the deck's aspect ratio;
values that are not positive integers are a 400, absurdly large ones are
clamped. Everything that comes from the request and goes into the ``html``
snippet is a clamped integer, never reflected text.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape

from slidesvc.artifacts import Artifacts

PROVIDER_NAME = "slidesvc"
DEFAULT_WIDTH = 960
MIN_SIZE = 50
_MAX_URL = 2048


class OEmbedError(ValueError):
    """A request the provider refuses; carries the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _slide_number(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None


def own_slide(url: str, public_url: str, slides: int) -> int | None:
    """The slide `url` points at (1 for none) if `url` is this deck; else raise 404."""
    not_ours = OEmbedError(404, "that URL is not this deck")
    if len(url) > _MAX_URL or any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise not_ours
    mine = urlsplit(public_url)
    try:
        theirs = urlsplit(url)
        their_port = theirs.port or _default_port(theirs.scheme)
    except ValueError:
        raise not_ours from None
    if (
        theirs.scheme.lower() != mine.scheme
        or "@" in theirs.netloc
        or (theirs.hostname or "") != mine.hostname
        or their_port != (mine.port or _default_port(mine.scheme))
    ):
        raise not_ours
    base = mine.path  # ends with "/"
    if theirs.path not in {base, base.rstrip("/"), base + "embed", base + "index.html"}:
        raise not_ours
    slide: int | None = None
    if theirs.query:
        params = parse_qsl(theirs.query, keep_blank_values=True)
        if [k for k, _ in params] != ["slide"]:
            raise not_ours
        slide = _slide_number(params[0][1])
    if theirs.fragment:
        slide = _slide_number(theirs.fragment.removeprefix("slide="))
    return None if slide is None else min(max(slide, 1), slides)


def _dimension(name: str, value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not (value.isascii() and value.isdigit()):
        raise OEmbedError(400, f"{name} must be a positive integer")
    if len(value) > 6:  # far beyond any screen: clamp rather than refuse
        return 10**6
    number = int(value)
    if number < MIN_SIZE:
        raise OEmbedError(400, f"{name} must be at least {MIN_SIZE}")
    return number


def embed_size(
    deck_width: int, deck_height: int, maxwidth: int | None, maxheight: int | None
) -> tuple[int, int]:
    """Iframe size: at most DEFAULT_WIDTH wide, within the limits, same aspect."""
    aspect = deck_height / deck_width
    width = float(min(DEFAULT_WIDTH, deck_width))
    if maxwidth is not None:
        width = min(width, maxwidth)
    if maxheight is not None:
        width = min(width, maxheight / aspect)
    width = max(width, 1.0)
    # floor both so neither exceeds its limit after rounding
    return int(width), max(1, int(width * aspect))


def oembed(
    artifacts: Artifacts,
    public_url: str,
    *,
    url: str | None,
    maxwidth: str | None,
    maxheight: str | None,
    thumbnail: tuple[str, int, int],
) -> dict[str, Any]:
    """The oEmbed response for a request's parameters; raises `OEmbedError`."""
    if not url:
        raise OEmbedError(400, "the url parameter is required")
    deck = artifacts.deck
    slides = max(1, int(deck.get("slides") or 1))
    slide = own_slide(url, public_url, slides)
    mw, mh = _dimension("maxwidth", maxwidth), _dimension("maxheight", maxheight)
    deck_w, deck_h = int(deck.get("width") or 1280), int(deck.get("height") or 720)
    width, height = embed_size(deck_w, deck_h, mw, mh)
    title = str(deck.get("title") or artifacts.slug)
    src = public_url + "embed" + (f"?slide={slide}" if slide else "")
    snippet = (
        f'<iframe src="{html.escape(src, quote=True)}" width="{width}" height="{height}" '
        f'title="{html.escape(title, quote=True)}" loading="lazy" allowfullscreen '
        'allow="fullscreen" style="border:0"></iframe>'
    )
    thumb_path, thumb_w, thumb_h = thumbnail
    response: dict[str, Any] = {
        "type": "rich",
        "version": "1.0",
        "title": title,
        "provider_name": PROVIDER_NAME,
        "provider_url": public_url,
        "width": width,
        "height": height,
        "html": snippet,
        "thumbnail_url": public_url + thumb_path,
        "thumbnail_width": thumb_w,
        "thumbnail_height": thumb_h,
        "cache_age": 3600,
    }
    if deck.get("author"):
        response["author_name"] = str(deck["author"])
    return response


def to_xml(response: dict[str, Any]) -> bytes:
    """The XML form of an oEmbed response."""
    fields = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in response.items())
    head = '<?xml version="1.0" encoding="utf-8" standalone="yes"?>\n'
    return f"{head}<oembed>{fields}</oembed>\n".encode()
