"""The compiled form of one deck: the files a build writes and a server reads.

This module is shared by the build side and the serving side, so it imports
only the standard library. A deck's artifact folder holds:

    index.html      the public slideshow (no notes)
    deck.json       description: title, author, outline, aspect, version, ...
    deck.pdf        one page per slide
    thumbnail.png   slide 1, for oEmbed and index pages
    presenter.html  (private) the slideshow with speaker notes
    deck-notes.pdf  (private unless the deck opts in) the handout with notes

A static site build (`slidesvc build DIR -o SITE`) writes only the public
files; the artifacts a server or an image runs from also hold the private ones.

The HTML files carry two hooks the server fills once at start-up (never per
request): `HEAD_HOOK`, where it inserts discovery links and live-channel
metadata, and the ``data-mode`` attribute of ``<html>`` (``deck``, ``embed``,
``presenter``) that tells the viewer which view it is.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INDEX_HTML = "index.html"
DECK_JSON = "deck.json"
DECK_PDF = "deck.pdf"
THUMBNAIL_PNG = "thumbnail.png"
PRESENTER_HTML = "presenter.html"
NOTES_PDF = "deck-notes.pdf"

PUBLIC_FILES = (INDEX_HTML, DECK_JSON, DECK_PDF, THUMBNAIL_PNG)
PRIVATE_FILES = (PRESENTER_HTML, NOTES_PDF)

HEAD_HOOK = "<!--slidesvc:head-->"
"""Placed just before ``</head>``; replaced by the server, harmless in a file."""

_MODE_RE = re.compile(r'(<html\b[^>]*?\sdata-mode=")([a-z]+)(")')
_CSP_RE = re.compile(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">')


def set_mode(html: str, mode: str) -> str:
    """Return `html` with ``<html data-mode>`` set to `mode`."""
    new, count = _MODE_RE.subn(rf"\g<1>{mode}\g<3>", html, count=1)
    if count != 1:
        raise ValueError("not a slidesvc deck page: <html data-mode> missing")
    return new


def inject_head(html: str, extra: str) -> str:
    """Insert `extra` markup at the head hook."""
    if HEAD_HOOK not in html:
        raise ValueError("not a slidesvc deck page: head hook missing")
    return html.replace(HEAD_HOOK, extra + HEAD_HOOK, 1)


def page_csp(html: str) -> str:
    """The Content-Security-Policy the page declares in its ``<meta>``."""
    match = _CSP_RE.search(html)
    if match is None:
        raise ValueError("not a slidesvc deck page: CSP <meta> missing")
    return match.group(1).replace("&#x27;", "'").replace("&quot;", '"')


@dataclass(frozen=True)
class Artifacts:
    """One deck's compiled files, in memory."""

    index_html: str
    deck: dict[str, Any]
    """The parsed deck.json."""
    pdf: bytes | None = None
    thumbnail_png: bytes | None = None
    presenter_html: str | None = None
    notes_pdf: bytes | None = None

    @property
    def slug(self) -> str:
        return str(self.deck["slug"])

    @property
    def version(self) -> str:
        return str(self.deck["version"])

    @classmethod
    def load(cls, folder: Path) -> Artifacts:
        """Read an artifact folder written by a build; missing optional files are None."""

        def read(name: str) -> bytes | None:
            path = folder / name
            return path.read_bytes() if path.is_file() else None

        index = read(INDEX_HTML)
        meta = read(DECK_JSON)
        if index is None or meta is None:
            raise FileNotFoundError(
                f"{folder}: not a deck artifact folder (needs {INDEX_HTML} and {DECK_JSON})"
            )
        presenter = read(PRESENTER_HTML)
        return cls(
            index_html=index.decode("utf-8"),
            deck=json.loads(meta),
            pdf=read(DECK_PDF),
            thumbnail_png=read(THUMBNAIL_PNG),
            presenter_html=presenter.decode("utf-8") if presenter is not None else None,
            notes_pdf=read(NOTES_PDF),
        )
