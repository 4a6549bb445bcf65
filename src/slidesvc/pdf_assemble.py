"""Join rendered slide pages into the deck's PDF (pypdf and fontTools, no WeasyPrint).

Pages come from several batch PDFs, each with its own subset of every font.
WeasyPrint subsets with glyph ids kept (CID = glyph id, ``/Identity-H``), so
the subsets of one font are compatible: for every font we know the original
of (see `pdf_cache`), the assembler takes the union of the glyphs all pages
use, subsets the original once, and points every page at that one font, with
merged widths and ``ToUnicode`` map. Fonts it cannot merge (no original,
custom encodings, bitmap fonts) are copied per batch, which is still correct.
Then it adds the outline and the metadata, points links to slides
(`SLIDE_LINK_SCHEME`) at their pages, drops attachments and other internal
link annotations, and writes with a content-derived ``/ID`` and no clock, so
the same pages always give the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    ByteStringObject,
    DecodedStreamObject,
    DictionaryObject,
    FloatObject,
    IndirectObject,
    NameObject,
    NumberObject,
    RectangleObject,
    TextStringObject,
)

from slidesvc.fontsubset import subset_font
from slidesvc.model import SLIDE_LINK_SCHEME
from slidesvc.pdf_cache import PageCache

_MERGE_SALT = b"slidesvc-font-merge-1"
_BFCHAR_RE = re.compile(rb"<([0-9a-fA-F]{1,8})>\s*<([0-9a-fA-F]*)>")


@dataclass(frozen=True)
class PageRef:
    """One output page: a page of a cached batch PDF."""

    batch: str
    page: int
    fonts: dict[str, str] | None = None
    """The batch's font resource names -> saved original font files."""
    height: float = 0.0
    """Keep only the top ``height`` pt of the page (slides are laid out taller)."""


@dataclass(frozen=True)
class Metadata:
    """The document information dictionary."""

    title: str = ""
    author: str = ""
    subject: str = ""
    creator: str = ""
    producer: str = ""
    lang: str = ""
    date: str = ""
    """``D:YYYYMMDDHHmmSS+00'00'``, or empty for none (never the clock)."""


@dataclass
class _FontGroup:
    """Everything the pages say about one font (same name, same original file)."""

    name: str
    original: str
    cid_font: DictionaryObject
    descriptor: DictionaryObject
    file_key: str
    widths: dict[int, Any] = field(default_factory=dict)
    to_unicode: dict[int, bytes] = field(default_factory=dict)
    reference: IndirectObject | None = None


def assemble(
    pages: Sequence[PageRef],
    *,
    cache: PageCache,
    outline: Sequence[tuple[str, int]] = (),
    metadata: Metadata | None = None,
    slide_pages: Sequence[int] = (),
) -> bytes:
    """The PDF of ``pages`` in order, with fonts merged, outline and metadata;
    ``slide_pages[n - 1]`` is the index of slide n's page, for links to it."""
    readers: dict[str, PdfReader] = {}
    for ref in pages:
        if ref.batch not in readers:
            readers[ref.batch] = _reader(cache, ref.batch)
    groups = _collect_fonts(pages, readers)

    writer = PdfWriter()
    unique = {(g.name, g.original): g for g in groups.values()}
    for _, group in sorted(unique.items()):
        group.reference = _write_font(writer, group, cache)
    by_batch: dict[str, dict[str, _FontGroup]] = {}
    for (batch, name), group in groups.items():
        by_batch.setdefault(batch, {})[name] = group
    images: dict[bytes, IndirectObject] = {}
    for ref in pages:
        page = readers[ref.batch].pages[ref.page]
        resources = page.get("/Resources")
        _point_fonts_at(_font_dict(resources), by_batch.get(ref.batch, {}))
        _share_images(resources, writer, images, set())
        _clean_annotations(page)
        added = writer.add_page(page)
        if ref.height:
            _crop_top(added, ref.height)
    _link_slides(writer, slide_pages)

    for title, index in outline:
        writer.add_outline_item(title=title, page_number=index)
    if metadata is not None:
        _add_metadata(writer, metadata)
    digest = hashlib.sha256()
    for ref in pages:
        digest.update(f"{ref.batch}:{ref.page};".encode())
    digest.update(repr(metadata).encode())
    file_id = ByteStringObject(digest.digest()[:16])
    writer._ID = ArrayObject([file_id, file_id])
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


