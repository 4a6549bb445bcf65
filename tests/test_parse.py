"""load_deck: the file, slides, notes, directives, images, code, math, themes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from slidesvc.errors import DeckError, DeckTooLarge
from slidesvc.model import ASSET_SCHEME
from slidesvc.parse import load_deck

WriteDeck = Callable[..., Path]

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 16
GIF = b"GIF89a" + b"\x00" * 16
WEBP = b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 8
SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>'


def test_slides_are_split_on_separator_lines(write_deck: WriteDeck) -> None:
    """Three slides, numbered from 1, each starting on its first content line."""
    deck = load_deck(write_deck("# One\n---\n\n# Two\n---   \n# Three\n"))
    assert [s.title for s in deck.slides] == ["One", "Two", "Three"]
    assert [s.number for s in deck.slides] == [1, 2, 3]
    assert [s.line for s in deck.slides] == [1, 4, 6]


def test_separator_inside_fenced_code_is_code(write_deck: WriteDeck) -> None:
    """``---`` inside ``` and ~~~ fences does not split the slide."""
    deck = load_deck(write_deck("# A\n```\n---\n```\n~~~~\n---\n~~~~\n---\n# B\n"))
    assert len(deck.slides) == 2
    assert deck.slides[0].html.count("---") == 2


def test_unterminated_fence_warns_with_its_line(write_deck: WriteDeck) -> None:
    """An unclosed fence swallows the rest (CommonMark) and says where it opened."""
    deck = load_deck(write_deck("# A\n\n```python\nx = 1\n---\n# B\n"))
    assert len(deck.slides) == 1
    (warning,) = [d for d in deck.diagnostics if "never closed" in d.message]
    assert warning.line == 3


def test_empty_slide_is_blank(write_deck: WriteDeck) -> None:
    """An empty slide between separators is kept as a blank slide."""
    deck = load_deck(write_deck("# A\n---\n---\n# C\n"))
    assert len(deck.slides) == 3
    assert deck.slides[1].html == ""
    assert deck.slides[1].line == 3


def test_empty_deck_is_an_error(write_deck: WriteDeck) -> None:
    """A deck with nothing but front matter is an error naming the file."""
    with pytest.raises(DeckError, match="empty"):
        load_deck(write_deck("---\ntitle: x\n---\n\n"))


def test_bom_and_crlf_are_accepted(write_deck: WriteDeck, tmp_path: Path) -> None:
    """A UTF-8 BOM and CRLF line endings parse like plain LF text."""
    path = tmp_path / "win.md"
    path.write_bytes(b"\xef\xbb\xbf---\r\ntitle: Win\r\n---\r\n# A\r\n---\r\n# B\r\n")
    deck = load_deck(path)
    assert deck.meta.title == "Win"
    assert [s.title for s in deck.slides] == ["A", "B"]
    assert deck.slides[1].line == 6


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    """Non-UTF-8 bytes are an error on the line of the first bad byte."""
    path = tmp_path / "latin1.md"
    path.write_bytes(b"# A\n\nok\ncaf\xe9\n")
    with pytest.raises(DeckError) as info:
        load_deck(path)
    assert info.value.line == 4
    assert "UTF-8" in info.value.message


def test_size_limit(write_deck: WriteDeck, monkeypatch: pytest.MonkeyPatch) -> None:
    """Over the limit is DeckTooLarge naming size, limit and how to raise it."""
    path = write_deck("# A\n" + "x" * 200 + "\n")
    with pytest.raises(DeckTooLarge) as info:
        load_deck(path, max_bytes=100)
    assert "205" in info.value.message and "100" in info.value.message
    assert "SLIDESVC_MAX_DECK_BYTES" in info.value.message
    monkeypatch.setenv("SLIDESVC_MAX_DECK_BYTES", "50")
    with pytest.raises(DeckTooLarge):
        load_deck(path)
    monkeypatch.setenv("SLIDESVC_MAX_DECK_BYTES", "5000")
    assert len(load_deck(path).slides) == 1


def test_slug_and_default_title(write_deck: WriteDeck) -> None:
    """Slug from the file name; title from the first heading of slide 1."""
    deck = load_deck(write_deck("Intro text\n\n## Hello *World*\n", "My Talk.md"))
    assert deck.slug == "my-talk"
    assert deck.meta.title == "Hello World"


