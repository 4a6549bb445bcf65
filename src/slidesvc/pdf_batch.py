"""How render_pdf writes a batch of slides: lean, for the assembler to finish.

A batch PDF is an intermediate: `pdf_assemble` reads it back, keeps its pages
and replaces the font file of every font it can merge with one subset of the
original for the whole deck. So a batch is written with a classic
cross-reference table (pypdf reads that about twice as fast as compressed
object streams) and without subsetting the fonts the assembler will subset
again. These helpers work on WeasyPrint's objects duck-typed and import
nothing from it.
"""

from __future__ import annotations

import functools
from typing import Any


def plain_objects(document: Any, pdf: Any) -> None:
    """WeasyPrint finisher: write the batch with a plain cross-reference table.

    Content streams stay compressed; the small objects (pages, fonts,
    resources) are written as they are instead of packed into compressed
    object streams, which the assembler's pypdf reads about twice as fast.
    """
    write = pdf.write

    def without_object_streams(output: Any, version: Any, identifier: Any, compress: Any) -> Any:
        return write(output, version, identifier, compress=False)

    pdf.write = without_object_streams


def has_original(font: Any) -> bool:
    """Whether the assembler subsets this font once for the whole deck, from its
    original file (variable and bitmap fonts keep their subsets per batch)."""
    return not font.bitmap and "fvar" not in font.tables


class SubsetLater(dict[str, Any]):
    """``Document.fonts`` of a batch: WeasyPrint adds each font it draws with,
    and each one with an original gets `_clean_unless_merged` as its clean step."""

    def __setitem__(self, key: str, font: Any) -> None:
        if has_original(font):
            font.clean = functools.partial(_clean_unless_merged, font, font.clean)
        super().__setitem__(key, font)


def _clean_unless_merged(font: Any, clean: Any, to_unicode: Any, hinting: Any) -> None:
    """Stands in for WeasyPrint's ``Font.clean`` (its subsetting) in batches.

    The assembler replaces the font file of every font it merges with its own
    subset of the original, so subsetting it per batch is wasted work (about a
    tenth of a one-slide render): the batch keeps only the file's first bytes,
    which tell TrueType from CFF. Fonts with glyphs missing get a custom
    encoding and keep their batch subset, as do fonts in forms.
    """
    if font.missing or getattr(font, "used_in_forms", False):
        clean(to_unicode, hinting)
    else:
        font.file_content = font.file_content[:4]
