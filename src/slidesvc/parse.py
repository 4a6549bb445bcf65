"""The deck compiler: ``load_deck(path) -> Deck``.

Reads the file (size-limited, strict UTF-8), validates the front matter,
splits the body into slides, applies directives (inherited and ``_spot``),
converts each slide, its notes, header and footer with one reused Markdown
instance, resolves local images into `Deck.assets`, and loads the theme.
Problems become `Diagnostic`s tied to a source line; when any is an error,
the first is raised as `DeckError` with the rest in ``others``. Big decks
convert their second half in a forked child process (see `_Compiler._convert`).
Watch modes pass a `ConversionMemo`: slides unchanged since the last load are
not converted again.
"""

from __future__ import annotations

import hashlib
import html
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from slidesvc import __version__
from slidesvc.assets import AssetError, AssetStore, is_inline, is_remote
from slidesvc.directives import Directive, SlideSource, extract, split_slides
from slidesvc.errors import DeckError, DeckTooLarge, Diagnostic
from slidesvc.frontmatter import BadValue, convert, load_yaml, parse_front_matter, scalar
from slidesvc.highlight import code_css
from slidesvc.markdown_ext import Context, SlideConverter
from slidesvc.model import ASSET_SCHEME, Deck, DeckMeta, Slide
from slidesvc.parse_memo import ConversionMemo, Converted, Findings, Key, recording
from slidesvc.slug import slugify
from slidesvc.themes import DEFAULT_THEME, Theme, inline_urls, load_theme

MAX_DECK_BYTES = 8 * 1024 * 1024
MAX_DECK_ENV = "SLIDESVC_MAX_DECK_BYTES"

_TAG = re.compile(r"<[^>]*>")
_CSS_URL = re.compile(r"""url\(\s*(['"]?)([^'")]+?)\1\s*\)""")
_INHERITED = ("class", "paginate", "header", "footer", "background", "color")
_REMOTE = "remote image "

PARALLEL_MIN_SLIDES = 200
"""Decks this big convert in two processes (when the machine and caller allow)."""

_WARM_UP = 10

_Job = tuple[int, SlideSource, dict[str, Any], bool]
"""What `_Compiler._slide` needs: number, source, directive state, math on/off."""


def _can_fork() -> bool:
    """A second process helps only with a second core, and fork is only safe
    without other threads (a server calls load_deck from an executor thread)."""
    if not hasattr(os, "fork") or threading.active_count() > 1:
        return False
    if hasattr(os, "sched_getaffinity"):  # the cores this process may use
        return len(os.sched_getaffinity(0)) > 1
    return (os.cpu_count() or 1) > 1


def load_deck(
    path: Path, *, max_bytes: int | None = None, memo: ConversionMemo | None = None
) -> Deck:
    """Compile the deck at ``path`` (raises `DeckError` when it is wrong).

    With a ``memo`` (kept from one load to the next), slides converted before
    are not converted again."""
    path = Path(path)
    limit = _limit(path, max_bytes)
    data = _read(path, limit)
    return _Compiler(path, data, memo=memo).compile()


def _limit(path: Path, max_bytes: int | None) -> int:
    if max_bytes is not None:
        return max_bytes
    raw = os.environ.get(MAX_DECK_ENV, "").strip()
    if not raw:
        return MAX_DECK_BYTES
    if not raw.isdigit():
        raise DeckError(path, 0, f"{MAX_DECK_ENV}={raw!r} is not a number of bytes")
    return int(raw)


def _read(path: Path, limit: int) -> bytes:
    try:
        size = path.stat().st_size
        if size <= limit:
            data = path.read_bytes()
    except FileNotFoundError:
        raise DeckError(path, 0, "deck not found: check the path") from None
    except IsADirectoryError:
        raise DeckError(path, 0, "is a folder, not a deck file") from None
    except OSError as exc:
        raise DeckError(path, 0, f"cannot read the deck: {exc.strerror}") from None
    if size > limit or len(data) > limit:
        raise DeckTooLarge(
            path,
            0,
            f"deck is {max(size, 0):,} bytes, over the limit of {limit:,} bytes: "
            f"split it, or raise the limit with {MAX_DECK_ENV}=<bytes>",
        )
    return data