def test_title_falls_back_to_slug(write_deck: WriteDeck) -> None:
    """Without a heading on slide 1 the title is the slug."""
    assert load_deck(write_deck("just text\n", "Q3 review.md")).meta.title == "q3-review"


def test_front_matter_fills_meta(write_deck: WriteDeck) -> None:
    """Every front-matter key lands in DeckMeta, Marp aliases included."""
    deck = load_deck(
        write_deck(
            """\
            ---
            marp: true
            title: Talk
            author: Ada
            date: 2024-05-01
            lang: de
            description: About things
            size: 4:3
            paginate: true
            math: katex
            headingDivider: 2
            scripts: true
            embed:
              origins: [https://wiki.example.org]
            pdf:
              notes: true
              filename: talk
            ---
            # A
            """
        )
    )
    meta = deck.meta
    assert (meta.title, meta.author, meta.date, meta.lang) == ("Talk", "Ada", "2024-05-01", "de")
    assert meta.description == "About things"
    assert (meta.aspect, meta.width, meta.height) == ("4:3", 960, 720)
    assert meta.paginate and meta.math and meta.allow_scripts
    assert meta.heading_divider == (1, 2)
    assert meta.embed_origins == ("https://wiki.example.org",)
    assert meta.pdf_notes and meta.pdf_filename == "talk.pdf"
    assert deck.slides[0].paginate


def test_bad_front_matter_value_names_key_value_and_line(write_deck: WriteDeck) -> None:
    """A wrong type is an error with the key's line; all errors are collected."""
    with pytest.raises(DeckError) as info:
        load_deck(write_deck("---\ntitle: x\npaginate: maybe\naspect: wide\n---\n# A\n"))
    error = info.value
    assert error.line == 3
    assert "paginate" in error.message and "maybe" in error.message and "true" in error.message
    (other,) = [d for d in error.others if d.severity == "error"]
    assert other.line == 4 and "wide" in other.message and "16:9" in other.message


def test_unknown_front_matter_key_is_a_warning(write_deck: WriteDeck) -> None:
    """Unknown keys warn with their line and do not stop the build."""
    deck = load_deck(write_deck("---\ntitle: x\ncolour_scheme: blue\n---\n# A\n"))
    (warning,) = deck.diagnostics
    assert warning.line == 3 and "colour_scheme" in warning.message


def test_yaml_aliases_and_tags_are_rejected(write_deck: WriteDeck) -> None:
    """Anchors, aliases and python tags are errors with a line, never executed."""
    with pytest.raises(DeckError) as info:
        load_deck(write_deck("---\ntitle: &t x\nauthor: *t\n---\n# A\n"))
    assert info.value.line == 2 and "alias" in info.value.message
    with pytest.raises(DeckError) as info:
        load_deck(write_deck("---\ntitle: x\nauthor: !!python/object/apply:os.getcwd []\n---\n"))
    assert info.value.line == 3 and "tag" in info.value.message


def test_notes_in_all_three_syntaxes(write_deck: WriteDeck) -> None:
    """???, Note: and plain comments become notes, never slide HTML."""
    deck = load_deck(
        write_deck(
            "# A\n<!-- comment note -->\n\n???\nremark *note*\n---\n# B\n\nNotes: reveal note\n"
        )
    )
    first, second = deck.slides
    assert "comment note" in first.notes_html and "<em>note</em>" in first.notes_html
    assert "note" not in first.html and "remark" not in first.html
    assert second.notes_html == "<p>reveal note</p>"
    assert "reveal" not in second.html
    assert deck.has_notes


def test_directives_local_and_spot(write_deck: WriteDeck) -> None:
    """A directive carries on to later slides; an underscore one does not."""
    deck = load_deck(
        write_deck(
            """\
            <!-- class: lead -->
            <!-- _color: red -->
            # A
            ---
            <!-- paginate: true
            footer: "**Acme** 2024" -->
            # B
            ---
            <!-- _class: "" -->
            <!-- _backgroundColor: #123456 -->
            # C
            """
        )
    )
    a, b, c = deck.slides
    assert a.classes == ("lead",) and a.color == "red"
    assert b.classes == ("lead",) and b.color == "" and b.paginate
    assert b.footer_html == "<strong>Acme</strong> 2024"
    assert c.classes == () and c.background == "#123456" and c.paginate
    assert not any(s.notes_html for s in deck.slides)


