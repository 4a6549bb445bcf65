"""Python-Markdown extensions for slides, and the one converter that uses them.

- Lists: ``*`` bullets and ``1)`` items are fragment lists, a change of
  marker starts a new list (processors in `slidesvc.markdown_lists`).
- Fenced code (```` ``` ```` and ``~~~``) highlighted by Pygments at build
  time, ``{2,4-5}`` emphasising lines; unknown languages stay plain text.
- Math: ``$...$`` and ``$$...$$`` to inline SVG (`slidesvc.mathsvg`), never
  inside code, ``\\$`` escapes, ``$`` before a space or digit is a dollar.
- Images: Marp size keywords in the alt text, ``![bg ...]`` backgrounds
  taken out of the content, local paths resolved by a callback.
- Bare ``http(s)://`` URLs become links; the first heading is the title.

`SlideConverter` builds one `markdown.Markdown` and reuses it for every
slide, notes block, header and footer; a `Context` carries the per-call
callbacks in and the findings (backgrounds, fragments, title) out. For speed
it runs only the inline patterns whose trigger characters occur in the text
(a property test checks the output is the same as with all of them).
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as etree
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import markdown
from markdown.extensions import Extension
from markdown.extensions.attr_list import AttrListExtension
from markdown.extensions.tables import TableExtension
from markdown.inlinepatterns import InlineProcessor
from markdown.preprocessors import Preprocessor
from markdown.treeprocessors import InlineProcessor as InlineStep
from markdown.treeprocessors import Treeprocessor
from markdown.util import Registry

from slidesvc.directives import closes_fence, fence_opening
from slidesvc.highlight import highlight, parse_info
from slidesvc.markdown_lists import LIST_PROCESSORS, MARKER_ATTRIBUTE
from slidesvc.model import Background

_SIZE_KEYWORD = re.compile(r"^(w|h|width|height):(\d+(?:\.\d+)?)(px|%|em)?$", re.IGNORECASE)
_PERCENT = re.compile(r"^\d+(?:\.\d+)?%$")
_SPLIT = re.compile(r"^(left|right)(?::(\d+(?:\.\d+)?%))?$", re.IGNORECASE)
_URL = re.compile(r"\bhttps?://[^\s<>\"'\x02\x03]*[^\s<>\"'\x02\x03.,;:!?)\]]")
_RAW_IMG = re.compile(r"""(<img\b[^>]*?\bsrc\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE)
_STASH = re.compile(r"\x02[a-z]+:(\d+)\x03")
_ESCAPED = re.compile(r"\x02(\d+)\x03")
_MATH = re.compile(
    r"(?<!\\)\$\$(?P<display>.+?)(?<!\\)\$\$"
    r"|(?<![\\$])\$(?![\s\d$])(?P<inline>[^\n$]*?[^\s\\$])\$(?!\d)",
    re.DOTALL,
)


@dataclass
class Context:
    """One conversion's inputs (callbacks) and findings."""

    resolve_image: Callable[[str], str] = lambda src: src
    """Maps an image ``src`` to the one to use (reporting problems itself)."""
    warn: Callable[[str, str], None] = lambda message, needle: None
    """Reports a warning; ``needle`` is source text to locate its line."""
    math: bool = True
    backgrounds: list[Background] = field(default_factory=list)
    bg_split: str = ""
    bg_split_size: str = "50%"
    fragments: int = 0
    title: str = ""
    uses_code: bool = False


# --- code -------------------------------------------------------------------


