"""LaTeX -> inline SVG at build time (ziamath), cached per formula.

ziamath is imported on the first formula only, so decks without math do not
pay for it. Glyphs are written as plain paths (no ``<symbol>``/``<use>``), so
two formulas on one page never share or clash on element ids, and WeasyPrint
draws them like the browser does. Sizes are converted to ``em`` so a formula
scales with the text around it, and inline formulas sit on the baseline.
"""

from __future__ import annotations

import re
import warnings
from functools import lru_cache

FONT_SIZE = 24.0
"""ziamath's rendering size in px; the SVG is rescaled to ``em`` against it."""

_SVG_OPEN = re.compile(
    r'^<svg (?P<attrs>[^>]*?)width="(?P<w>[\d.]+)" height="(?P<h>[\d.]+)" '
    r'viewBox="(?P<x>[-\d.]+) (?P<y>[-\d.]+) [\d.]+ [\d.]+"'
)


class MathError(Exception):
    """ziamath cannot typeset a formula."""


@lru_cache(maxsize=4096)
def render(latex: str, display: bool) -> str:
    """The SVG for ``latex`` (raises `MathError` when it cannot be typeset)."""
    # ziamath/ziafont load their fonts through the deprecated importlib.resources
    # API; that is their business, not a problem in the deck.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from ziamath.config import config
        from ziamath.zmath import Math

        config.svg2 = False
        config.math.color = "currentColor"
        try:
            svg: str = Math.fromlatex(latex, inline=not display).svg()
        # ziamath reports bad LaTeX with assorted exception types (even AssertionError).
        except Exception as exc:
            detail = str(exc) or "ziamath cannot parse it"
            raise MathError(detail) from None
    return _in_em(svg)


def _in_em(svg: str) -> str:
    """Width/height in em and a baseline-aligning vertical-align."""
    match = _SVG_OPEN.match(svg)
    if match is None:
        return svg
    width = float(match.group("w")) / FONT_SIZE
    height = float(match.group("h")) / FONT_SIZE
    depth = (float(match.group("h")) + float(match.group("y"))) / FONT_SIZE
    head = (
        f'<svg {match.group("attrs")}width="{width:.3f}em" height="{height:.3f}em" '
        f'style="vertical-align:{-depth:.3f}em" role="img" ' + svg[match.end("h") + 2 : match.end()]
    )
    return head + svg[match.end() :]
