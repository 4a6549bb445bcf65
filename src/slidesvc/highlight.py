"""Code blocks highlighted at build time with Pygments.

``parse_info`` reads a fence's info string (language, ``{2,4-5}`` or
``hl_lines="2 3"``); ``highlight`` returns ``<div class="code"><pre>...``
with Pygments' classes and ``<span class="hll">`` for emphasised lines, and
plain escaped text for unknown languages (no error: a typo in a language
name should not stop a talk). Pygments is imported on the first code block,
and lexers, formatters and results are cached.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from typing import Any

_HL_BRACES = re.compile(r"\{\s*([\d,\s-]+)\}")
_HL_ATTR = re.compile(r"""hl_lines\s*=\s*["']([\d\s,-]+)["']""")


def parse_info(info: str) -> tuple[str, tuple[int, ...]]:
    """Language and emphasised lines from a fence's info string."""
    info = info.strip()
    spec = _HL_BRACES.search(info) or _HL_ATTR.search(info)
    lines: set[int] = set()
    if spec:
        for part in re.split(r"[,\s]+", spec.group(1).strip()):
            low, _, high = part.partition("-")
            if low.isdigit() and (not high or high.isdigit()):
                lines.update(range(int(low), int(high or low) + 1))
        info = info[: spec.start()] + info[spec.end() :]
    words = info.replace("{", " ").replace("}", " ").split()
    lang = words[0].lstrip(".").lower() if words else ""
    return lang, tuple(sorted(lines))


@lru_cache(maxsize=256)
def _lexer(lang: str) -> Any:
    if not lang:
        return None
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    try:
        return get_lexer_by_name(lang, stripnl=False, ensurenl=True)
    except ClassNotFound:
        return None


@lru_cache(maxsize=64)
def _formatter(hl_lines: tuple[int, ...]) -> Any:
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(cssclass="code", hl_lines=list(hl_lines))


@lru_cache(maxsize=2048)
def highlight(code: str, lang: str, hl_lines: tuple[int, ...] = ()) -> str:
    """``<div class="code"><pre>...`` for a code block; plain text for unknown languages."""
    lexer = _lexer(lang)
    if lexer is None:
        if not hl_lines:  # the common plain case needs no Pygments at all
            return f'<div class="code"><pre><span></span>{html.escape(code, False)}\n</pre></div>'
        from pygments.lexers.special import TextLexer

        lexer = TextLexer(stripnl=False, ensurenl=True)
    from pygments import highlight as pygments_highlight

    result: str = pygments_highlight(code, lexer, _formatter(hl_lines))
    return result.rstrip("\n")


def code_css(style: str) -> str:
    """Pygments CSS for ``.code`` blocks in ``style`` (raises ValueError if unknown)."""
    from pygments.formatters import HtmlFormatter
    from pygments.util import ClassNotFound

    try:
        css: str = HtmlFormatter(style=style, cssclass="code").get_style_defs(".code")
    except ClassNotFound:
        raise ValueError(style) from None
    return css