def test_global_directive_in_comment(write_deck: WriteDeck) -> None:
    """Marp global directives (theme, headingDivider) work in comments."""
    deck = load_deck(write_deck("<!-- headingDivider: 2 -->\n# A\ntext\n## B\n## C\n### c\n"))
    assert [s.title for s in deck.slides] == ["A", "B", "C"]
    assert [s.line for s in deck.slides] == [1, 4, 5]


def test_fragments(write_deck: WriteDeck) -> None:
    """* and 1) lists are fragments; - + 1. lists are not."""
    deck = load_deck(
        write_deck("* a\n* b\n\n- c\n\n+ d\n\n1) e\n2) f\n3) g\n\n1. h\n", dedent=False)
    )
    slide = deck.slides[0]
    assert slide.fragments == 5
    assert slide.html.count('<ul class="fragments">') == 1
    assert slide.html.count('<ol class="fragments">') == 1
    assert slide.html.count("<ul>") == 2 and slide.html.count("<ol>") == 1


def test_images_are_stored_once(write_deck: WriteDeck, tmp_path: Path) -> None:
    """The same image on two slides is one asset; slides refer to it by id."""
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.png").write_bytes(PNG)
    deck = load_deck(write_deck("![w:300px h:20% logo](img/a.png)\n---\n![](./img/a.png)\n"))
    (asset,) = deck.assets.values()
    assert asset.mime == "image/png" and asset.data == PNG
    assert f'src="{ASSET_SCHEME}{asset.id}"' in deck.slides[0].html
    assert 'alt="logo"' in deck.slides[0].html
    assert 'style="width:300px;height:20%"' in deck.slides[0].html
    assert f"{ASSET_SCHEME}{asset.id}" in deck.slides[1].html


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (GIF, "image/gif"),
        (WEBP, "image/webp"),
        (SVG, "image/svg+xml"),
    ],
)
def test_image_type_by_magic_bytes(
    write_deck: WriteDeck, tmp_path: Path, data: bytes, mime: str
) -> None:
    """The mime type comes from the bytes, not the file name."""
    (tmp_path / "pic.bin").write_bytes(data)
    deck = load_deck(write_deck("![](pic.bin)\n"))
    assert [a.mime for a in deck.assets.values()] == [mime]


def test_missing_image_is_an_error_with_line(write_deck: WriteDeck) -> None:
    """A missing image names the line and the path."""
    with pytest.raises(DeckError) as info:
        load_deck(write_deck("# A\n---\n# B\n\ntext\n![x](img/missing.png)\n"))
    assert info.value.line == 6
    assert "img/missing.png" in info.value.message


def test_image_outside_deck_folder_is_an_error(write_deck: WriteDeck, tmp_path: Path) -> None:
    """../ escapes (also through symlinks) are refused."""
    (tmp_path / "secret.png").write_bytes(PNG)
    deck_dir = tmp_path / "deck"
    deck_dir.mkdir()
    (deck_dir / "link.png").symlink_to(tmp_path / "secret.png")
    with pytest.raises(DeckError) as info:
        load_deck(write_deck("# A\n![](../secret.png)\n![](link.png)\n", "deck/talk.md"))
    assert info.value.line == 2 and "outside" in info.value.message
    assert [d.line for d in info.value.others if d.severity == "error"] == [3]


def test_remote_image_is_a_warning(write_deck: WriteDeck) -> None:
    """Remote images stay remote and warn that the deck is not self-contained."""
    deck = load_deck(write_deck("# A\n![](https://example.org/a.png)\n"))
    assert 'src="https://example.org/a.png"' in deck.slides[0].html
    (warning,) = deck.diagnostics
    assert warning.line == 2 and "self-contained" in warning.message


def test_background_images(write_deck: WriteDeck, tmp_path: Path) -> None:
    """bg images leave the content; keywords set size and split."""
    (tmp_path / "a.png").write_bytes(PNG)
    (tmp_path / "b.jpg").write_bytes(JPEG)
    deck = load_deck(
        write_deck("![bg](a.png)\n# A\n---\n![bg right:40% fit](a.png)\n![bg 80%](b.jpg)\n# B\n")
    )
    a, b = deck.slides
    assert "<img" not in a.html and "<img" not in b.html
    assert [bg.size for bg in a.backgrounds] == ["cover"] and a.bg_split == ""
    assert [bg.size for bg in b.backgrounds] == ["contain", "80%"]
    assert (b.bg_split, b.bg_split_size) == ("right", "40%")
    assert all(bg.url.startswith(ASSET_SCHEME) for bg in b.backgrounds)
    assert len(deck.assets) == 2