_PRELOADED: dict[str, PdfReader] = {}
_PRELOADED_IN = 0
"""The process that parsed `_PRELOADED`; only its forks may use them."""


def preload_batches(cache: PageCache, names: Iterable[str]) -> None:
    """Parse these batch PDFs now, every object their pages use, in a process
    that forks renders (and never assembles): its forks assemble from these
    readers instead of reading the files again. Assembling changes the readers
    it uses, so each fork uses its own copy, once; this process never does."""
    global _PRELOADED_IN
    kept: dict[str, PdfReader] = {}
    for name in sorted(names):
        reader = _PRELOADED.get(name)
        if reader is None:
            try:
                reader = PdfReader(io.BytesIO(cache.batch_path(name).read_bytes()))
            except OSError:
                continue  # pruned meanwhile: a fork will find it missing too
            seen: set[int] = set()
            for page in reader.pages:
                _resolve(page, seen)
        kept[name] = reader
    _PRELOADED.clear()
    _PRELOADED.update(kept)
    _PRELOADED_IN = os.getpid()


def _resolve(obj: Any, seen: set[int]) -> None:
    """Parse every object ``obj`` refers to (pypdf reads them lazily)."""
    if isinstance(obj, IndirectObject):
        if obj.idnum in seen:
            return
        seen.add(obj.idnum)
        obj = obj.get_object()
    if isinstance(obj, DictionaryObject):
        for key, value in obj.items():
            if key != "/Parent":
                _resolve(value, seen)
    elif isinstance(obj, ArrayObject):
        for value in obj:
            _resolve(value, seen)


def _reader(cache: PageCache, name: str) -> PdfReader:
    if _PRELOADED_IN not in (0, os.getpid()):  # a fork of the process that parsed them
        reader = _PRELOADED.pop(name, None)
        if reader is not None:
            return reader
    return PdfReader(cache.batch_path(name))


def _add_metadata(writer: PdfWriter, metadata: Metadata) -> None:
    info = {
        "/Title": metadata.title,
        "/Author": metadata.author,
        "/Subject": metadata.subject,
        "/Creator": metadata.creator,
        "/Producer": metadata.producer,
        "/CreationDate": metadata.date,
        "/ModDate": metadata.date,
    }
    writer.add_metadata({k: v for k, v in info.items() if v})
    if metadata.lang:
        writer._root_object[NameObject("/Lang")] = TextStringObject(metadata.lang)
    writer.page_mode = "/UseOutlines"


def _crop_top(page: Any, height: float) -> None:
    box = page.mediabox
    top = float(box.top)
    cropped = RectangleObject([float(box.left), top - height, float(box.right), top])
    for name in ("/MediaBox", "/CropBox", "/TrimBox", "/BleedBox", "/ArtBox"):
        if name == "/MediaBox" or name in page:
            page[NameObject(name)] = cropped


def _clean_annotations(page: Any) -> None:
    """Keep only links to URIs: no attachments, no links into other batches."""

    def is_uri_link(annot: Any) -> bool:
        action = annot.get("/A")
        if annot.get("/Subtype") != "/Link" or action is None:
            return False
        return bool(action.get_object().get("/S") == "/URI")

    _keep_annotations(page, is_uri_link)


def _link_slides(writer: PdfWriter, slide_pages: Sequence[int]) -> None:
    """Links to ``slidesvc-slide:N`` go to slide N's page; to no slide, nowhere."""

    def resolve(annot: Any) -> bool:
        uri = str(annot["/A"].get_object().get("/URI", ""))
        if not uri.startswith(SLIDE_LINK_SCHEME):
            return True
        number = uri[len(SLIDE_LINK_SCHEME) :]
        if not (number.isdigit() and 1 <= int(number) <= len(slide_pages)):
            return False
        target = writer.pages[slide_pages[int(number) - 1]].indirect_reference
        del annot["/A"]
        annot[NameObject("/Dest")] = ArrayObject([target, NameObject("/Fit")])
        return True

    for page in writer.pages:
        _keep_annotations(page, resolve)


def _keep_annotations(page: Any, keep: Callable[[Any], bool]) -> None:
    """Drop the page's annotations ``keep`` says no to (it may also change them)."""
    annots = page.get("/Annots")
    if annots is None:
        return
    kept = ArrayObject(ref for ref in annots.get_object() if keep(ref.get_object()))
    if kept:
        page[NameObject("/Annots")] = kept
    else:
        del page["/Annots"]


