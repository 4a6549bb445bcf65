"""The deck model: what parsing a deck produces and every renderer consumes.

Frozen dataclasses only; nothing here imports Markdown, YAML or WeasyPrint,
so renderers and tests can build a `Deck` by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from slidesvc.errors import Diagnostic

ASSET_SCHEME = "slidesvc-asset:"
"""Slide HTML refers to images as ``slidesvc-asset:<id>`` (in ``src=""`` and in
``url(...)``); each renderer resolves the id from `Deck.assets` its own way
(the HTML file stores each image once, the PDF points WeasyPrint at it)."""

SLIDE_LINK_SCHEME = "slidesvc-slide:"
"""In the print document, a link to slide N (``href="#N"``, as in the viewer's
URLs) becomes ``slidesvc-slide:N``: WeasyPrint keeps it as a URI link, and
pdf_assemble turns it into a link to slide N's page, whichever batch holds it."""


@dataclass(frozen=True)
class Asset:
    """A local file the deck uses (image), stored once however often it is used."""

    id: str
    """Short content hash; stable for the same bytes."""
    path: Path
    """Resolved absolute path, inside the deck's folder."""
    mime: str
    """``image/png``, ``image/jpeg``, ``image/gif``, ``image/webp`` or ``image/svg+xml``."""
    data: bytes = field(repr=False)

    def data_uri(self) -> str:
        import base64

        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


@dataclass(frozen=True)
class Background:
    """A Marp ``![bg ...](path)`` image."""

    url: str
    """``slidesvc-asset:<id>`` for local files, the URL itself for remote ones."""
    size: str = "cover"
    """CSS background-size: ``cover``, ``contain``, or an explicit size (``50%``)."""
    position: str = "center"
    """CSS background-position."""


@dataclass(frozen=True)
class Slide:
    """One slide, compiled."""

    number: int
    """1-based position in the deck."""
    line: int
    """1-based source line where the slide's content starts."""
    html: str
    """The slide's content as HTML (notes and directives removed, bg images removed)."""
    notes_html: str = ""
    """Speaker notes as HTML; empty when there are none."""
    title: str = ""
    """Text of the slide's first heading, or ``""``."""
    text: str = ""
    """Plain text of the slide (for search, outline fallbacks and tests)."""
    classes: tuple[str, ...] = ()
    """CSS classes from the ``class`` directive."""
    paginate: bool = False
    header_html: str = ""
    footer_html: str = ""
    background: str = ""
    """CSS ``background`` value from the directive (colour or ``url(slidesvc-asset:...)``)."""
    color: str = ""
    """CSS ``color`` value from the directive."""
    backgrounds: tuple[Background, ...] = ()
    """Marp ``bg`` images, in order."""
    bg_split: str = ""
    """``""`` (full-slide backgrounds), ``"left"`` or ``"right"``: the side the images take."""
    bg_split_size: str = "50%"
    """Width of the image side when split."""
    fragments: int = 0
    """How many step-by-step items the slide has (``*`` / ``1)`` list items)."""


@dataclass(frozen=True)
class DeckMeta:
    """Deck-wide settings from front matter (and global directives), validated."""

    title: str
    author: str = ""
    date: str = ""
    lang: str = "en"
    description: str = ""
    theme: str = "default"
    """Resolved theme name, or the path of a deck-local ``.css`` file."""
    style: str = ""
    """Extra CSS appended to the theme."""
    aspect: str = "16:9"
    """As written (``16:9``, ``4:3``, ``16:10`` or ``WxH``)."""
    width: int = 1280
    height: int = 720
    paginate: bool = False
    math: bool = True
    heading_divider: tuple[int, ...] = ()
    embed_origins: tuple[str, ...] = ()
    pdf_notes: bool = False
    pdf_filename: str = ""
    allow_scripts: bool = False
    """``scripts: true`` in front matter relaxes the CSP so raw-HTML scripts run."""


@dataclass(frozen=True)
class Deck:
    """A compiled deck: everything a renderer needs, nothing it must re-read."""

    path: Path
    """The deck's source file."""
    slug: str
    meta: DeckMeta
    slides: tuple[Slide, ...]
    theme_css: str
    """The theme's CSS plus the deck's ``style``, with local ``url()`` already inlined."""
    assets: dict[str, Asset] = field(default_factory=dict)
    """Images by id; each stored once."""
    diagnostics: tuple[Diagnostic, ...] = ()
    """Warnings found while compiling (errors raise `DeckError` instead)."""
    content_hash: str = ""
    """Hash of the source, the assets and the theme: the deck's version."""
    code_css: str = ""
    """Pygments CSS for highlighted code blocks."""

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def has_notes(self) -> bool:
        return any(s.notes_html for s in self.slides)