def test_background_directive_resolves_local_image(write_deck: WriteDeck, tmp_path: Path) -> None:
    """background: url(img) and backgroundImage point at the stored asset."""
    (tmp_path / "a.png").write_bytes(PNG)
    deck = load_deck(write_deck("<!-- backgroundImage: url('a.png') -->\n# A\n"))
    (asset_id,) = deck.assets
    assert deck.slides[0].background == f"url({ASSET_SCHEME}{asset_id})"


def test_code_is_highlighted(write_deck: WriteDeck) -> None:
    """Fenced code gets Pygments spans and emphasised lines; code_css is set."""
    deck = load_deck(write_deck("```python {2}\nx = 1\ny = 2\n```\n\n```nosuchlang\n<b>\n```\n"))
    html = deck.slides[0].html
    assert '<div class="code"><pre>' in html
    assert '<span class="hll"><span class="n">y</span>' in html
    assert "&lt;b&gt;" in html
    assert ".code .k" in deck.code_css


def test_math_becomes_svg_and_dollars_survive(write_deck: WriteDeck) -> None:
    """$x$ and $$..$$ become SVG; prices, escapes and code stay text."""
    deck = load_deck(
        write_deck("$x^2$ costs $5 and $10, \\$y\\$ and `$z$`\n\n$$\n\\frac{a}{b}\n$$\n")
    )
    html = deck.slides[0].html
    assert html.count('<span class="math inline"><svg') == 1
    assert html.count('<div class="math display"><svg') == 1
    assert "costs $5 and $10, $y$ and <code>$z$</code>" in html


def test_math_off(write_deck: WriteDeck) -> None:
    """math: false leaves dollars alone."""
    deck = load_deck(write_deck("---\nmath: false\n---\n$x$\n"))
    assert deck.slides[0].html == "<p>$x$</p>"


def test_bad_math_is_a_warning_shown_as_code(write_deck: WriteDeck) -> None:
    """A formula ziamath cannot parse warns with its line and shows as code."""
    deck = load_deck(write_deck("# A\n\nsee $\\frac{a$ here\n"))
    assert "<code>$\\frac{a$</code>" in deck.slides[0].html
    (warning,) = deck.diagnostics
    assert warning.line == 3


def test_local_theme_is_confined_and_inlined(write_deck: WriteDeck, tmp_path: Path) -> None:
    """A ./theme.css is read, its url() images inlined; style is appended."""
    (tmp_path / "bg.png").write_bytes(PNG)
    (tmp_path / "my.css").write_text("section { background: url(bg.png); }\n")
    deck = load_deck(write_deck("---\ntheme: ./my.css\nstyle: 'h1 { color: red }'\n---\n# A\n"))
    assert 'url("data:image/png;base64,' in deck.theme_css
    assert deck.theme_css.rstrip().endswith("h1 { color: red }")
    assert deck.assets == {}


def test_missing_local_theme_is_an_error(write_deck: WriteDeck) -> None:
    """A missing .css theme names the front-matter line."""
    with pytest.raises(DeckError) as info:
        load_deck(write_deck("---\ntitle: x\ntheme: nope.css\n---\n# A\n"))
    assert info.value.line == 3 and "nope.css" in info.value.message


def test_unknown_theme_warns_and_falls_back(write_deck: WriteDeck) -> None:
    """An unknown theme name is a warning; the default theme is used."""
    deck = load_deck(write_deck("---\ntheme: sparkly\n---\n# A\n"))
    (warning,) = deck.diagnostics
    assert warning.line == 2 and "sparkly" in warning.message
    assert deck.meta.theme == "default"


def test_content_hash_follows_source_and_assets(write_deck: WriteDeck, tmp_path: Path) -> None:
    """Same input, same hash; a changed image changes it."""
    (tmp_path / "a.png").write_bytes(PNG)
    path = write_deck("# A\n![](a.png)\n")
    first = load_deck(path).content_hash
    assert len(first) == 16 and load_deck(path).content_hash == first
    (tmp_path / "a.png").write_bytes(PNG + b"\x01")
    assert load_deck(path).content_hash != first


