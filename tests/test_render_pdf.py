"""PDF export with the real WeasyPrint: pages, text, outline, metadata, fonts, cache."""

from __future__ import annotations

import io
import struct
from dataclasses import replace
from pathlib import Path

import pytest
from pdf_helpers import all_objects, default_theme, make_deck, page_texts, reader

from slidesvc import __version__
from slidesvc.errors import RenderError
from slidesvc.model import Asset, Background
from slidesvc.render_pdf import (
    check_weasyprint_version,
    find_overflows,
    render_pdf,
)
from slidesvc.thumbnail import encode_png, png_of_first_page

SLIDES = [
    ("<h1>Welcome aboard</h1><p>First slide body</p>", "<p>Say hello warmly</p>"),
    ("<h1>Second topic</h1><ul class='fragments'><li>alpha step</li><li>beta step</li></ul>", ""),
    (
        "<h1>Code sample</h1><div class='code'><pre>print('hi there')</pre></div>",
        "<p>Explain it</p>",
    ),
]


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def deck(tmp_path: Path):  # type: ignore[no-untyped-def]
    return make_deck(tmp_path / "deck", SLIDES, author="Ada Lovelace", description="About things")


def test_one_page_per_slide_with_its_text_and_no_notes(deck, cache: Path) -> None:  # type: ignore[no-untyped-def]
    """Each page holds its slide's text (every fragment) and never its notes."""
    texts = page_texts(render_pdf(deck, cache_dir=cache, jobs=1))
    assert len(texts) == 3
    assert "Welcome aboard" in texts[0] and "First slide body" in texts[0]
    assert "alpha step" in texts[1] and "beta step" in texts[1]
    assert "print('hi there')" in texts[2]
    joined = " ".join(texts)
    assert "Say hello" not in joined and "Explain it" not in joined


@pytest.mark.parametrize(
    ("width", "height"), [(1280, 720), (960, 720), (1280, 800), (800, 600), (1920, 1080)]
)
def test_page_size_is_the_deck_aspect(tmp_path: Path, width: int, height: int) -> None:
    """Pages are exactly the slide size (px at 96 dpi -> pt at 72 dpi), no margins."""
    deck = make_deck(tmp_path / "d", ["<h1>Sized</h1>"] * 2, width=width, height=height)
    for page in reader(render_pdf(deck, cache_dir=tmp_path / "c", jobs=1)).pages:
        box = page.mediabox
        assert (float(box.width), float(box.height)) == (width * 0.75, height * 0.75)


def test_notes_pages_follow_their_slides(deck, cache: Path) -> None:  # type: ignore[no-untyped-def]
    """--notes adds a notes page after each slide that has notes."""
    texts = page_texts(render_pdf(deck, notes=True, cache_dir=cache, jobs=1))
    assert len(texts) == 5
    assert "Welcome aboard" in texts[0] and "Say hello" not in texts[0]
    assert "Say hello warmly" in texts[1] and "Slide 1" in texts[1]
    assert "Second topic" in texts[2]
    assert "Code sample" in texts[3] and "Explain it" in texts[4]


def test_front_matter_asks_for_notes(tmp_path: Path) -> None:
    """``pdf: {notes: true}`` in the front matter means notes pages without --notes."""
    deck = make_deck(tmp_path / "d", SLIDES, pdf_notes=True)
    assert len(reader(render_pdf(deck, cache_dir=tmp_path / "c", jobs=1)).pages) == 5


def test_outline_and_metadata(deck, cache: Path) -> None:  # type: ignore[no-untyped-def]
    """One bookmark per slide titled by its heading; title, author, subject, creator."""
    pdf = reader(render_pdf(deck, notes=True, cache_dir=cache, jobs=1))
    outline = pdf.outline
    assert [item.title for item in outline] == ["Welcome aboard", "Second topic", "Code sample"]
    assert [pdf.get_destination_page_number(item) for item in outline] == [0, 2, 3]
    meta = pdf.metadata
    assert meta is not None
    assert meta.title == "A talk"
    assert meta.author == "Ada Lovelace"
    assert meta.subject == "About things"
    assert meta.creator == f"slidesvc {__version__}"


