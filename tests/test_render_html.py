"""render_html: one self-contained, strictly locked-down page per deck."""

from __future__ import annotations

import base64
import gzip
import hashlib
import re
import zlib
from html.parser import HTMLParser
from pathlib import Path

from slidesvc import __version__
from slidesvc.artifacts import HEAD_HOOK, inject_head, page_csp, set_mode
from slidesvc.model import Asset, Background, Deck, DeckMeta, Slide
from slidesvc.render_html import render_html, runtime


class Page(HTMLParser):
    """The parts of a page the tests look at: elements with attributes, texts."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.parent: list[int] = []
        """Index in `elements` of each element's parent (-1 for the root)."""
        self.texts: dict[str, list[str]] = {}
        self._open: list[str] = []
        self._stack: list[int] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))
        self.parent.append(self._stack[-1] if self._stack else -1)
        if tag not in ("meta", "img", "br", "hr", "input", "link"):
            self._open.append(tag)
            self._stack.append(len(self.elements) - 1)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._open:
            while self._open.pop() != tag:
                self._stack.pop()
            self._stack.pop()

    def children(self, tag: str, n: int = 0) -> list[str]:
        """Tags (with class) of the children of the `n`-th `tag` element."""
        index = [i for i, (t, _a) in enumerate(self.elements) if t == tag][n]
        return [
            t + ("." + a["class"] if "class" in a else "")
            for i, (t, a) in enumerate(self.elements)
            if self.parent[i] == index
        ]

    def handle_data(self, data: str) -> None:
        if self._open:
            self.texts.setdefault(self._open[-1], []).append(data)

    def all(self, tag: str) -> list[dict[str, str]]:
        return [attrs for t, attrs in self.elements if t == tag]

    def meta(self, key: str, value: str) -> str:
        (found,) = [a["content"] for a in self.all("meta") if a.get(key) == value]
        return found


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A real PNG file of one colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def make_deck(*slides: Slide, assets: dict[str, Asset] | None = None, **meta: object) -> Deck:
    fields: dict[str, object] = {"title": "A talk", **meta}
    return Deck(
        path=Path("/decks/talk.md"),
        slug="talk",
        meta=DeckMeta(**fields),  # type: ignore[arg-type]
        slides=slides or (Slide(1, 1, "<h1>Hello</h1>", title="Hello"),),
        theme_css=".slide{color:#123}",
        assets=assets or {},
        content_hash="v1",
    )


def asset(asset_id: str, rgb: tuple[int, int, int] = (200, 30, 30)) -> Asset:
    return Asset(asset_id, Path(f"/decks/{asset_id}.png"), "image/png", png(8, 4, rgb))


def test_page_hooks_and_head() -> None:
    """The page carries the documented hooks: lang, data-mode, no-js, head hook, generator."""
    html = render_html(make_deck(lang="de"))
    page = Page(html)
    assert page.all("html") == [{"lang": "de", "data-mode": "deck", "class": "no-js"}]
    assert html.index(HEAD_HOOK) < html.index("</head>") < html.index("<body>")
    assert page.meta("name", "generator") == f"slidesvc {__version__}"
    assert Page(set_mode(html, "embed")).all("html")[0]["data-mode"] == "embed"
    assert "<meta name=x>" in inject_head(html, "<meta name=x>")


def test_csp_allows_exactly_the_inlined_viewer_script() -> None:
    """The CSP hash is the SHA-256 of the one inline script; nothing else may run."""
    html = render_html(make_deck())
    scripts = re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    assert page_csp(html) == (
        f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; "
        "img-src data:; font-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'"
    )


def test_allow_scripts_relaxes_the_csp_to_inline_scripts() -> None:
    """`scripts: true` lets inline scripts run (a hash would make browsers ignore unsafe-inline)."""
    csp = page_csp(render_html(make_deck(allow_scripts=True)))
    assert "script-src 'unsafe-inline';" in csp
    assert "sha256-" not in csp
    assert "default-src 'none'" in csp


def test_meta_is_escaped_and_complete() -> None:
    """Title, description and author come out escaped in <title>, meta and Open Graph tags."""
    nasty = 'Tricks <script>alert("x")</script> & "quotes"'
    html = render_html(make_deck(title=nasty, description=nasty + " desc", author="A & B"))
    page = Page(html)
    assert "".join(page.texts["title"]) == nasty
    assert page.meta("name", "description") == nasty + " desc"
    assert page.meta("property", "og:title") == nasty
    assert page.meta("property", "og:description") == nasty + " desc"
    assert page.meta("name", "author") == "A & B"
    assert "<script>alert" not in html


def test_notes_only_when_asked() -> None:
    """Speaker notes are absent from the public page and present with notes=True."""
    deck = make_deck(Slide(1, 1, "<p>Public</p>", notes_html="<p>Secret words</p>"))
    assert "Secret words" not in render_html(deck)
    noted = Page(render_html(deck, notes=True))
    assert [a["class"] for a in noted.all("aside")] == ["notes"]
    assert "Secret words" in "".join(noted.texts["p"])


def test_sections_follow_the_slide_conventions() -> None:
    """One section per slide with number id, title, line, classes, header/footer, page number."""
    deck = make_deck(
        Slide(1, 3, "<h1>One</h1>", title="One", classes=("lead", "invert"), paginate=True),
        Slide(
            2, 9, "<p>Two</p>", header_html="<p>Head</p>", footer_html="<p>Foot</p>", color="red"
        ),
        width=960,
        height=720,
        aspect="4:3",
    )
    page = Page(render_html(deck))
    (main,) = page.all("main")
    assert (main["class"], main["data-width"], main["data-height"], main["data-count"]) == (
        "deck",
        "960",
        "720",
        "2",
    )
    sections = page.all("section")
    assert [(s["id"], s["data-title"], s["data-line"]) for s in sections] == [
        ("1", "One", "3"),
        ("2", "", "9"),
    ]
    assert sections[0]["class"] == "slide lead invert"
    assert sections[1]["style"] == "color:red;--heading-fg:red"
    assert [a["class"] for a in page.all("span")] == ["page-number"]
    assert page.children("section", 0) == ["div.content", "span.page-number"]
    assert page.children("section", 1) == ["header", "div.content", "footer"]
    assert page.children("header") == ["p"]