def test_slide_text_and_tables(write_deck: WriteDeck) -> None:
    """Tables render; Slide.text is the plain text."""
    deck = load_deck(write_deck("# T &amp; *U*\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"))
    slide = deck.slides[0]
    assert "<table>" in slide.html
    assert slide.title == "T & U"
    assert slide.text == "T & U a b 1 2"


@pytest.fixture
def theme_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A themes/ folder of our own instead of the shipped one."""
    folder = tmp_path / "themes"
    folder.mkdir()
    (folder / "default.css").write_text("/* slidesvc-theme: pygments=default */\n.d {}\n")
    (folder / "dark.css").write_text("/* slidesvc-theme: pygments=github-dark */\n.k {}\n")
    monkeypatch.setattr("slidesvc.themes.themes_dir", lambda: folder)
    return folder


@pytest.mark.parametrize(
    ("name", "theme", "css"),
    [("dark", "dark", ".k {}"), ("gaia", "dark", ".k {}"), ("uncover", "default", ".d {}")],
)
def test_theme_names_and_marp_names(
    write_deck: WriteDeck, theme_folder: Path, name: str, theme: str, css: str
) -> None:
    """Named themes load from themes/; Marp's names map to slidesvc themes."""
    deck = load_deck(write_deck(f"---\ntheme: {name}\n---\n# A\n", "deck/talk.md"))
    assert deck.meta.theme == theme
    assert css in deck.theme_css
    assert deck.diagnostics == ()


def test_marp_name_prefers_a_real_theme_of_that_name(
    write_deck: WriteDeck, theme_folder: Path
) -> None:
    """A themes/gaia.css, when present, wins over the mapping."""
    (theme_folder / "gaia.css").write_text(".g {}\n")
    deck = load_deck(write_deck("<!-- theme: gaia -->\n# A\n", "deck/talk.md"))
    assert deck.meta.theme == "gaia" and ".g {}" in deck.theme_css


def test_code_css_follows_the_theme(write_deck: WriteDeck, theme_folder: Path) -> None:
    """The theme's first-line comment picks the Pygments style; no code, no CSS."""
    dark = load_deck(write_deck("---\ntheme: dark\n---\n```py\nx\n```\n", "deck/a.md"))
    plain = load_deck(write_deck("```py\nx\n```\n", "deck/b.md"))
    assert dark.code_css and plain.code_css and dark.code_css != plain.code_css
    assert load_deck(write_deck("# no code\n", "deck/c.md")).code_css == ""


def test_local_theme_outside_the_deck_folder(write_deck: WriteDeck, tmp_path: Path) -> None:
    """A ../theme.css escape is an error on the theme line."""
    (tmp_path / "evil.css").write_text("h1 {}")
    with pytest.raises(DeckError) as info:
        load_deck(write_deck("---\ntheme: ../evil.css\n---\n# A\n", "deck/talk.md"))
    assert info.value.line == 2 and "outside" in info.value.message


def test_raw_html_images_are_resolved(write_deck: WriteDeck, tmp_path: Path) -> None:
    """<img src> in raw HTML becomes an asset reference too."""
    (tmp_path / "a.png").write_bytes(PNG)
    deck = load_deck(write_deck('<div><img src="a.png" width="10"></div>\n'))
    (asset_id,) = deck.assets
    assert f'<img src="{ASSET_SCHEME}{asset_id}" width="10">' in deck.slides[0].html


def test_header_footer_from_front_matter(write_deck: WriteDeck) -> None:
    """header/footer/class in front matter apply to every slide until changed."""
    deck = load_deck(
        write_deck("---\nheader: '*Intro*'\nclass: invert\n---\n# A\n---\n<!-- header: '' -->\n# B")
    )
    a, b = deck.slides
    assert a.header_html == "<em>Intro</em>" and a.classes == ("invert",)
    assert b.header_html == "" and b.classes == ("invert",)


def test_several_errors_are_collected(write_deck: WriteDeck) -> None:
    """The first error is raised; the others and the warnings come along."""
    with pytest.raises(DeckError) as info:
        load_deck(
            write_deck("---\nbogus: 1\n---\n![](a.png)\n---\n![](b.png)\n<!-- paginate: often -->")
        )
    error = info.value
    assert (error.line, error.message) == (4, "image not found: a.png")
    assert [(d.line, d.severity) for d in error.others] == [
        (6, "error"),
        (7, "error"),
        (2, "warning"),
    ]


