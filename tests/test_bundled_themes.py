"""The bundled themes: settings line, shared rule block, documented properties, PDF-safe CSS."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from pygments.styles import get_all_styles

ROOT = Path(__file__).resolve().parents[1]

THEMES = sorted(p for p in (ROOT / "themes").glob("*.css") if not p.name.startswith("_"))
BASE = ROOT / "themes" / "_base.css"


def declared(css: str) -> dict[str, str]:
    """Custom properties set in the first `.slide { ... }` block (none if there is none)."""
    block = re.search(r"^\.slide \{(.*?)^\}", css, flags=re.DOTALL | re.MULTILINE)
    return dict(re.findall(r"(--[\w-]+):\s*([^;]+);", block.group(1))) if block else {}


def effective(theme: Path) -> dict[str, str]:
    """The properties a theme ends up with: the base defaults, then its own values."""
    return declared(BASE.read_text(encoding="utf-8")) | declared(theme.read_text(encoding="utf-8"))


def documented() -> set[str]:
    readme = (ROOT / "themes" / "README.md").read_text(encoding="utf-8")
    return set(re.findall(r"`(--[\w-]+)`", readme)) - {"--bg-split"}


def luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_promised_themes_exist() -> None:
    """default, dark, high-contrast and gaia ship with slidesvc."""
    assert {"default", "dark", "high-contrast", "gaia"} <= {p.stem for p in THEMES}


@pytest.mark.parametrize("theme", THEMES, ids=lambda p: p.stem)
def test_first_line_names_an_installed_pygments_style(theme: Path) -> None:
    """Line 1 is `/* slidesvc-theme: pygments=STYLE */` with a style Pygments has."""
    first = theme.read_text(encoding="utf-8").split("\n", 1)[0]
    match = re.fullmatch(r"/\* slidesvc-theme: pygments=([\w-]+) \*/", first)
    assert match is not None, first
    assert match.group(1) in set(get_all_styles())


@pytest.mark.parametrize("theme", THEMES, ids=lambda p: p.stem)
def test_sets_only_documented_properties(theme: Path) -> None:
    """A theme sets documented properties only; with the base, it has them all."""
    assert set(declared(theme.read_text(encoding="utf-8"))) <= documented()
    assert documented() <= set(effective(theme))
    assert len(documented()) >= 18


@pytest.mark.parametrize("theme", THEMES, ids=lambda p: p.stem)
def test_text_contrast(theme: Path) -> None:
    """Body text meets WCAG AA on its slide (AAA for high-contrast), inverted slides too."""
    props = effective(theme)
    needed = 7.0 if theme.stem == "high-contrast" else 4.5
    assert contrast(props["--slide-fg"], props["--slide-bg"]) >= needed
    assert contrast(props["--invert-fg"], props["--invert-bg"]) >= needed
    assert contrast(props["--heading-fg"], props["--slide-bg"]) >= needed


@pytest.mark.parametrize("theme", THEMES, ids=lambda p: p.stem)
def test_css_is_safe_for_the_slide_box(theme: Path) -> None:
    """No viewport units, 3D transforms, imports or external urls."""
    css = theme.read_text(encoding="utf-8")
    assert not re.search(r"\d(vh|vw|vmin|vmax)\b", css)
    assert not re.search(r"translate3d|perspective|rotate[XY]|matrix3d|translateZ", css)
    assert "@import" not in css
    assert "url(" not in css


@pytest.mark.parametrize("theme", THEMES, ids=lambda p: p.stem)
def test_weasyprint_reads_it_without_warnings(
    theme: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """WeasyPrint (the PDF engine) knows every property a theme uses."""
    import weasyprint

    body = (
        '<section class="slide lead"><header>h</header><div class="content"><h1>T</h1>'
        '<div class="code"><pre><span class="hll">x = 1\n</span></pre></div>'
        "<table><tr><td>1</td></tr></table><blockquote><p>q</p></blockquote></div>"
        '<footer>f</footer><span class="page-number">1</span></section>'
    )
    css = (
        theme.read_text(encoding="utf-8")
        + "\n@page{size:1280px 720px;margin:0}.slide{width:1280px;height:720px}"
    )
    with caplog.at_level(logging.WARNING, logger="weasyprint"):
        pdf = weasyprint.HTML(string=f"<style>{css}</style>{body}").write_pdf()
    assert pdf is not None and pdf.startswith(b"%PDF")
    assert [r.getMessage() for r in caplog.records if r.name.startswith("weasyprint")] == []
