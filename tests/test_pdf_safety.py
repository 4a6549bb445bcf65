"""The PDF renderer reads nothing outside the deck's folder and fetches nothing remote."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from pdf_helpers import all_objects, decoded_bytes, make_deck, page_texts, reader, render_isolated

from slidesvc.errors import Diagnostic, RenderError
from slidesvc.render_pdf import render_pdf

SECRET = "TOPSECRET-7f3a9c"


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        _Recorder.hits.append(self.path)
        self.send_response(302)
        self.send_header("Location", "file:///etc/passwd")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    """A local HTTP server that records every request it gets (and redirects it)."""
    _Recorder.hits = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A file next to (not inside) the deck's folder."""
    path = tmp_path / "secret.txt"
    path.write_text(f"{SECRET}\n", encoding="utf-8")
    return path


def _render(tmp_path: Path, html: str, **kwargs: object) -> tuple[bytes, list[Diagnostic]]:
    deck = make_deck(tmp_path / "deck", ["<h1>Before</h1>", f"<h1>Attack</h1>{html}"], **kwargs)  # type: ignore[arg-type]
    found: list[Diagnostic] = []
    pdf = render_pdf(deck, cache_dir=tmp_path / "cache", jobs=1, diagnostics=found)
    return pdf, found


def _assert_clean(pdf: bytes, *needles: str) -> None:
    """Two pages, no embedded file, no leaked text anywhere in the file."""
    assert len(reader(pdf).pages) == 2
    raw = decoded_bytes(pdf)
    assert b"/EmbeddedFile" not in raw and b"/FileAttachment" not in raw
    for obj in all_objects(pdf):
        if hasattr(obj, "get"):
            assert obj.get("/Type") not in ("/EmbeddedFile", "/Filespec")
    text = " ".join(page_texts(pdf))
    for needle in (SECRET, "root:x:0:0", *needles):
        assert needle not in text
        assert needle.encode() not in raw


def _assert_refused(found: list[Diagnostic], url_part: str) -> None:
    lines = [d for d in found if url_part in d.message]
    assert lines, f"no warning about {url_part}: {found}"
    assert all(d.line == 21 and d.severity == "warning" for d in lines)  # slide 2's line
    assert all(d.message.startswith("slide 2: refused to load") for d in lines)


@pytest.mark.parametrize(
    ("html", "url_part"),
    [
        ('<img src="file:///etc/passwd">', "file:///etc/passwd"),
        ('<object data="file:///etc/passwd" type="image/png"></object>', "file:///etc/passwd"),
        ("<style>@import url(file:///etc/hosts);</style>", "file:///etc/hosts"),
        (
            "<style>@font-face{font-family:Z;src:url(file:///dev/zero)}"
            " p{font-family:Z}</style><p>zero</p>",
            "file:///dev/zero",
        ),
        (
            '<svg width="100" height="100"><image href="file:///etc/passwd" width="100" '
            'height="100"/></svg>',
            "file:///etc/passwd",
        ),
        ('<div style="background:url(ftp://example.org/x.png);height:50px"></div>', "ftp://"),
    ],
)
def test_local_files_outside_the_folder_are_refused(
    tmp_path: Path, secret: Path, html: str, url_part: str
) -> None:
    """file: URLs outside the deck's folder, devices and other schemes are refused."""
    pdf, found = _render(tmp_path, html)
    _assert_clean(pdf)
    _assert_refused(found, url_part)


def test_secret_next_to_the_deck_is_refused(tmp_path: Path, secret: Path) -> None:
    """A relative path that climbs out of the folder is refused."""
    html = f'<img src="../{secret.name}"><link rel="attachment" href="../{secret.name}">'
    pdf, found = _render(tmp_path, html)
    _assert_clean(pdf)
    _assert_refused(found, secret.name)


