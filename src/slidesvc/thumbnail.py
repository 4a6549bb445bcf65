"""Slide 1 as a PNG, rasterised from the deck's PDF (no browser, no Pillow).

pdfium draws the page; a dozen lines of zlib write the PNG, so the build
side needs no imaging library for the one picture oEmbed and index pages use.
"""

from __future__ import annotations

import struct
import zlib


def png_of_first_page(pdf: bytes, width: int = 640) -> bytes:
    """Render page 1 of `pdf` to a PNG `width` pixels wide."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    document = pdfium.PdfDocument(pdf)
    try:
        page = document[0]
        scale = width / page.get_width()
        bitmap = page.render(
            scale=scale, force_bitmap_format=pdfium_c.FPDFBitmap_BGR, rev_byteorder=True
        )
        buf, stride, row_len = bytes(bitmap.buffer), bitmap.stride, bitmap.width * 3
        rows = [buf[y * stride : y * stride + row_len] for y in range(bitmap.height)]
        return encode_png(rows, bitmap.width, bitmap.height)
    finally:
        document.close()


def encode_png(rows: list[bytes], width: int, height: int) -> bytes:
    """Encode 8-bit RGB rows as a PNG (filter type 0 on every row)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + row for row in rows)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )
