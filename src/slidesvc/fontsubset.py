"""Cut a font down to some glyph ids, keeping every glyph at its id.

The PDF assembler subsets each font once for the whole deck. HarfBuzz's
subsetter (the system library WeasyPrint already needs, reached through cffi)
does that in milliseconds; fontTools, about a hundred times slower, is the
fallback when the library cannot be loaded. Both keep glyph ids (the PDF's
CIDs), drop hinting and the tables a PDF viewer never reads, and cut the
glyph table after the last glyph used, as WeasyPrint itself does.
"""

from __future__ import annotations

import ctypes.util
import io
from functools import cache
from typing import Any

import cffi

_DROP_TABLES = (
    b"BASE", b"DSIG", b"EBDT", b"EBLC", b"EBSC", b"GPOS", b"GSUB", b"JSTF", b"LTSH",
    b"PCLT", b"SVG ",
)  # fmt: skip

_CDEF = """
typedef struct hb_blob_t hb_blob_t;
typedef struct hb_face_t hb_face_t;
typedef struct hb_set_t hb_set_t;
typedef struct hb_subset_input_t hb_subset_input_t;
typedef uint32_t hb_tag_t;
hb_blob_t *hb_blob_create(const char *data, unsigned int length, int mode,
                          void *user_data, void *destroy);
void hb_blob_destroy(hb_blob_t *blob);
const char *hb_blob_get_data(hb_blob_t *blob, unsigned int *length);
hb_face_t *hb_face_create(hb_blob_t *blob, unsigned int index);
void hb_face_destroy(hb_face_t *face);
hb_blob_t *hb_face_reference_blob(hb_face_t *face);
void hb_set_add(hb_set_t *set, uint32_t codepoint);
hb_tag_t hb_tag_from_string(const char *str, int len);
hb_subset_input_t *hb_subset_input_create_or_fail(void);
void hb_subset_input_destroy(hb_subset_input_t *input);
hb_set_t *hb_subset_input_set(hb_subset_input_t *input, int set_type);
void hb_subset_input_set_flags(hb_subset_input_t *input, unsigned int value);
hb_face_t *hb_subset_or_fail(hb_face_t *source, const hb_subset_input_t *input);
"""
_READONLY = 1
_NO_HINTING, _RETAIN_GIDS, _DESUBROUTINIZE = 0x1, 0x2, 0x4
_PASSTHROUGH, _NOTDEF_OUTLINE = 0x20, 0x40
_GLYPH_SET, _DROP_TABLE_SET = 0, 3


@cache
def _harfbuzz() -> tuple[cffi.FFI, Any] | None:
    ffi = cffi.FFI()
    ffi.cdef(_CDEF)
    name = ctypes.util.find_library("harfbuzz-subset")
    for candidate in (name, "libharfbuzz-subset.so.0", "libharfbuzz-subset.0.dylib"):
        if not candidate:
            continue
        try:
            return ffi, ffi.dlopen(candidate)
        except OSError:
            continue
    return None


def subset_font(data: bytes, index: int, gids: list[int]) -> bytes:
    """``data`` (font number ``index`` in it) keeping only ``gids``, ids unchanged."""
    hb = _harfbuzz()
    if hb is not None:
        result = _hb_subset(*hb, data, index, gids)
        if result:
            return result
    return _fonttools_subset(data, index, gids)


def _hb_subset(ffi: cffi.FFI, lib: Any, data: bytes, index: int, gids: list[int]) -> bytes:
    keep = ffi.from_buffer(data)
    blob = lib.hb_blob_create(keep, len(data), _READONLY, ffi.NULL, ffi.NULL)
    face = lib.hb_face_create(blob, index)
    todo = [face]
    try:
        flags = _RETAIN_GIDS | _PASSTHROUGH | _DESUBROUTINIZE | _NO_HINTING | _NOTDEF_OUTLINE
        first = _hb_run(ffi, lib, face, gids, flags, drop=True)
        if first == ffi.NULL:
            return b""
        todo.append(first)
        # Second pass: without RETAIN_GIDS, keeping 0..max, drops the empty tail.
        flags &= ~_RETAIN_GIDS
        second = _hb_run(ffi, lib, first, list(range(max(gids) + 1)), flags, drop=False)
        if second == ffi.NULL:
            return b""
        todo.append(second)
        out_blob = lib.hb_face_reference_blob(second)
        length = ffi.new("unsigned int *")
        pointer = lib.hb_blob_get_data(out_blob, length)
        result = bytes(ffi.buffer(pointer, length[0]))
        lib.hb_blob_destroy(out_blob)
        return result
    finally:
        for f in todo:
            lib.hb_face_destroy(f)
        lib.hb_blob_destroy(blob)
        del keep


def _hb_run(ffi: cffi.FFI, lib: Any, face: Any, gids: list[int], flags: int, *, drop: bool) -> Any:
    plan = lib.hb_subset_input_create_or_fail()
    if plan == ffi.NULL:
        return ffi.NULL
    try:
        glyphs = lib.hb_subset_input_set(plan, _GLYPH_SET)
        for gid in gids:
            lib.hb_set_add(glyphs, gid)
        if drop:
            tables = lib.hb_subset_input_set(plan, _DROP_TABLE_SET)
            for tag in _DROP_TABLES:
                lib.hb_set_add(tables, lib.hb_tag_from_string(tag, 4))
        lib.hb_subset_input_set_flags(plan, flags)
        return lib.hb_subset_or_fail(face, plan)
    finally:
        lib.hb_subset_input_destroy(plan)


def _fonttools_subset(data: bytes, index: int, gids: list[int]) -> bytes:
    from fontTools import subset
    from fontTools.ttLib import TTFont

    options = subset.Options()
    options.retain_gids = True
    options.passthrough_tables = True
    options.ignore_missing_glyphs = True
    options.hinting = False
    options.desubroutinize = True
    options.notdef_outline = True
    options.drop_tables += [t.decode() for t in _DROP_TABLES]
    font = TTFont(io.BytesIO(data), fontNumber=index, lazy=True)
    subsetter = subset.Subsetter(options)
    subsetter.populate(gids=gids)
    subsetter.subset(font)
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()