class _FencePreprocessor(Preprocessor):
    """Fenced code -> highlighted HTML in the stash (before anything else sees it)."""

    def __init__(self, md: markdown.Markdown, converter: SlideConverter) -> None:
        super().__init__(md)
        self.converter = converter

    def run(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        index = 0
        while index < len(lines):
            line = lines[index]
            fence = fence_opening(line) if "``" in line or "~~" in line else None
            if fence is None:
                out.append(line)
                index += 1
                continue
            indent = len(line) - len(line.lstrip(" "))
            lang, hl_lines = parse_info(line.lstrip(" ")[len(fence) :])
            body: list[str] = []
            index += 1
            while index < len(lines) and not closes_fence(lines[index], fence):
                text = lines[index]
                body.append(text[min(indent, len(text) - len(text.lstrip(" "))) :])
                index += 1
            index += 1
            self.converter.ctx.uses_code = True
            placeholder = self.md.htmlStash.store(highlight("\n".join(body), lang, hl_lines))
            out.extend(["", placeholder, ""])
        return out


# --- math -------------------------------------------------------------------


def _math_html(latex: str, display: bool, block: bool, ctx: Context) -> str:
    from slidesvc.mathsvg import MathError, render

    tag = "div" if block else "span"
    kind = "display" if display else "inline"
    try:
        svg = render(latex.strip(), display)
    except MathError as exc:
        ctx.warn(
            f"cannot typeset math ${latex.strip()}$ ({exc}): check the LaTeX; "
            "it is shown as code for now",
            latex,
        )
        source = html.escape(f"$${latex}$$" if display else f"${latex}$")
        return f'<{tag} class="math {kind} math-error"><code>{source}</code></{tag}>'
    return f'<{tag} class="math {kind}">{svg}</{tag}>'


class _DisplayMathPreprocessor(Preprocessor):
    """``$$`` at the start of a line, possibly spanning lines -> a display block."""

    def __init__(self, md: markdown.Markdown, converter: SlideConverter) -> None:
        super().__init__(md)
        self.converter = converter

    def run(self, lines: list[str]) -> list[str]:
        ctx = self.converter.ctx
        if not ctx.math or not any("$$" in line for line in lines):
            return lines
        out: list[str] = []
        index = 0
        while index < len(lines):
            line = lines[index]
            stripped = line.lstrip(" ")
            if not stripped.startswith("$$") or len(line) - len(stripped) > 3:
                out.append(line)
                index += 1
                continue
            parts = [stripped[2:]]
            end = index
            while "$$" not in parts[-1] and end + 1 < len(lines):
                end += 1
                parts.append(lines[end])
            if "$$" not in parts[-1]:
                out.append(line)  # never closed: leave it as text
                index += 1
                continue
            last, _, rest = parts[-1].partition("$$")
            latex = "\n".join([*parts[:-1], last])
            if latex.strip():
                out.extend(["", self.md.htmlStash.store(_math_html(latex, True, True, ctx)), ""])
            if rest.strip():
                out.append(rest)
            index = end + 1
        return out


class _MathInlineProcessor(InlineProcessor):
    def __init__(self, md: markdown.Markdown, converter: SlideConverter) -> None:
        super().__init__(_MATH.pattern, md)
        self.compiled_re = _MATH
        self.converter = converter

    def handleMatch(  # type: ignore[override]
        self, m: re.Match[str], data: str
    ) -> tuple[str | None, int | None, int | None]:
        ctx = self.converter.ctx
        display = m.group("display") is not None
        latex = m.group("display") if display else m.group("inline")
        if not ctx.math or "\x02" in latex or not latex.strip():
            return None, None, None
        stored = self.md.htmlStash.store(_math_html(latex, display, False, ctx))
        return stored, m.start(0), m.end(0)


# --- tree: images, backgrounds, fragments, title, links ---------------------


class _SlideTreeprocessor(Treeprocessor):
    def __init__(self, md: markdown.Markdown, converter: SlideConverter) -> None:
        super().__init__(md)
        self.converter = converter

    def run(self, root: etree.Element) -> None:
        ctx = self.converter.ctx
        source = self.converter.source
        has_images = "![" in source
        images: list[tuple[etree.Element, etree.Element]] = []
        for parent in root.iter():
            tag = parent.tag
            if tag in ("ul", "ol"):
                parent.attrib.pop(MARKER_ATTRIBUTE, None)
                if parent.get("class") == "fragments":
                    ctx.fragments += sum(1 for child in parent if child.tag == "li")
            elif not ctx.title and tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
                ctx.title = self._plain("".join(parent.itertext()))
            if has_images:
                images.extend((parent, child) for child in parent if child.tag == "img")
        backgrounds = [(p, img) for p, img in images if _is_bg(img)]
        for _, img in images:
            if not _is_bg(img):
                self._image(img, ctx)
        if backgrounds:
            self._backgrounds(root, backgrounds, ctx)
        # Cheap tests on the source spare most slides two more walks.
        if "://" in source:
            _linkify(root)
        if "<" in source and "<img" in source.lower():
            self._raw_images(ctx)

    def _raw_images(self, ctx: Context) -> None:
        """``<img src>`` in raw HTML is resolved like a Markdown image."""
        blocks = self.md.htmlStash.rawHtmlBlocks
        for index, block in enumerate(blocks):
            if isinstance(block, str) and "<img" in block.lower():
                blocks[index] = _RAW_IMG.sub(
                    lambda m: (
                        f"{m.group(1)}{m.group(2)}{ctx.resolve_image(m.group(3))}{m.group(2)}"
                    ),
                    block,
                )

    def _plain(self, text: str) -> str:
        """Tree text -> plain text: stashed HTML (entities, math) and escapes resolved."""
        stash = self.md.htmlStash.rawHtmlBlocks

        def stashed(match: re.Match[str]) -> str:
            index = int(match.group(1))
            block = stash[index] if index < len(stash) else ""
            return block if isinstance(block, str) and "<" not in block else ""

        text = _ESCAPED.sub(lambda m: chr(int(m.group(1))), _STASH.sub(stashed, text))
        return " ".join(html.unescape(text).split())

    def _image(self, img: etree.Element, ctx: Context) -> None:
        words = img.get("alt", "").split()
        styles = []
        kept = []
        for word in words:
            match = _SIZE_KEYWORD.match(word)
            if match is None:
                kept.append(word)
                continue
            prop = "width" if match.group(1).lower().startswith("w") else "height"
            styles.append(f"{prop}:{match.group(2)}{(match.group(3) or 'px').lower()}")
        if styles:
            img.set("alt", " ".join(kept))
            old = img.get("style", "").rstrip("; ")
            img.set("style", ";".join([old, *styles] if old else styles))
        img.set("src", ctx.resolve_image(img.get("src", "")))

    def _backgrounds(
        self,
        root: etree.Element,
        found: list[tuple[etree.Element, etree.Element]],
        ctx: Context,
    ) -> None:
        parents = {child: parent for parent in root.iter() for child in parent}
        for parent, img in found:
            size = "cover"
            for word in img.get("alt", "").split()[1:]:
                low = word.lower()
                split = _SPLIT.match(low)
                if low in ("cover", "contain", "auto"):
                    size = low
                elif low == "fit":
                    size = "contain"
                elif _PERCENT.match(low):
                    size = low
                elif split:
                    ctx.bg_split = split.group(1)
                    ctx.bg_split_size = split.group(2) or "50%"
            ctx.backgrounds.append(Background(ctx.resolve_image(img.get("src", "")), size))
            _remove_keeping_tail(parent, img)
            if parent.tag == "p" and len(parent) == 0 and not (parent.text or "").strip():
                grand = parents.get(parent)
                if grand is not None:
                    _remove_keeping_tail(grand, parent)


def _is_bg(img: etree.Element) -> bool:
    alt = img.get("alt", "")
    return alt == "bg" or alt.startswith("bg ")


def _remove_keeping_tail(parent: etree.Element, child: etree.Element) -> None:
    tail = child.tail
    index = list(parent).index(child)
    parent.remove(child)
    if tail and tail.strip():
        if index:
            previous = parent[index - 1]
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail


def _linkify(element: etree.Element) -> None:
    """Bare http(s) URLs in text -> links, outside links and code."""
    if element.text and "://" in element.text:
        element.text, links = _split_urls(element.text)
        for offset, link in enumerate(links):
            element.insert(offset, link)
    for child in list(element):
        if child.tag not in ("a", "code", "pre", "script", "style"):
            _linkify(child)
        if child.tail and "://" in child.tail:
            child.tail, links = _split_urls(child.tail)
            position = list(element).index(child) + 1
            for offset, link in enumerate(links):
                element.insert(position + offset, link)


def _split_urls(text: str) -> tuple[str, list[etree.Element]]:
    """The text before the first URL, and one ``a`` per URL carrying the text after it."""
    parts = _URL.split(text)
    urls = _URL.findall(text)
    if not urls:
        return text, []
    links = []
    for url, after in zip(urls, parts[1:], strict=True):
        link = etree.Element("a", {"href": url})
        link.text = url
        link.tail = after
        links.append(link)
    return parts[0], links


# --- the extension and the converter ----------------------------------------


class _OnlyWithBraces(Treeprocessor):
    """attr_list's walk over every element, skipped when the text has no ``{``."""

    def __init__(
        self, md: markdown.Markdown, converter: SlideConverter, inner: Treeprocessor
    ) -> None:
        super().__init__(md)
        self.converter = converter
        self.inner = inner

    def run(self, root: etree.Element) -> etree.Element | None:
        wanted = "{" in self.converter.prose or not self.converter.prefilter
        return self.inner.run(root) if wanted else None


class _PrefilterPreprocessor(Preprocessor):
    """Last preprocessor: note the text left for the tree (code and raw HTML are
    stashed by now) and choose the inline patterns it can need."""

    def __init__(self, md: markdown.Markdown, converter: SlideConverter) -> None:
        super().__init__(md)
        self.converter = converter

    def run(self, lines: list[str]) -> list[str]:
        self.converter.prose = "\n".join(lines)
        if self.converter.prefilter:
            self.converter.use_patterns_for(self.converter.prose)
        return lines


class _SlideExtension(Extension):
    def __init__(self, converter: SlideConverter) -> None:
        super().__init__()
        self.converter = converter

    def extendMarkdown(self, md: markdown.Markdown) -> None:
        md.ESCAPED_CHARS.append("$")
        md.preprocessors.register(_FencePreprocessor(md, self.converter), "slide_fence", 25)
        md.preprocessors.register(_DisplayMathPreprocessor(md, self.converter), "slide_math", 24)
        md.inlinePatterns.register(_MathInlineProcessor(md, self.converter), "slide_math", 185)
        parser = md.parser
        for name in ("olist", "ulist"):
            parser.blockprocessors.deregister(name)
        for name, kind, priority in LIST_PROCESSORS:
            parser.blockprocessors.register(kind(parser), name, priority)
        md.preprocessors.register(_PrefilterPreprocessor(md, self.converter), "slide_prefilter", 0)
        md.treeprocessors.register(_SlideTreeprocessor(md, self.converter), "slide_tree", 5)
        if "attr_list" in md.treeprocessors:
            attr_list = md.treeprocessors["attr_list"]
            md.treeprocessors.register(
                _OnlyWithBraces(md, self.converter, attr_list), "attr_list", 8
            )


_TRIGGERS: dict[str, tuple[str, ...]] = {
    "backtick": ("`",),
    "slide_math": ("$",),
    "escape": ("\\",),
    # Reference-style links need a definition (``[id]: url``) in the same text.
    "reference": ("]:",),
    "link": ("[",),
    "image_link": ("![",),
    "image_reference": ("]:",),
    "short_reference": ("]:",),
    "short_image_ref": ("]:",),
    "autolink": ("<",),
    "automail": ("<",),
    "linebreak": ("  \n",),
    "html": ("<",),
    "entity": ("&",),
    "em_strong": ("*", "_"),
}
"""Inline pattern -> texts without which it cannot match (unknown patterns always run)."""
_TRIGGER_TEXTS = frozenset(t for triggers in _TRIGGERS.values() for t in triggers)


class SlideConverter:
    """One reusable Markdown instance with the slide extensions."""

    def __init__(self, *, prefilter: bool = True) -> None:
        """``prefilter=False`` runs every inline pattern and tree step always (for tests)."""
        self.ctx = Context()
        self.source = ""
        """The Markdown being converted, as given."""
        self.prose = ""
        """The same after the preprocessors: code blocks and raw HTML stashed away."""
        self.prefilter = prefilter
        self.md = markdown.Markdown(
            # Instances, not names: naming an extension makes Markdown scan every
            # installed package's entry points, which costs more than a deck.
            extensions=[TableExtension(), AttrListExtension(), _SlideExtension(self)],
            output_format="html",
        )
        self._full: Registry[Any] = self.md.inlinePatterns
        # (name, pattern, triggers) in priority order; unknown patterns always run.
        name_of = {id(self._full[name]): name for name in _TRIGGERS if name in self._full}
        self._patterns: list[tuple[str, Any, tuple[str, ...] | None]] = []
        for index, pattern in enumerate(self._full):
            name = name_of.get(id(pattern), f"pattern{index}")
            self._patterns.append((name, pattern, _TRIGGERS.get(name)))
        step = self.md.treeprocessors["inline"]
        assert isinstance(step, InlineStep)
        self._inline_step = step
        self._pattern_sets: dict[frozenset[str], Registry[Any]] = {}

    def convert(self, text: str, ctx: Context) -> str:
        """Markdown -> HTML for one slide (or notes, header, footer)."""
        self.ctx = ctx
        self.source = text
        # reset() forgets the emphasis processor unless it is registered: reset
        # with the full set, then narrow it.
        self.md.inlinePatterns = self._inline_step.inlinePatterns = self._full
        self.md.reset()
        return self.md.convert(text)

    def use_patterns_for(self, text: str) -> None:
        """Run only the inline patterns whose trigger text occurs in ``text``.

        Python-Markdown tries every inline pattern on every text node, and that
        loop is most of the conversion time; a pattern whose trigger (``[`` for
        links, ``&`` for entities, ...) is absent from the source cannot match.
        """
        present = frozenset(t for t in _TRIGGER_TEXTS if t in text)
        registry = self._pattern_sets.get(present)
        if registry is None:
            registry = self._pattern_sets[present] = Registry()
            for index, (name, pattern, triggers) in enumerate(self._patterns):
                if triggers is None or not present.isdisjoint(triggers):
                    registry.register(pattern, name, len(self._patterns) - index)
        self.md.inlinePatterns = self._inline_step.inlinePatterns = registry

    def convert_inline(self, text: str, ctx: Context) -> str:
        """Inline Markdown (header, footer) -> HTML without the paragraph around it."""
        result = self.convert(text, ctx)
        if result.startswith("<p>") and result.endswith("</p>") and result.count("<p>") == 1:
            return result[3:-4]
        return result