def test_style_urls_are_inlined_and_confined(write_deck: WriteDeck, tmp_path: Path) -> None:
    """url() in the deck's style is inlined; a missing file is an error on its line."""
    (tmp_path / "a.png").write_bytes(PNG)
    deck = load_deck(write_deck("---\nstyle: 'section { background: url(a.png) }'\n---\n# A\n"))
    assert 'url("data:image/png;base64,' in deck.theme_css
    with pytest.raises(DeckError) as info:
        load_deck(write_deck("---\ntitle: x\nstyle: 'h1 { background: url(b.png) }'\n---\n# A\n"))
    assert info.value.line == 3 and "b.png" in info.value.message


def test_big_decks_convert_in_two_processes_with_the_same_result(
    write_deck: WriteDeck, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The forked half gives exactly the slides, findings and assets of one process."""
    (tmp_path / "a.png").write_bytes(PNG)
    (tmp_path / "b.gif").write_bytes(GIF)
    slides = [
        f"# S{i}\n\n* x\n* y\n\n```python\nx = {i}\n```\n\n![](a.png)\n"
        + ("![](b.gif)\n![](https://example.org/r.png)\n$\\frac{a$\n" if i % 3 else "")
        + f"\n???\nnote {i}\n"
        for i in range(12)
    ]
    path = write_deck("\n---\n".join(slides))
    serial = load_deck(path)
    forks = request.getfixturevalue("parallel_parse")
    parallel = load_deck(path)
    assert len(forks) == 1
    assert parallel.slides == serial.slides
    assert parallel.assets == serial.assets and list(parallel.assets) == list(serial.assets)
    assert parallel.diagnostics == serial.diagnostics
    assert parallel.code_css == serial.code_css and parallel.content_hash == serial.content_hash
    assert sum("remote image" in d.message for d in parallel.diagnostics) == 1


def test_percent_encoded_and_angle_bracket_paths(write_deck: WriteDeck, tmp_path: Path) -> None:
    """my%20pic.png and <my pic.png> both find "my pic.png"."""
    (tmp_path / "my pic.png").write_bytes(PNG)
    deck = load_deck(write_deck("![](my%20pic.png)\n![](<my pic.png>)\n"))
    (asset_id,) = deck.assets
    assert deck.slides[0].html.count(f"{ASSET_SCHEME}{asset_id}") == 2


def test_a_marp_deck_compiles_unchanged() -> None:
    """tests/golden/marp.md: Marp's front matter, directives and bg keywords all land."""
    deck = load_deck(Path(__file__).parent / "golden" / "marp.md")
    title, agenda, split = deck.slides
    assert deck.meta.title == "A Marp deck" and deck.meta.paginate
    assert title.classes == ("lead",) and agenda.classes == ()
    assert all(s.paginate and s.footer_html == "Acme <em>Corp</em>" for s in deck.slides)
    assert [b.size for b in title.backgrounds] == ["cover"] and title.bg_split == ""
    assert [b.size for b in split.backgrounds] == ["contain"]
    assert (split.bg_split, split.bg_split_size) == ("left", "40%")
    assert agenda.fragments == 6  # Intro, Why, How, Outro, first, second
    assert deck.diagnostics == ()


def test_a_failing_child_is_replaced_by_the_parent(
    write_deck: WriteDeck, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the forked half cannot send its result, the parent converts it itself."""
    import os
    import pickle

    from slidesvc import parse

    path = write_deck("\n---\n".join(f"# S{i}\n\n* a\n* b\n" for i in range(10)))
    serial = load_deck(path)

    def broken_dumps(*args: object, **kwargs: object) -> bytes:
        raise RuntimeError("the child cannot pickle")

    monkeypatch.setattr(parse, "PARALLEL_MIN_SLIDES", 4)
    monkeypatch.setattr(parse, "_can_fork", lambda: True)
    monkeypatch.setattr(pickle, "dumps", broken_dumps)
    children: list[int] = []
    real_waitpid = os.waitpid

    def recording_waitpid(pid: int, options: int) -> tuple[int, int]:
        result = real_waitpid(pid, options)
        children.append(os.waitstatus_to_exitcode(result[1]))
        return result

    monkeypatch.setattr(os, "waitpid", recording_waitpid)
    parallel = load_deck(path)
    assert children == [1]  # the child ran, failed, and was waited for
    assert parallel.slides == serial.slides
    assert parallel.diagnostics == serial.diagnostics