def test_rebuild_is_byte_identical(deck, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Same deck twice -> same bytes, from a cold or a warm cache; the date is fixed."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    first = render_pdf(deck, cache_dir=tmp_path / "c1", jobs=2)
    warm = render_pdf(deck, cache_dir=tmp_path / "c1", jobs=2)
    cold = render_pdf(deck, cache_dir=tmp_path / "c2", jobs=2)
    assert first == warm == cold
    meta = reader(first).metadata
    assert meta is not None and meta["/CreationDate"] == "D:20231114221320+00'00'"


def test_date_comes_from_the_deck_without_source_date_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without SOURCE_DATE_EPOCH, the deck's own date is the creation date."""
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    deck = make_deck(tmp_path / "d", ["<h1>x</h1>"], date="2024-05-17")
    meta = reader(render_pdf(deck, cache_dir=tmp_path / "c", jobs=1)).metadata
    assert meta is not None and meta["/CreationDate"].startswith("D:20240517")


def test_fonts_are_embedded_once_and_text_stays_extractable(tmp_path: Path) -> None:
    """Batches subset fonts separately; the output has one merged subset per font."""
    slides = [
        f"<h1>Slide number {n}</h1><p>Unique word w{n}x and <b>bold {n}</b></p>" for n in range(12)
    ]
    deck = make_deck(tmp_path / "d", slides)
    pdf = render_pdf(deck, cache_dir=tmp_path / "c", jobs=2)
    font_files = [o for o in all_objects(pdf) if hasattr(o, "get") and "/Length1" in o]
    names = {
        str(o["/FontName"])
        for o in all_objects(pdf)
        if hasattr(o, "get") and o.get("/Type") == "/FontDescriptor"
    }
    assert len(font_files) == len(names) == 2  # regular and bold
    # subsets: a few KiB each, where DejaVu Sans itself is over 600 KiB
    assert all(int(f["/Length1"]) < 60_000 for f in font_files)
    texts = page_texts(pdf)
    for n, text in enumerate(texts):
        assert f"Unique word w{n}x" in text and f"bold {n}" in text


def test_links_stay_clickable(tmp_path: Path) -> None:
    """An external link becomes a URI link annotation on its page."""
    deck = make_deck(
        tmp_path / "d", ['<h1>Links</h1><p><a href="https://example.org/docs">docs</a></p>']
    )
    page = reader(render_pdf(deck, cache_dir=tmp_path / "c", jobs=1)).pages[0]
    uris = [a.get_object()["/A"]["/URI"] for a in page["/Annots"]]
    assert uris == ["https://example.org/docs"]


@pytest.mark.parametrize("notes", [False, True])
def test_links_to_slides_go_to_their_pages(tmp_path: Path, notes: bool) -> None:
    """``#N`` (the viewer's slide URLs) links to slide N's page, across render
    batches and past notes pages; a link to no slide is dropped."""
    slides = [
        ('<h1>Start</h1><p><a href="#3">third</a> <a href="#9">none</a></p>', "<p>n1</p>"),
        ("<h1>Middle</h1>", "<p>n2</p>"),
        ('<h1>End</h1><p><a href="#1">back</a></p>', "<p>n3</p>"),
    ]
    deck = make_deck(tmp_path / "d", slides)
    # jobs=2: three slides make three batches of one, so every link crosses batches
    pdf = reader(render_pdf(deck, cache_dir=tmp_path / "c", jobs=2, notes=notes))
    pages = [p.indirect_reference for p in pdf.pages]
    step = 2 if notes else 1
    assert len(pages) == 3 * step

    def targets(page: int) -> list[int]:
        annots = pdf.pages[page].get("/Annots") or []
        return [pages.index(a.get_object()["/Dest"][0]) for a in annots]

    assert targets(0) == [2 * step]
    assert targets(2 * step) == [0]


def test_aligned_table_columns_keep_their_alignment(tmp_path: Path) -> None:
    """Markdown's column alignment (a style attribute on each cell, a class in
    print) still aligns: right-aligned cells end where their column ends."""
    import pypdfium2

    cells = "".join(
        f'<tr><td>{a}</td><td style="text-align: right;">{b}</td>'
        f'<td style="text-align: center;">{c}</td></tr>'
        for a, b, c in [("alpha", "R", "C"), ("beta", "R234567", "wide cell")]
    )
    deck = make_deck(tmp_path / "d", [f"<table>{cells}</table>"])
    document = pypdfium2.PdfDocument(render_pdf(deck, cache_dir=tmp_path / "c", jobs=1))
    try:
        text = document[0].get_textpage()
        whole = text.get_text_range()

        def box(word: str) -> tuple[float, float]:  # (left, right) of a word; "R " is "R" alone
            start = whole.index(word)
            left = text.get_charbox(start)[0]
            return left, text.get_charbox(start + len(word.strip()) - 1)[2]

        assert abs(box("R ")[1] - box("R234567")[1]) < 2  # right edges (ink) line up
        assert box("R ")[0] > box("R234567")[0] + 20
        x_mid, wide_mid = (sum(box(w)) / 2 for w in ("C", "wide cell"))
        assert abs(x_mid - wide_mid) < 1  # centred on one axis
    finally:
        document.close()


def test_overfull_slide_is_reported_and_never_split(tmp_path: Path) -> None:
    """Content taller than the slide: a warning with the line, still one page per slide."""
    tall = "<h1>Too much</h1>" + "".join(f"<p>Line {n}</p>" for n in range(40))
    deck = make_deck(tmp_path / "d", ["<h1>Fits</h1><p>short</p>", tall, "<h1>Also fits</h1>"])
    found = find_overflows(deck, cache_dir=tmp_path / "c", jobs=1)
    assert len(found) == 1
    (diagnostic,) = found
    assert diagnostic.line == deck.slides[1].line and diagnostic.severity == "warning"
    px = int(diagnostic.message.split("overflows by ")[1].split()[0])
    assert diagnostic.message == f"slide 2 overflows by {px} px"
    # 40 paragraphs of 32px text (~37px line + 32px margins) are far past 600px of room
    assert 1500 < px < 3000
    pdf = render_pdf(deck, cache_dir=tmp_path / "c", jobs=1)
    assert len(reader(pdf).pages) == 3
    assert "Also fits" in page_texts(pdf)[2]


def test_wide_content_is_reported(tmp_path: Path) -> None:
    """A line that cannot wrap and is wider than the slide is reported too."""
    deck = make_deck(tmp_path / "d", ["<pre>" + "x" * 200 + "</pre>"])
    (diagnostic,) = find_overflows(deck, cache_dir=tmp_path / "c", jobs=1)
    assert "px too wide" in diagnostic.message


def test_reexport_renders_only_the_edited_slide(tmp_path: Path) -> None:
    """Editing one slide re-renders one batch of one slide; the rest comes from the cache."""
    slides = [f"<h1>Slide {n}</h1><p>text {n}</p>" for n in range(10)]
    cache = tmp_path / "c"
    render_pdf(make_deck(tmp_path / "d", slides), cache_dir=cache, jobs=2)
    batches = set((cache / "batches").iterdir())
    slides[4] = "<h1>Slide 4, edited</h1><p>new text</p>"
    pdf = render_pdf(make_deck(tmp_path / "d", slides), cache_dir=cache, jobs=2)
    new = set((cache / "batches").iterdir()) - batches
    assert len(new) == 1 and len(reader(new.pop().read_bytes()).pages) == 1
    assert "Slide 4, edited" in page_texts(pdf)[4]


def font_files(pdf: bytes) -> list[bytes]:
    return [
        o.get_data()
        for o in all_objects(pdf)
        if hasattr(o, "get") and ("/Length1" in o or o.get("/Subtype") == "/OpenType")
    ]


def test_cached_batches_are_lean_and_the_pdf_complete(tmp_path: Path) -> None:
    """Batches keep a plain cross-reference table (the assembler reads them about
    twice as fast as compressed object streams) and no font subsets of their own
    (the assembler embeds one subset of each original); the PDF gets real fonts,
    also one missing a glyph (U+E000), whose batch keeps its own subset."""
    from fontTools.ttLib import TTFont

    slides = ["<h1>Fonts</h1><p>plain <b>bold</b> <code>mono</code></p>", "<p>odd \ue000 one</p>"]
    cache = tmp_path / "c"
    pdf = render_pdf(make_deck(tmp_path / "d", slides), cache_dir=cache, jobs=1)
    in_batch = []
    for batch in (cache / "batches").iterdir():
        data = batch.read_bytes()
        assert b"/ObjStm" not in data and b"\nxref\n" in data
        for page in reader(data).pages:
            assert page["/Contents"].get_object()["/Filter"] == "/FlateDecode"
        in_batch += sorted(len(f) for f in font_files(data))
    in_batch.sort()
    assert in_batch[0] == 4 and in_batch[-1] > 1000  # placeholders, and the odd one's subset
    fonts = font_files(pdf)
    assert len(fonts) >= 3
    for font in fonts:
        assert len(TTFont(io.BytesIO(font)).getGlyphOrder()) > 1
    assert "plain bold mono" in page_texts(pdf)[0]


def test_images_and_background_splits(tmp_path: Path) -> None:
    """Deck images (slidesvc-asset:) are embedded, as <img> and as a bg split."""
    png = _png(4, 3, (200, 30, 30))
    asset = Asset(id="a1b2", path=tmp_path / "d" / "red.png", mime="image/png", data=png)
    deck = make_deck(
        tmp_path / "d",
        [
            '<h1>Image</h1><p><img src="slidesvc-asset:a1b2" style="width:300px"></p>',
            "<h1>Split</h1>",
        ],
        assets={"a1b2": asset},
        theme_css=default_theme(),
    )
    split = replace(
        deck.slides[1], backgrounds=(Background("slidesvc-asset:a1b2"),), bg_split="left"
    )
    deck = replace(deck, slides=(deck.slides[0], split))
    pdf = reader(render_pdf(deck, cache_dir=tmp_path / "c", jobs=1))
    assert [len(page.images) for page in pdf.pages] == [1, 1]
    # the split image is painted in the left half: a 640x720 px clip
    content = pdf.pages[1].get_contents()
    assert content is not None and b"0 0 640 720 re" in content.get_data()


def test_thumbnail_is_slide_one_as_png(deck, cache: Path) -> None:  # type: ignore[no-untyped-def]
    """The build's thumbnail: slide 1 as a PNG of the requested width and the slide's aspect."""
    png = png_of_first_page(render_pdf(deck, cache_dir=cache, jobs=1), 640)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (640, 360)


def test_old_weasyprint_is_refused() -> None:
    """WeasyPrint before 70 has known SSRF/local-file advisories."""
    check_weasyprint_version("70.0")
    check_weasyprint_version("71.2")
    with pytest.raises(RenderError, match=r"69\.1 is too old"):
        check_weasyprint_version("69.1")


def test_empty_deck_is_an_error(tmp_path: Path) -> None:
    """No slides: a clear error, no PDF."""
    deck = make_deck(tmp_path / "d", [])
    with pytest.raises(RenderError, match="no slides"):
        render_pdf(deck, cache_dir=tmp_path / "c")


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    return encode_png([bytes(rgb) * width] * height, width, height)


def test_lean_user_agent_stylesheet_parses_without_warnings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The print documents' lean UA stylesheet loads cleanly (no "invalid counter style")."""
    from slidesvc.render_pdf import _lean_ua_stylesheet

    _lean_ua_stylesheet.cache_clear()
    with caplog.at_level("WARNING", logger="weasyprint"):
        assert _lean_ua_stylesheet() is not None
    assert [r.getMessage() for r in caplog.records] == []