# --------------------------------------------------------------------------- fonts


def _font_dict(resources: Any) -> DictionaryObject | None:
    if resources is None:
        return None
    fonts = resources.get_object().get("/Font")
    return None if fonts is None else fonts.get_object()


def _collect_fonts(
    pages: Sequence[PageRef], readers: dict[str, PdfReader]
) -> dict[tuple[str, str], _FontGroup]:
    """(batch, font name) -> its merge group, for every font that can be merged."""
    by_original: dict[tuple[str, str], _FontGroup] = {}
    groups: dict[tuple[str, str], _FontGroup] = {}
    seen: set[str] = set()
    for ref in pages:
        if ref.batch in seen or not ref.fonts:
            continue
        seen.add(ref.batch)
        fonts = _font_dict(readers[ref.batch].pages[ref.page].get("/Resources"))
        if fonts is None:
            continue
        for key, font_ref in fonts.items():
            name = key[1:]
            original = ref.fonts.get(name)
            parts = _mergeable(font_ref.get_object()) if original else None
            if original is None or parts is None:
                continue
            cid_font, descriptor, file_key, to_unicode = parts
            group = by_original.get((name, original))
            if group is None:
                group = _FontGroup(name, original, cid_font, descriptor, file_key)
                by_original[(name, original)] = group
            group.widths.update(_parse_widths(cid_font.get("/W")))
            group.to_unicode.update(_parse_to_unicode(to_unicode))
            groups[(ref.batch, name)] = group
    return groups


def _mergeable(font: Any) -> tuple[DictionaryObject, DictionaryObject, str, Any] | None:
    """The parts of a WeasyPrint Type0 / Identity-H font, or None if it is something else."""
    if font.get("/Subtype") != "/Type0" or font.get("/Encoding") != "/Identity-H":
        return None
    descendants = font.get("/DescendantFonts")
    if descendants is None or "/ToUnicode" not in font:
        return None
    cid_font = descendants.get_object()[0].get_object()
    if cid_font.get("/CIDToGIDMap") != "/Identity":
        return None
    descriptor = cid_font["/FontDescriptor"].get_object()
    for file_key in ("/FontFile2", "/FontFile3"):
        if file_key in descriptor:
            return cid_font, descriptor, file_key, font["/ToUnicode"].get_object()
    return None


def _parse_widths(w: Any) -> dict[int, Any]:
    widths: dict[int, Any] = {}
    if w is None:
        return widths
    items = list(w.get_object())
    i = 0
    while i < len(items):
        first = int(items[i])
        following = items[i + 1].get_object() if i + 1 < len(items) else None
        if isinstance(following, list):
            for offset, width in enumerate(following):
                widths[first + offset] = width
            i += 2
        else:  # c_first c_last w
            for cid in range(first, int(items[i + 1]) + 1):
                widths[cid] = items[i + 2]
            i += 3
    return widths


def _parse_to_unicode(stream: Any) -> dict[int, bytes]:
    data = stream.get_data()
    mapping: dict[int, bytes] = {}
    for block in re.findall(rb"beginbfchar(.*?)endbfchar", data, re.S):
        for glyph, text in _BFCHAR_RE.findall(block):
            mapping[int(glyph, 16)] = bytes.fromhex(text.decode())
    return mapping


def _write_font(writer: PdfWriter, group: _FontGroup, cache: PageCache) -> IndirectObject:
    """One Type0 font for the whole document: merged subset, widths, ToUnicode."""
    gids = sorted(set(group.widths) | set(group.to_unicode) | {0})
    data, is_otf = _merged_subset(cache, group.original, gids)
    font_file = DecodedStreamObject()
    font_file.set_data(data)
    if is_otf:
        font_file[NameObject("/Subtype")] = NameObject("/OpenType")
    else:
        font_file[NameObject("/Length1")] = NumberObject(len(data))
    font_file_ref = writer._add_object(font_file.flate_encode())

    descriptor = DictionaryObject()
    for key, value in group.descriptor.items():
        if key not in ("/FontFile2", "/FontFile3", "/CIDSet"):
            descriptor[NameObject(key)] = value.clone(writer)
    descriptor[NameObject(group.file_key)] = font_file_ref

    cid_font = DictionaryObject()
    for key, value in group.cid_font.items():
        if key not in ("/W", "/FontDescriptor"):
            cid_font[NameObject(key)] = value.clone(writer)
    cid_font[NameObject("/W")] = _widths_array(group.widths)
    cid_font[NameObject("/FontDescriptor")] = writer._add_object(descriptor)

    to_unicode = DecodedStreamObject()
    to_unicode.set_data(_to_unicode_cmap(group.to_unicode))
    type0 = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type0"),
            NameObject("/BaseFont"): cid_font["/BaseFont"],
            NameObject("/Encoding"): NameObject("/Identity-H"),
            NameObject("/DescendantFonts"): ArrayObject([writer._add_object(cid_font)]),
            NameObject("/ToUnicode"): writer._add_object(to_unicode.flate_encode()),
        }
    )
    return writer._add_object(type0)