def _decode(path: Path, data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DeckError(
            path,
            line,
            f"not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}): "
            "save the file as UTF-8",
        ) from None
    text = text.removeprefix("\ufeff")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


@dataclass
class _Compiler:
    path: Path
    data: bytes
    errors: list[Diagnostic] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    memo: ConversionMemo | None = None

    def __post_init__(self) -> None:
        self.store = AssetStore(self.path.parent)
        self.converter = SlideConverter()
        self._memoized: list[tuple[Key, Converted]] = []
        """What this load added to the memo (a forked child sends it back)."""
        self._inline_cache: dict[str, str] = {}
        self._background_cache: dict[str, str] = {}
        self._remote_seen: set[str] = set()
        self.uses_code = False

    def error(self, line: int, message: str) -> None:
        self.errors.append(Diagnostic(self.path, line, message, "error"))

    def warn(self, line: int, message: str) -> None:
        self.warnings.append(Diagnostic(self.path, line, message))

    # --- the whole deck ------------------------------------------------------

    def compile(self) -> Deck:
        text = _decode(self.path, self.data)
        source_lines = text.split("\n")
        front = parse_front_matter(source_lines, self.path)
        self.errors += front.errors
        self.warnings += front.warnings
        self.settings, self.lines = dict(front.settings), dict(front.lines)
        body = source_lines[front.body_start :]
        if not any(line.strip() and line.rstrip() != "---" for line in body):
            raise DeckError(
                self.path,
                front.body_start or 1,
                "the deck is empty: write at least one slide of Markdown",
            )
        sources = self._split(source_lines, front.body_start)
        theme = self._theme()
        slides = self._slides(sources)
        meta = self._meta(slides, theme)
        style = self._style()
        theme_css = f"{theme.css}\n{style}\n" if style else theme.css
        css = self._code_css(theme) if self.uses_code else ""
        if self.errors:
            ordered = sorted(self.errors, key=lambda d: d.line)
            first = ordered[0]
            raise DeckError(
                first.path, first.line, first.message, others=(*ordered[1:], *self.warnings)
            )
        return Deck(
            path=self.path,
            slug=slugify(self.path),
            meta=meta,
            slides=tuple(slides),
            theme_css=theme_css,
            assets=dict(self.store.assets),
            diagnostics=tuple(self.warnings),
            content_hash=self._hash(theme_css),
            code_css=css,
        )

    def _split(self, lines: list[str], body_start: int) -> list[SlideSource]:
        levels: tuple[int, ...] = self.settings.get("heading_divider", ())
        chunks, fence_warnings = split_slides(lines, body_start, levels, self.path)
        sources = [extract(chunk) for chunk in chunks]
        for source in sources:
            for key, directive in source.globals.items():
                self._setting(key, directive)
        wanted: tuple[int, ...] = self.settings.get("heading_divider", ())
        if wanted != levels:  # set by a comment: cut again, now with headings
            chunks, fence_warnings = split_slides(lines, body_start, wanted, self.path)
            sources = [extract(chunk) for chunk in chunks]
        self.warnings += fence_warnings
        return sources

    def _setting(self, key: str, directive: Directive) -> None:
        raw = str(directive.value)
        value: Any = scalar(raw)
        if raw.startswith("["):
            value = load_yaml(raw) or raw
        try:
            self.settings[key] = convert(key, value, raw)
            self.lines[key] = directive.line
        except BadValue as exc:
            self.error(directive.line, f"{key}: {exc}")

    def _theme(self) -> Theme:
        spec = self.settings.get("theme") or DEFAULT_THEME
        try:
            theme = load_theme(spec, self.path, self.lines.get("theme", 1), self.store)
        except DeckError as exc:
            self.errors.append(exc.diagnostic)
            theme = load_theme(DEFAULT_THEME, self.path, 0, self.store)
        self.warnings += theme.diagnostics
        return theme

    def _style(self) -> str:
        """The deck's ``style`` with local ``url()`` files inlined like a theme's."""
        style: str = self.settings.get("style", "")
        try:
            return inline_urls(style, self.path.parent, self.store)
        except AssetError as exc:
            self.error(self.lines.get("style", 1), f"style: {exc}")
            return style

    def _code_css(self, theme: Theme) -> str:
        try:
            return code_css(theme.pygments_style)
        except ValueError:
            self.warn(0, f"theme {theme.name}: unknown Pygments style {theme.pygments_style!r}")
            return code_css("default")

    def _meta(self, slides: list[Slide], theme: Theme) -> DeckMeta:
        s = self.settings
        aspect, width, height = s.get("aspect", ("16:9", 1280, 720))
        pdf = s.get("pdf", {})
        title = s.get("title") or (slides[0].title if slides else "") or slugify(self.path)
        return DeckMeta(
            title=title,
            author=s.get("author", ""),
            date=s.get("date", ""),
            lang=s.get("lang", "en"),
            description=s.get("description", ""),
            theme=theme.name,
            style=s.get("style", ""),
            aspect=aspect,
            width=width,
            height=height,
            paginate=s.get("paginate", False),
            math=s.get("math", True),
            heading_divider=s.get("heading_divider", ()),
            embed_origins=s.get("embed", ()),
            pdf_notes=pdf.get("notes", False),
            pdf_filename=pdf.get("filename", ""),
            allow_scripts=s.get("scripts", False),
        )

    def _hash(self, theme_css: str) -> str:
        digest = hashlib.sha256(self.data)
        for asset_id in sorted(self.store.assets):
            digest.update(b"\0asset\0" + self.store.assets[asset_id].data)
        digest.update(b"\0theme\0" + theme_css.encode("utf-8"))
        digest.update(b"\0version\0" + __version__.encode("ascii"))
        return digest.hexdigest()[:16]

    # --- slides --------------------------------------------------------------

    def _slides(self, sources: list[SlideSource]) -> list[Slide]:
        state: dict[str, Any] = {key: self.settings.get(key, "") for key in _INHERITED}
        state["paginate"] = self.settings.get("paginate", False)
        state["background"] = self._background(state["background"], self.lines.get("background", 1))
        math = bool(self.settings.get("math", True))
        jobs = []
        for number, source in enumerate(sources, 1):
            for key, directive in source.local.items():
                state[key] = self._directive(key, directive, state[key])
            current = dict(state)
            for key, directive in source.spot.items():
                current[key] = self._directive(key, directive, current[key])
            jobs.append((number, source, current, math))
        return self._convert(jobs)

    def _convert(self, jobs: list[_Job]) -> list[Slide]:
        """Convert every slide; a big deck shares the work with a forked child.

        Markdown conversion is nearly all of the time and every slide is
        independent once its directives are known, so on a multi-core machine
        the second half goes to a child process (fork: no start-up cost, the
        warm converter is inherited) that sends back slides, findings and
        assets. If the child fails for any reason, its half is done here.
        """
        if self._to_convert(jobs) < PARALLEL_MIN_SLIDES or not _can_fork():
            return [self._slide(*job) for job in jobs]
        import pickle

        # A few slides first, so both processes inherit compiled lexers and caches.
        half = (len(jobs) + 1) // 2
        warm = min(_WARM_UP, half)
        slides = [self._slide(*job) for job in jobs[:warm]]
        reader, writer = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(reader)
            self._convert_in_child(jobs[half:], writer)
        os.close(writer)
        pipe = os.fdopen(reader, "rb")
        try:
            slides += [self._slide(*job) for job in jobs[warm:half]]
            payload = pipe.read()
        finally:  # also on errors here: closing the pipe ends a child stuck writing
            pipe.close()
            os.waitpid(pid, 0)
        try:
            theirs: list[Slide]
            theirs, errors, warnings, assets, uses_code, memoized = pickle.loads(payload)
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError):
            return slides + [self._slide(*job) for job in jobs[half:]]
        if self.memo is not None:
            for key, converted in memoized:
                self.memo.put(key, converted)
        seen = {w.message for w in self.warnings if w.message.startswith(_REMOTE)}
        self.errors += errors
        self.warnings += [w for w in warnings if w.message not in seen]
        for asset_id, asset in assets.items():
            self.store.assets.setdefault(asset_id, asset)
        self.uses_code = self.uses_code or uses_code
        return slides + theirs

    def _convert_in_child(self, jobs: list[_Job], writer: int) -> NoReturn:
        import pickle

        status = 1
        try:
            errors, warnings = len(self.errors), len(self.warnings)
            slides = [self._slide(*job) for job in jobs]
            found = (self.errors[errors:], self.warnings[warnings:])
            payload = pickle.dumps(
                (slides, *found, self.store.assets, self.uses_code, self._memoized)
            )
            with os.fdopen(writer, "wb") as pipe:
                pipe.write(payload)
            status = 0
        finally:
            # Never return into the parent's code (or run its atexit handlers);
            # on failure the parent converts this half itself and reports why.
            os._exit(status)

    def _to_convert(self, jobs: list[_Job]) -> int:
        """How many of the slides of ``jobs`` the memo cannot replay."""
        if self.memo is None:
            return len(jobs)
        return sum((source.content, math) not in self.memo for _, source, _, math in jobs)

    def _markdown(self, text: str, ctx: Context) -> str:
        """``text`` as HTML; with a memo, a conversion done before is replayed."""
        if self.memo is None:
            return self.converter.convert(text, ctx)
        key = (text, ctx.math)
        known = self.memo.get(key)
        if known is not None:
            reported = len(self.errors), len(self.warnings), set(self._remote_seen)
            if known.replay(ctx):
                return known.html
            # An image changed: forget what the replay reported, convert afresh.
            del self.errors[reported[0] :], self.warnings[reported[1] :]
            self._remote_seen = reported[2]
        recorder, events = recording(ctx)
        result = self.converter.convert(text, recorder)
        findings = Findings.of(recorder)
        findings.add_to(ctx)
        converted = Converted(result, tuple(events), findings)
        self.memo.put(key, converted)
        self._memoized.append((key, converted))
        return result

    def _directive(self, key: str, directive: Directive, old: Any) -> Any:
        value = directive.value
        if key == "paginate":
            flag = scalar(value) if isinstance(value, str) else value
            if not isinstance(flag, bool):
                self.error(directive.line, f"paginate: {value!r} is not allowed: use true or false")
                return old
            return flag
        if key == "background":
            return self._background(str(value), directive.line)
        return str(value)

    def _background(self, value: str, line: int) -> str:
        """A CSS background with local ``url()`` images turned into assets."""
        if "url(" not in value:
            return value
        cached = self._background_cache.get(value)
        if cached is None:
            cached = _CSS_URL.sub(lambda m: f"url({self._image(m.group(2), lambda: line)})", value)
            self._background_cache[value] = cached
        return cached

    def _image(self, src: str, line: Callable[[], int]) -> str:
        """The ``src`` to use for an image; ``line()`` finds its line if it must be told."""
        if is_remote(src):
            if src not in self._remote_seen:
                self._remote_seen.add(src)
                self.warn(
                    line(),
                    f"{_REMOTE}{src} is not embedded, so the deck is not self-contained: "
                    "download it next to the deck and use a relative path",
                )
            return src
        if is_inline(src):
            return src
        try:
            asset = self.store.add(src, self.path.parent)
        except AssetError as exc:
            self.error(line(), str(exc))
            return src
        return f"{ASSET_SCHEME}{asset.id}"

    def _context(self, source: SlideSource, math: bool) -> Context:
        content_lines: list[str] = []

        def locate(needle: str) -> int:
            if not content_lines:
                content_lines.extend(source.content.split("\n"))
            for offset, text in enumerate(content_lines):
                if needle and needle in text:
                    return source.content_line + offset
            return source.line

        return Context(
            resolve_image=lambda src: self._image(src, lambda: locate(src)),
            warn=lambda message, needle: self.warn(locate(needle.split("\n")[0]), message),
            math=math,
        )

    def _slide(self, number: int, source: SlideSource, state: dict[str, Any], math: bool) -> Slide:
        ctx = self._context(source, math)
        content = self._markdown(source.content, ctx)
        notes = ""
        if source.notes:
            notes_ctx = self._context(source, math)
            notes = self._markdown("\n\n".join(source.notes), notes_ctx)
            ctx.uses_code = ctx.uses_code or notes_ctx.uses_code
        self.uses_code = self.uses_code or ctx.uses_code
        return Slide(
            number=number,
            line=source.line,
            html=content,
            notes_html=notes,
            title=ctx.title,
            text=" ".join(html.unescape(_TAG.sub(" ", content)).split()),
            classes=tuple(state["class"].split()),
            paginate=state["paginate"],
            header_html=self._inline(state["header"], source, math),
            footer_html=self._inline(state["footer"], source, math),
            background=state["background"],
            color=state["color"],
            backgrounds=tuple(ctx.backgrounds),
            bg_split=ctx.bg_split,
            bg_split_size=ctx.bg_split_size,
            fragments=ctx.fragments,
        )

    def _inline(self, text: str, source: SlideSource, math: bool) -> str:
        if not text:
            return ""
        cached = self._inline_cache.get(text)
        if cached is None:
            cached = self.converter.convert_inline(text, self._context(source, math))
            self._inline_cache[text] = cached
        return cached
