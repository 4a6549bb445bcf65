"""The index of a folder of decks, and short error pages.

One HTML page in the colours of the default theme: a card per deck with its
slide-1 thumbnail, title, author, date, slide count, and links to view it,
download its PDF, and copy an embed snippet (iframe HTML). The publisher's
front door serves it at ``/``; a static site build writes it as
``SITE/index.html`` (without embed snippets: a static host has no ``/embed``).
Its only script is the copy button's, allowed by hash in a strict CSP;
without JavaScript the snippet is still a selectable text field.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DeckSummary:
    """One deck as the index shows it."""

    slug: str
    path: Path
    title: str
    author: str = ""
    date: str = ""
    description: str = ""
    slides: int = 0
    width: int = 1280
    height: int = 720
    content_hash: str = ""
    error: str = ""
    """``file:line: message`` when the deck does not compile."""
    loading: bool = False
    """True until the first parse has finished."""


_COPY_JS = (
    "document.addEventListener('click',e=>{const b=e.target.closest('button[data-copy]');"
    "if(!b)return;const t=document.getElementById(b.dataset.copy);t.select();"
    "navigator.clipboard.writeText(t.value).then(()=>{b.textContent='Copied';"
    "setTimeout(()=>{b.textContent='Copy'},1500)},()=>{})});"
)
_COPY_HASH = base64.b64encode(hashlib.sha256(_COPY_JS.encode()).digest()).decode()

CSP = (
    "default-src 'none'; "
    f"script-src 'sha256-{_COPY_HASH}'; "
    "style-src 'unsafe-inline'; img-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
"""The Content-Security-Policy of every page the front door makes itself."""
_META_CSP = CSP.replace("; frame-ancestors 'none'", "")  # ignored (and warned about) in <meta>

_STYLE = """
:root{--fg:#24292f;--muted:#6e7781;--accent:#0a66c2;--bg:#f6f8fa;--card:#fff;--line:#d0d7de;
--font:system-ui,"Segoe UI",Roboto,"Helvetica Neue","Noto Sans","Liberation Sans",
"DejaVu Sans",Arial,sans-serif}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 var(--font);background:var(--bg);color:var(--fg)}
main{max-width:72rem;margin:0 auto;padding:2.5rem 1.25rem}
h1{font-size:2rem;margin:0 0 .25rem}h1+p{color:var(--muted);margin:0 0 2rem}
a{color:var(--accent)}
ul.decks{list-style:none;padding:0;margin:0;display:grid;gap:1.25rem;
grid-template-columns:repeat(auto-fill,minmax(20rem,1fr))}
.card{background:var(--card);border:1px solid var(--line);border-radius:.6rem;overflow:hidden;
display:flex;flex-direction:column}
.thumb{display:block;aspect-ratio:16/9;background:linear-gradient(135deg,#eaeef2,#f6f8fa);
border-bottom:1px solid var(--line);overflow:hidden;text-decoration:none}
.thumb img{width:100%;height:100%;object-fit:contain;display:block}
.body{padding:1rem 1.25rem 1.25rem;display:flex;flex-direction:column;gap:.35rem;flex:1}
.title{font-size:1.15rem;font-weight:600;color:var(--fg);text-decoration:none}
.title:hover{color:var(--accent)}
.meta,.desc{margin:0;color:var(--muted);font-size:.92rem}
.links{margin:.4rem 0 0;display:flex;gap:1rem;flex-wrap:wrap;align-items:center}
details summary{cursor:pointer;color:var(--accent)}
details .snippet{display:flex;gap:.5rem;margin-top:.5rem}
textarea{flex:1;font:12px/1.4 ui-monospace,Menlo,Consolas,"DejaVu Sans Mono",monospace;
border:1px solid var(--line);border-radius:.3rem;padding:.4rem;resize:vertical;min-height:4.5rem}
button{font:inherit;font-size:.85rem;border:1px solid var(--line);background:var(--bg);
border-radius:.3rem;padding:.2rem .7rem;cursor:pointer;align-self:flex-start}
.error{color:#cf222e;font:13px/1.4 ui-monospace,Menlo,Consolas,monospace;
white-space:pre-wrap;margin:0}
.empty{color:var(--muted)}
"""


def embed_snippet(summary: DeckSummary, base_url: str, width: int = 640) -> str:
    """The iframe HTML a partner site pastes to embed the deck."""
    height = round(width * summary.height / summary.width) if summary.width else 360
    src = html.escape(f"{base_url}{summary.slug}/embed", quote=True)
    title = html.escape(summary.title, quote=True)
    return (
        f'<iframe src="{src}" width="{width}" height="{height}" title="{title}" '
        'style="border:0" allow="fullscreen" loading="lazy"></iframe>'
    )


def _card(s: DeckSummary, base_url: str, *, embed: bool, thumbnails: bool) -> str:
    esc = html.escape
    slug = esc(s.slug, quote=True)
    if s.error:
        return (
            f'<li class="card" id="deck-{slug}"><div class="body">'
            f'<span class="title">{esc(s.title)}</span>'
            f'<p class="error">{esc(s.error)}</p></div></li>'
        )
    pdf = f'<a href="{slug}/deck.pdf">PDF</a>' if thumbnails else ""
    facts = [s.author, s.date, "…" if s.loading else f"{s.slides} slide{'s' * (s.slides != 1)}"]
    meta = " · ".join(esc(x) for x in facts if x)
    desc = f'<p class="desc">{esc(s.description)}</p>' if s.description else ""
    thumb = (
        ""
        if s.loading or not thumbnails
        else (
            f'<img src="{slug}/thumbnail.png" alt="" loading="lazy" '
            f'width="{s.width}" height="{s.height}">'
        )
    )
    snippet = esc(embed_snippet(s, base_url), quote=True)
    share = (
        f'<details><summary>Embed</summary><div class="snippet">'
        f'<textarea id="embed-{slug}" readonly rows="3" aria-label="Embed HTML">'
        f"{snippet}</textarea>"
        f'<button type="button" data-copy="embed-{slug}">Copy</button></div></details>'
        if embed
        else ""
    )
    return (
        f'<li class="card" id="deck-{slug}">'
        + (
            f'<a class="thumb" href="{slug}/" tabindex="-1" aria-hidden="true">{thumb}</a>'
            if thumbnails
            else ""
        )
        + f'<div class="body"><a class="title" href="{slug}/">{esc(s.title)}</a>'
        f'<p class="meta">{meta}</p>{desc}'
        f'<p class="links"><a href="{slug}/">View</a>{pdf}</p>{share}'
        "</div></li>"
    )


def render_index(
    summaries: Iterable[DeckSummary],
    base_url: str,
    title: str = "Talks",
    *,
    static: bool = False,
    pdfs: bool = True,
) -> str:
    """The front page: every deck of the folder. `static`: a file for a static
    host (CSP in a ``<meta>``, no embed snippets); `pdfs`: the decks have a PDF
    and a thumbnail next to them."""
    cards = [
        _card(s, base_url, embed=not static, thumbnails=pdfs)
        for s in sorted(summaries, key=lambda s: s.slug)
    ]
    body = (
        f'<ul class="decks">{"".join(cards)}</ul>'
        if cards
        else '<p class="empty">No decks yet: add a <code>.md</code> file to the folder.</p>'
    )
    count = f"{len(cards)} deck{'s' * (len(cards) != 1)}"
    csp = f'<meta http-equiv="Content-Security-Policy" content="{_META_CSP}">' if static else ""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'{csp}<meta name="generator" content="slidesvc"><title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body><main>"
        f"<h1>{html.escape(title)}</h1><p>{count}</p>{body}</main>"
        f"<script>{_COPY_JS}</script></body></html>\n"
    )


def render_message(title: str, message: str, home: str = "/") -> str:
    """A short page for 404 and 503 answers."""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body><main>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>"
        f'<p><a href="{html.escape(home, quote=True)}">All talks</a></p></main></body></html>\n'
    )
