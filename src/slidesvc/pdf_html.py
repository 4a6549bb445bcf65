"""The HTML and CSS of a deck's print document (what WeasyPrint lays out).

Each slide becomes a fixed-size ``.pdf-page`` box holding the same
``<section class="slide">`` markup that render_html writes (images stay
``slidesvc-asset:`` URLs, for render_pdf's fetcher to serve), optionally
followed by a notes page. The stylesheet is the deck's theme, its code
colours, ``viewer/print.css`` and the page-size rules of the deck's aspect.
Standard library only.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources

from slidesvc.model import SLIDE_LINK_SCHEME, Background, Deck, Slide
from slidesvc.render_html import _slide

MEASURE_PAGES = 5
"""Slide pages are laid out this many slides tall, then cropped to one slide:
WeasyPrint drops what does not fit on a page, and the room below the slide
is where an overflow can be measured."""


def page_css(deck: Deck) -> str:
    w, h = deck.meta.width, deck.meta.height
    return (
        f"@page{{size:{w}px {h * MEASURE_PAGES}px;margin:0}}"
        f"@page notes{{size:{w}px {h}px;margin:0}}"
        f".pdf-notes{{page:notes}}"
        f".pdf-page{{width:{w}px;height:{h}px}}"
        f".pdf-page.pdf-notes{{height:auto;min-height:{h}px}}"
        f"section.slide{{width:{w}px;height:{h}px}}"
        f":root{{--w:{w}px;--h:{h}px}}"
    )


def stylesheet(deck: Deck) -> str:
    """All CSS of a deck's PDF: theme, deck style, code colours, print rules."""
    print_css = resources.files("slidesvc.viewer").joinpath("print.css").read_text("utf-8")
    return "\n".join((deck.theme_css, deck.code_css, print_css, page_css(deck)))


def _attr(value: str) -> str:
    return html.escape(value, quote=True)


class _AssetUrls:
    """render_html's image resolver, for print: ``slidesvc-asset:`` URLs stay as
    they are (the PDF fetcher serves them) instead of becoming data: URIs."""

    def resolve(self, text: str) -> str:
        return text

    def background(self, bg: Background) -> str:
        url = bg.url.replace('"', "%22")
        return (
            f'background-image:url("{url}");background-size:{bg.size};'
            f"background-position:{bg.position}"
        )


_SLIDE_LINK = re.compile(r'href="#(\d+)"')
_CELL_ALIGN = re.compile(r'<(t[hd]) style="text-align: (left|right|center);">')


def slide_section(slide: Slide, width: int) -> str:
    """One slide as render_html writes it (one source for the markup), notes
    left out, for print.

    The section has no ``id``: WeasyPrint shares one computed style between
    elements that match the same rules under the same parent style, unless
    an element has declarations of its own, which an ``id`` gives it (its
    anchor). With the id, no element of a slide shared a style with another
    slide's, and computing styles cost a third of the render. Links to a
    slide (``#N``) become `SLIDE_LINK_SCHEME` URIs instead, which
    pdf_assemble points at the slide's page.
    """
    section = _slide(slide, _AssetUrls(), False, width, anchor=False)  # type: ignore[arg-type]
    section = _SLIDE_LINK.sub(f'href="{SLIDE_LINK_SCHEME}\\1"', section)
    # Likewise a table's column alignment, a style attribute on every cell:
    # as a class (print.css gives it the attribute's precedence) it is shared.
    return _CELL_ALIGN.sub(r'<\1 class="pdf-align-\2">', section)


_CODE_BLOCK = re.compile(r'(<div class="code"><pre>)(.*?)(</pre></div>)', re.DOTALL)
_TOKEN = re.compile(r'<span class="([\w-]+)">([^<]*)</span>')
_SAME_CLASS = re.compile(r'<span class="([\w-]+)">([^<]*)</span><span class="\1">([^<]*)</span>')
_RULE = re.compile(r"([^{}]*)\{([^{}]*)\}")
_BARE_SPAN = re.compile(r"(?<![\w.#-])span(?![\w.-])")
_COLOR_ONLY = re.compile(r"\s*color\s*:[^;]*;?\s*")


@lru_cache(maxsize=16)
def _token_styles(css: str) -> dict[str, bool] | None:
    """Per class named in ``css``: whether its rules only set ``color``.

    None when a selector targets ``span`` elements without a class (then
    every Pygments span may be styled, and they stay)."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.DOTALL)
    styles: dict[str, bool] = {}
    for selector, declarations in _RULE.findall(css):
        if _BARE_SPAN.search(selector):
            return None
        color_only = _COLOR_ONLY.fullmatch(declarations) is not None
        for name in re.findall(r"\.([\w-]+)", selector):
            styles[name] = styles.get(name, True) and color_only
    return styles


def _lean_code(body: str, css: str) -> str:
    """Fewer boxes for Pygments blocks in print: drop spans of classes the CSS
    never styles, colour-only spans around whitespace and the empty first span,
    and merge neighbouring spans of one class. The text and its look stay."""
    styles = _token_styles(css)
    if styles is None or '<div class="code"><pre>' not in body:
        return body

    def token(match: re.Match[str]) -> str:
        name, text = match[1], match[2]
        if name not in styles or (styles[name] and not text.strip()):
            return text
        return match[0]

    def block(match: re.Match[str]) -> str:
        code = match[2].replace("<span></span>", "")
        code = _TOKEN.sub(token, code)
        while True:
            merged = _SAME_CLASS.sub(r'<span class="\1">\2\3</span>', code)
            if merged == code:
                break
            code = merged
        return match[1] + code + match[3]

    return _CODE_BLOCK.sub(block, body)


def page_body(slide: Slide, width: int, notes: bool, css: str = "") -> str:
    """A slide's page (and notes page) in the print document; with the deck's
    ``css``, code blocks are simplified (see `_lean_code`)."""
    section = slide_section(slide, width)
    if css:
        section = _lean_code(section, css)
    body = f'<div class="pdf-page" data-page="{slide.number}">{section}</div>'
    if notes and slide.notes_html:
        title = f"Slide {slide.number}" + (f" · {html.escape(slide.title)}" if slide.title else "")
        body += (
            f'<div class="pdf-page pdf-notes" data-page="{slide.number}n">'
            f'<section class="notes-page"><h2>{title}</h2>'
            f'<div class="notes-body">{slide.notes_html}</div></section></div>'
        )
    return body


def document(lang: str, bodies: Sequence[str]) -> str:
    return (
        f'<!doctype html><html lang="{_attr(lang)}"><head><meta charset="utf-8"></head>'
        f'<body><main class="deck">{"".join(bodies)}</main></body></html>'
    )
