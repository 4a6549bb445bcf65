"""Markdown conversions remembered between loads of a deck (the watch modes).

Converting Markdown is nearly all of a deck's parse time, and after an edit
almost every slide is what it was. `ConversionMemo` keeps, per slide text
(and math on/off), the HTML and a record of everything the conversion asked
of its `Context` or told it: each image it resolved and to what, each warning,
and its findings (title, fragments, backgrounds, code). A later load replays
that record against its own context. The output of a conversion depends only
on its text and those answers, so when every image still resolves to the
same asset (same file content) the remembered HTML is exactly what converting
again would give; when one does not, the slide is converted again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from slidesvc.markdown_ext import Context
from slidesvc.model import Background

Key = tuple[str, bool]
"""(Markdown text, math on)."""

_Event = tuple[str, str, str]
"""``("image", src, resolved)`` or ``("warn", message, needle)``, in call order."""


@dataclass(frozen=True)
class Findings:
    """What one conversion found out about its slide (see `Context`)."""

    backgrounds: tuple[Background, ...] = ()
    bg_split: str = ""
    bg_split_size: str = "50%"
    fragments: int = 0
    title: str = ""
    uses_code: bool = False

    @classmethod
    def of(cls, ctx: Context) -> Findings:
        return cls(
            tuple(ctx.backgrounds),
            ctx.bg_split,
            ctx.bg_split_size,
            ctx.fragments,
            ctx.title,
            ctx.uses_code,
        )

    def add_to(self, ctx: Context) -> None:
        ctx.backgrounds.extend(self.backgrounds)
        if self.bg_split:
            ctx.bg_split, ctx.bg_split_size = self.bg_split, self.bg_split_size
        ctx.fragments += self.fragments
        ctx.title = ctx.title or self.title
        ctx.uses_code = ctx.uses_code or self.uses_code


@dataclass(frozen=True)
class Converted:
    """One conversion: its HTML, the questions it asked and what it found."""

    html: str
    events: tuple[_Event, ...]
    findings: Findings

    def replay(self, ctx: Context) -> bool:
        """Ask ``ctx`` the same questions; False (stop) at the first different answer.

        Warnings are reported again through ``ctx`` as they come; the findings
        are added only once every answer matched."""
        for kind, first, second in self.events:
            if kind == "image":
                if ctx.resolve_image(first) != second:
                    return False
            else:
                ctx.warn(first, second)
        self.findings.add_to(ctx)
        return True


def recording(ctx: Context) -> tuple[Context, list[_Event]]:
    """A context that answers through ``ctx`` and records every question, and
    the record it fills. Its findings start empty (see `Findings`)."""
    events: list[_Event] = []

    def resolve_image(src: str) -> str:
        resolved = ctx.resolve_image(src)
        events.append(("image", src, resolved))
        return resolved

    def warn(message: str, needle: str) -> None:
        events.append(("warn", message, needle))
        ctx.warn(message, needle)

    return Context(resolve_image=resolve_image, warn=warn, math=ctx.math), events


class ConversionMemo:
    """The latest conversions, least recently used out first; safe across threads."""

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Key, Converted] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, key: Key) -> Converted | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: Key, value: Converted) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)


__all__ = ["ConversionMemo", "Converted", "Findings", "Key", "recording"]