def _widths_array(widths: dict[int, Any]) -> ArrayObject:
    array = ArrayObject()
    run: ArrayObject | None = None
    previous = -2
    for cid in sorted(widths):
        if cid != previous + 1 or run is None:
            run = ArrayObject()
            array.extend([NumberObject(cid), run])
        width = widths[cid]
        run.append(width if isinstance(width, NumberObject | FloatObject) else FloatObject(width))
        previous = cid
    return array


def _to_unicode_cmap(mapping: dict[int, bytes]) -> bytes:
    lines = [
        b"/CIDInit /ProcSet findresource begin",
        b"12 dict begin",
        b"begincmap",
        b"/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
        b"/CMapName /Adobe-Identity-UCS def",
        b"/CMapType 2 def",
        b"1 begincodespacerange",
        b"<0000> <ffff>",
        b"endcodespacerange",
    ]
    items = sorted(mapping.items())
    for start in range(0, len(items), 100):
        chunk = items[start : start + 100]
        lines.append(f"{len(chunk)} beginbfchar".encode())
        lines.extend(f"<{gid:04x}> <{text.hex()}>".encode() for gid, text in chunk)
        lines.append(b"endbfchar")
    lines += [b"endcmap", b"CMapName currentdict /CMap defineresource pop", b"end", b"end"]
    return b"\n".join(lines)


def _merged_subset(cache: PageCache, original: str, gids: list[int]) -> tuple[bytes, bool]:
    """The original font cut down to ``gids`` (glyph ids kept); cached."""
    key = hashlib.sha256(_MERGE_SALT + original.encode() + repr(gids).encode()).hexdigest()
    path = cache.font_path(f"merged-{key[:32]}.font")
    try:
        data = path.read_bytes()
    except OSError:
        data = subset_font(cache.font_path(original).read_bytes(), _font_index(original), gids)
        PageCache._write(path, data)
    return data, data[:4] == b"OTTO"


def _font_index(name: str) -> int:
    return int(name.rsplit("-", 1)[1].split(".", 1)[0])


def _point_fonts_at(fonts: DictionaryObject | None, merged: dict[str, _FontGroup]) -> None:
    """Make the batch's font dictionary name the merged fonts, in place.

    The entries become references into the writer, which pypdf's cloning
    keeps as they are: neither the page nor the form XObjects that share this
    dictionary drag the batch's own subsets along.
    """
    if fonts is None:
        return
    for name, group in merged.items():
        assert group.reference is not None
        fonts[NameObject("/" + name)] = group.reference


def _share_images(
    resources: Any, writer: PdfWriter, seen: dict[bytes, IndirectObject], visited: set[int]
) -> None:
    """Store each distinct image once, however many batches embed it."""
    if resources is None:
        return
    xobjects = resources.get_object().get("/XObject")
    if xobjects is None:
        return
    xobjects = xobjects.get_object()
    for name, ref in list(xobjects.items()):
        if not isinstance(ref, IndirectObject) or ref.pdf is writer:
            continue
        obj: Any = ref.get_object()
        if obj.get("/Subtype") == "/Form":
            if id(obj) not in visited:
                visited.add(id(obj))
                _share_images(obj.get("/Resources"), writer, seen, visited)
            continue
        key = _image_key(obj)
        if key not in seen:
            seen[key] = obj.clone(writer).indirect_reference
        xobjects[NameObject(name)] = seen[key]


def _image_key(image: Any) -> bytes:
    digest = hashlib.sha256(image._data)
    for key in sorted(image):
        value = image[key]
        if isinstance(value, IndirectObject):  # a soft mask: hash its pixels too
            digest.update(_image_key(value.get_object()))
        else:
            digest.update(f"{key}={value!r}".encode())
    return digest.digest()