def test_page_is_self_contained() -> None:
    """No src/href/url()/@import that needs the network or another file."""
    deck = make_deck(
        Slide(1, 1, '<p><img src="slidesvc-asset:a1" alt="one"> <a href="#2">next</a></p>'),
        Slide(
            2,
            5,
            '<div style="background:url(slidesvc-asset:a1)">x</div>',
            backgrounds=(Background("slidesvc-asset:b2"),),
        ),
        Slide(3, 9, "<p>directive</p>", background="url('slidesvc-asset:b2') center/cover"),
        assets={"a1": asset("a1"), "b2": asset("b2", (0, 0, 200))},
    )
    html = render_html(deck)
    page = Page(html)
    for _tag, attrs in page.elements:
        for name in ("src", "href", "action", "poster", "data"):
            if name in attrs:
                assert attrs[name].startswith(("data:", "#")), (name, attrs[name])
    css = "".join(re.findall(r"<style>(.*?)</style>", html, flags=re.DOTALL))
    css += "".join(attrs.get("style", "") for _tag, attrs in page.elements)
    assert "@import" not in css
    urls = re.findall(r"url\(([^)]{0,40})", css)
    assert urls
    for url in urls:
        assert url.startswith(('"data:', "data:")), url
    assert "slidesvc-asset:" not in html
    assert page.all("section")[2]["style"] == "background:var(--im-b2) center/cover"


def test_each_image_is_stored_once() -> None:
    """An image on many slides (and as a background) is one CSS variable; a single use is inline."""
    shared, single = asset("sh1"), asset("si2", (10, 200, 10))
    deck = make_deck(
        *(
            Slide(n, n, f'<img src="slidesvc-asset:sh1" alt="logo {n}" width="120">')
            for n in (1, 2, 3)
        ),
        Slide(
            4,
            4,
            '<img src="slidesvc-asset:si2" alt="once">',
            backgrounds=(Background("slidesvc-asset:sh1", "contain"),),
        ),
        assets={"sh1": shared, "si2": single},
    )
    html = render_html(deck)
    shared_b64 = base64.b64encode(shared.data).decode()
    single_b64 = base64.b64encode(single.data).decode()
    assert html.count(shared_b64) == 1
    assert html.count(single_b64) == 1
    assert f'--im-sh1:url("{shared.data_uri()}")' in html
    assert 'img[data-im="sh1"]{content:var(--im-sh1)}' in html
    imgs = Page(html).all("img")
    assert [i.get("data-im") for i in imgs] == ["sh1", "sh1", "sh1", None]
    assert [i["width"] for i in imgs[:3]] == ["120"] * 3
    assert imgs[3]["src"] == single.data_uri()
    assert "background-image:var(--im-sh1);background-size:contain" in html


def test_background_directive_image_covers_the_slide() -> None:
    """`background: url(...)` alone fills the slide; an explicit size is left alone."""
    deck = make_deck(
        Slide(1, 1, "<p>a</p>", background="url(slidesvc-asset:a1)", color="white"),
        Slide(2, 2, "<p>b</p>", background="url(slidesvc-asset:a1) left / 50% no-repeat"),
        Slide(3, 3, "<p>c</p>", background="#123456"),
        assets={"a1": asset("a1")},
    )
    styles = [s["style"] for s in Page(render_html(deck)).all("section")]
    assert styles == [
        "background:var(--im-a1);background-size:cover;background-position:center;"
        "color:white;--heading-fg:white",
        "background:var(--im-a1) left / 50% no-repeat",
        "background:#123456",
    ]


def test_split_background_width_is_in_px() -> None:
    """`bg left:40%` becomes a px width of the slide, not of the window."""
    deck = make_deck(
        Slide(
            1,
            1,
            "<p>text</p>",
            backgrounds=(Background("slidesvc-asset:a1"),),
            bg_split="left",
            bg_split_size="40%",
        ),
        assets={"a1": asset("a1")},
    )
    (section,) = Page(render_html(deck)).all("section")
    assert section["class"] == "slide bg-left"
    assert section["style"] == "--bg-split:512px"


def test_theme_css_cannot_close_the_style_element() -> None:
    """A `</style>` inside CSS is neutralised so the rest of the page stays CSS-free."""
    deck = make_deck()
    deck = Deck(
        deck.path,
        deck.slug,
        deck.meta,
        deck.slides,
        "p{}</style><script>x()</script>",
        content_hash="v",
    )
    page = Page(render_html(deck))
    assert len(page.all("script")) == 1
    assert len(page.all("style")) == 2
    assert len(page.all("main")) == 1


def test_output_is_small() -> None:
    """A 2-slide deck stays under 60 KB (20 KB gzipped); the runtime under 25 KB gzipped."""
    deck = make_deck(Slide(1, 1, "<h1>One</h1>"), Slide(2, 2, "<p>Two</p>"))
    html = render_html(deck).encode()
    assert len(html) < 60_000
    assert len(gzip.compress(html)) < 20_000
    rt = runtime()
    assert len(gzip.compress((rt.js + rt.css).encode())) < 25_000