def test_symlink_out_of_the_folder_is_refused(tmp_path: Path, secret: Path) -> None:
    """A symlink inside the folder that points outside is resolved, then refused."""
    (tmp_path / "deck").mkdir()
    (tmp_path / "deck" / "innocent.css").symlink_to(secret)
    (tmp_path / "deck" / "zero.woff").symlink_to("/dev/zero")
    html = (
        "<style>@import url(innocent.css);@font-face{font-family:Z;src:url(zero.woff)}</style>"
        '<p style="font-family:Z">x</p>'
    )
    pdf, found = _render(tmp_path, html)
    _assert_clean(pdf)
    _assert_refused(found, "innocent.css")
    _assert_refused(found, "zero.woff")


def test_attachments_never_reach_the_pdf(tmp_path: Path) -> None:
    """Even a file inside the folder is not attached: the PDF has no /EmbeddedFile."""
    (tmp_path / "deck").mkdir()
    (tmp_path / "deck" / "notes.txt").write_text(f"{SECRET} inside", encoding="utf-8")
    html = '<link rel="attachment" href="notes.txt"><a rel="attachment" href="notes.txt">file</a>'
    pdf, _ = _render(tmp_path, html)
    _assert_clean(pdf)


def test_network_is_never_touched(tmp_path: Path, server: str) -> None:
    """http(s) to metadata endpoints, localhost or anywhere: refused before connecting."""
    html = (
        f'<img src="{server}/img.png">'
        f'<div style="background:url(http://169.254.169.254/latest/meta-data/);height:9px"></div>'
        f"<style>@import url({server}/style.css);</style>"
        f'<object data="{server}/object" type="image/png"></object>'
        f'<svg width="10" height="10"><image href="{server}/svg.png" width="10" height="10"/></svg>'
        f'<link rel="attachment" href="{server}/attach">'
    )
    pdf, found = _render(tmp_path, html)
    _assert_clean(pdf)
    assert _Recorder.hits == []
    _assert_refused(found, "169.254.169.254")
    _assert_refused(found, f"{server}/img.png")
    _assert_refused(found, f"{server}/style.css")


def test_theme_css_refusals_are_reported_against_the_deck(tmp_path: Path, server: str) -> None:
    """A remote URL in the theme or deck style is refused and reported (line 0)."""
    pdf, found = _render(
        tmp_path,
        "<p>x</p>",
        theme_css=f"section.slide{{background:url({server}/bg.png)}}",
    )
    _assert_clean(pdf)
    assert _Recorder.hits == []
    assert any(d.line == 0 and f"{server}/bg.png" in d.message for d in found)


def test_files_inside_the_folder_are_allowed(tmp_path: Path) -> None:
    """The fetcher is confined, not closed: in-folder stylesheets still apply."""
    (tmp_path / "deck").mkdir()
    (tmp_path / "deck" / "extra.css").write_text("p.mark::after{content:'from-extra-css'}")
    pdf, found = _render(tmp_path, '<style>@import url(extra.css);</style><p class="mark">x</p>')
    assert found == []
    assert "from-extra-css" in page_texts(pdf)[1]


@pytest.mark.slow
@pytest.mark.parametrize(
    "html",
    [
        "<style>html, section.slide, p {font-size: 1e9px}</style><p>huge text</p>",
        "<div>" * 10_000 + "deep" + "</div>" * 10_000,
    ],
    ids=["font-size-bomb", "nested-divs"],
)
def test_resource_bombs_neither_hang_nor_leak(tmp_path: Path, html: str) -> None:
    """Absurd sizes and nesting: a PDF or a clear RenderError, within the time limit."""
    deck = make_deck(tmp_path / "deck", ["<h1>Before</h1>", f"<h1>Bomb</h1>{html}"])
    started = time.monotonic()
    try:
        pdf = render_isolated(
            deck, timeout=60, memory_mb=1024, cache_dir=tmp_path / "cache", jobs=1
        )
    except RenderError as exc:
        message = str(exc)
        assert "Traceback" not in message
        assert message.startswith(("slide 2", "PDF rendering"))
    else:
        _assert_clean(pdf)
    assert time.monotonic() - started < 75
