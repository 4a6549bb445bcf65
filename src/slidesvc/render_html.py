"""Render a compiled `Deck` into one self-contained HTML page.

The page is the slideshow and, without JavaScript, a readable document of
every slide. Everything it needs is inside it: the viewer script and styles,
the theme, Pygments CSS and each image exactly once. Images used in one
``<img>`` only are inlined in place as ``data:`` URIs (the most robust form);
images used more than once, or as backgrounds, become one CSS custom property
``--im-<id>`` that every use refers to. A strict Content-Security-Policy lets
only the viewer's own script run (by hash), so scripts in an author's raw
HTML stay inert unless the deck asks for ``scripts: true``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from html import escape
from pathlib import Path

from slidesvc import __version__
from slidesvc.artifacts import HEAD_HOOK
from slidesvc.model import ASSET_SCHEME, Background, Deck, Slide

VIEWER_DIR = Path(__file__).parent / "viewer"

_REF_RE = re.compile(re.escape(ASSET_SCHEME) + r"([\w-]+)")
_IMG_RE = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_IMG_SRC_RE = re.compile(r"""\ssrc\s*=\s*(["'])""" + re.escape(ASSET_SCHEME) + r"""([\w-]+)\1""")
_QUOTE = r"""(?:"|'|&quot;|&#x27;|&#39;)?"""
_URL_RE = re.compile(
    r"url\(\s*" + _QUOTE + re.escape(ASSET_SCHEME) + r"([\w-]+)" + _QUOTE + r"\s*\)"
)
PLACEHOLDER = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"
"""A transparent 1x1 GIF: the ``src`` of an image whose picture comes from CSS."""


@dataclass(frozen=True)
class Runtime:
    """The viewer's script and stylesheet, read once per process."""

    js: str
    css: str

    @property
    def script_hash(self) -> str:
        digest = hashlib.sha256(self.js.encode("utf-8")).digest()
        return "sha256-" + base64.b64encode(digest).decode("ascii")


@cache
def runtime() -> Runtime:
    """The viewer files shipped in the package."""
    js = (VIEWER_DIR / "viewer.js").read_text(encoding="utf-8")
    css = (VIEWER_DIR / "viewer.css").read_text(encoding="utf-8")
    return Runtime(js=js, css=css)


def content_security_policy(script_hash: str, *, allow_scripts: bool = False) -> str:
    """The page's CSP; `allow_scripts` lets inline scripts from raw HTML run."""
    # With a hash present, browsers ignore 'unsafe-inline', so the relaxed
    # policy names only 'unsafe-inline' (which covers the viewer too).
    scripts = "'unsafe-inline'" if allow_scripts else f"'{script_hash}'"
    return (
        f"default-src 'none'; script-src {scripts}; style-src 'unsafe-inline'; "
        "img-src data:; font-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'"
    )


class _Images:
    """Resolves ``slidesvc-asset:<id>`` references so each image is stored once."""

    def __init__(self, deck: Deck, texts: Iterable[str]) -> None:
        self.assets = deck.assets
        total: Counter[str] = Counter()
        in_img: Counter[str] = Counter()
        for text in texts:
            if ASSET_SCHEME not in text:
                continue
            total.update(_REF_RE.findall(text))
            for tag in _IMG_RE.findall(text):
                in_img.update(m.group(2) for m in _IMG_SRC_RE.finditer(tag))
        self.inline = {
            i for i, n in total.items() if n == 1 and in_img[i] == 1 and i in self.assets
        }
        self.shared: set[str] = set()
        """Ids referred to through ``var(--im-<id>)``; their data goes in the stylesheet."""

    def resolve(self, text: str) -> str:
        if ASSET_SCHEME not in text:
            return text
        text = _IMG_RE.sub(self._img, text)
        return _URL_RE.sub(self._url, text)

    def background(self, bg: Background) -> str:
        """CSS for one ``bg`` image layer."""
        if bg.url.startswith(ASSET_SCHEME):
            image = self._url_for(bg.url[len(ASSET_SCHEME) :])
        else:
            image = 'url("' + bg.url.replace('"', "%22") + '")'
        return (
            f"background-image:{image};background-size:{bg.size};background-position:{bg.position}"
        )

    def stylesheet(self) -> str:
        if not self.shared:
            return ""
        ids = sorted(self.shared)
        props = ";".join(f'--im-{i}:url("{self.assets[i].data_uri()}")' for i in ids)
        rules = "".join(f'img[data-im="{i}"]{{content:var(--im-{i})}}' for i in ids)
        return f":root{{{props}}}\n{rules}\n"

    def _url_for(self, asset_id: str) -> str:
        if asset_id not in self.assets:
            return "none"
        self.shared.add(asset_id)
        return f"var(--im-{asset_id})"

    def _url(self, match: re.Match[str]) -> str:
        return self._url_for(match.group(1))

    def _img(self, match: re.Match[str]) -> str:
        tag = match.group(0)
        src = _IMG_SRC_RE.search(tag)
        if src is None:
            return tag
        asset_id = src.group(2)
        before, after = tag[: src.start()], tag[src.end() :]
        if asset_id in self.inline:
            return f'{before} src="{self.assets[asset_id].data_uri()}"{after}'
        if asset_id not in self.assets:
            return before + after
        self.shared.add(asset_id)
        # The placeholder keeps the <img> a real image to Chromium: with no src
        # and a non-empty alt it would lay out as alt text and ignore the
        # author's width/height once CSS `content` swaps the picture in.
        return f'{before} src="{PLACEHOLDER}" data-im="{asset_id}"{after}'


def _slide_texts(slide: Slide, notes: bool) -> Iterable[str]:
    yield slide.html
    yield slide.header_html
    yield slide.footer_html
    yield slide.background
    for bg in slide.backgrounds:
        yield bg.url
    if notes:
        yield slide.notes_html


def _split_width(size: str, width: int) -> str:
    """The image side of a split slide as px: padding percentages would refer
    to the window, not the slide, once the slide is positioned in the viewer."""
    if size.endswith("%"):
        try:
            return f"{round(float(size[:-1]) * width / 100)}px"
        except ValueError:
            pass
    return size


def _slide(slide: Slide, images: _Images, notes: bool, width: int, *, anchor: bool = True) -> str:
    """A slide's ``<section>``; ``anchor=False`` leaves out its ``id="N"``."""
    classes = ["slide", *slide.classes]
    styles = []
    if slide.background:
        styles.append("background:" + images.resolve(slide.background))
        if "url(" in slide.background and "/" not in slide.background.replace("//", ""):
            # A bare image fills the slide (as in Marp) instead of tiling.
            styles.append("background-size:cover;background-position:center")
    if slide.color:
        # Headings follow the directive too: themes colour them separately.
        styles.append(f"color:{slide.color};--heading-fg:{slide.color}")
    parts = []
    if slide.backgrounds:
        layers = "".join(
            f'<div class="bg" style="{escape(images.background(b))}"></div>'
            for b in slide.backgrounds
        )
        parts.append(f'<div class="bg-layer" aria-hidden="true">{layers}</div>')
        if slide.bg_split:
            classes.append("bg-" + slide.bg_split)
            styles.append("--bg-split:" + _split_width(slide.bg_split_size, width))
    if slide.header_html:
        parts.append(f"<header>{images.resolve(slide.header_html)}</header>")
    parts.append(f'<div class="content">{images.resolve(slide.html)}</div>')
    if slide.footer_html:
        parts.append(f"<footer>{images.resolve(slide.footer_html)}</footer>")
    if slide.paginate:
        parts.append(f'<span class="page-number">{slide.number}</span>')
    if notes and slide.notes_html:
        parts.append(f'<aside class="notes">{images.resolve(slide.notes_html)}</aside>')
    style = f' style="{escape(";".join(styles))}"' if styles else ""
    label = f"{slide.number}: {slide.title}" if slide.title else str(slide.number)
    return (
        f'<section class="{escape(" ".join(classes))}"'
        + (f' id="{slide.number}"' if anchor else "")
        + f' data-title="{escape(slide.title)}" data-line="{slide.line}"'
        f' aria-label="{escape(label)}"{style}>' + "".join(parts) + "</section>\n"
    )


def _style_text(css: str) -> str:
    """CSS made safe to sit inside ``<style>``: it cannot close the element."""
    return re.sub(r"</(style)", r"<\\/\1", css, flags=re.IGNORECASE)


def render_html(deck: Deck, *, notes: bool = False) -> str:
    """The deck as one self-contained page; speaker notes only when `notes` is true."""
    meta = deck.meta
    rt = runtime()
    images = _Images(deck, (t for s in deck.slides for t in _slide_texts(s, notes)))
    body = "".join(_slide(s, images, notes, meta.width) for s in deck.slides)
    csp = content_security_policy(rt.script_hash, allow_scripts=meta.allow_scripts)
    size = f"{meta.width}px {meta.height}px"
    deck_css = (
        f":root{{--w:{meta.width}px;--h:{meta.height}px}}\n@page{{size:{size};margin:0}}\n"
        + deck.theme_css
        + "\n"
        + deck.code_css
        + "\n"
        + images.stylesheet()
    )
    head = [
        "<!doctype html>\n",
        f'<html lang="{escape(meta.lang)}" data-mode="deck" class="no-js">\n<head>\n',
        '<meta charset="utf-8">\n',
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n',
        f"<title>{escape(meta.title)}</title>\n",
    ]
    if meta.description:
        head.append(f'<meta name="description" content="{escape(meta.description)}">\n')
    if meta.author:
        head.append(f'<meta name="author" content="{escape(meta.author)}">\n')
    head.append(
        '<meta property="og:type" content="website">\n'
        f'<meta property="og:title" content="{escape(meta.title)}">\n'
    )
    if meta.description:
        head.append(f'<meta property="og:description" content="{escape(meta.description)}">\n')
    head.append(f'<meta name="generator" content="slidesvc {__version__}">\n')
    return "".join(
        [
            *head,
            f"<style>\n{rt.css}</style>\n<style>\n{_style_text(deck_css)}</style>\n",
            HEAD_HOOK,
            "\n</head>\n<body>\n",
            f'<main class="deck" data-width="{meta.width}" data-height="{meta.height}"',
            f' data-count="{len(deck.slides)}" data-version="{escape(deck.content_hash)}">\n',
            body,
            "</main>\n<script>",
            rt.js,
            "</script>\n</body>\n</html>\n",
        ]
    )
