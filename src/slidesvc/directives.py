"""Slide splitting, directives and speaker notes, at the level of source lines.

`split_slides` cuts the deck body at ``---`` lines (and, with
``heading_divider``, before headings), skipping fenced code and HTML
comments. `extract` then takes one slide's lines apart: HTML comments that
parse as ``key: value`` lines of known keys are directives (``_key`` for this
slide only), every other comment is a note, and a ``???`` or ``Note:`` line
starts the notes. Removed text leaves blank lines behind, so line *i* of the
content is still source line ``content_line + i``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slidesvc.errors import Diagnostic
from slidesvc.frontmatter import ALIASES, GLOBAL_KEYS, load_yaml

FENCE_OPEN = re.compile(r"^( {0,3})(`{3,}|~{3,})(.*)$")
_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]|$)")
_DIRECTIVE_LINE = re.compile(r"^\s*(_?)([A-Za-z][A-Za-z0-9_]*)\s*:(?:\s+(.*?))?\s*$")

LOCAL_KEYS = frozenset({"class", "paginate", "header", "footer", "background", "color", "notes"})
"""Directives that apply to a slide (and, without ``_``, to the following ones)."""
# Settings with security weight (who may frame the deck, whether raw scripts
# run) or nested structure are front matter only, never a comment mid-deck.
_COMMENT_GLOBALS = GLOBAL_KEYS - {"embed", "pdf", "scripts"}

_FENCE_START = frozenset("`~ ")
_NOTES_START = frozenset("?N \t")


def _starts_notes(line: str) -> bool:
    """A ``???`` line (remark) or a ``Note:``/``Notes:`` line (reveal.js)."""
    return line.strip() == "???" or line.startswith(("Note:", "Notes:"))


def canonical(key: str) -> str:
    """The slidesvc name of a directive key (Marp camelCase aliases resolved)."""
    return ALIASES.get(key, key)


def fence_opening(line: str) -> str | None:
    """The fence (```` ``` ```` or ``~~~``, full length) that ``line`` opens, or None."""
    head = line.lstrip(" ")[:3]
    if head != "```" and head != "~~~":  # the cheap answer for nearly every line
        return None
    match = FENCE_OPEN.match(line)
    if match is None:
        return None
    fence = match.group(2)
    if fence[0] == "`" and "`" in match.group(3):
        return None
    return fence


def closes_fence(line: str, fence: str) -> bool:
    """True when ``line`` closes a block opened with ``fence``."""
    stripped = line.strip()
    return (
        len(stripped) >= len(fence)
        and stripped == fence[0] * len(stripped)
        and len(line) - len(line.lstrip(" ")) <= 3
    )


@dataclass
class Chunk:
    """The source lines of one slide."""

    start: int
    """1-based source line of ``lines[0]`` (the line after the separator)."""
    lines: list[str]

    @property
    def line(self) -> int:
        """The first non-blank line, or `start` for a blank slide."""
        for offset, text in enumerate(self.lines):
            if text.strip():
                return self.start + offset
        return self.start


def split_slides(
    lines: list[str], first: int, levels: tuple[int, ...], path: Path
) -> tuple[list[Chunk], list[Diagnostic]]:
    """Cut ``lines[first:]`` into slides; warnings for unterminated code fences."""
    chunks: list[Chunk] = []
    current: list[str] = []
    start = first + 1
    fence: str | None = None
    fence_line = 0
    in_comment = False
    in_notes = False
    has_content = False
    for index in range(first, len(lines)):
        line = lines[index]
        if fence is not None:
            if closes_fence(line, fence):
                fence = None
        elif in_comment:
            if "-->" in line:
                in_comment = False
        elif line[:3] == "---" and line.rstrip() == "---":
            chunks.append(Chunk(start, current))
            current, start = [], index + 2
            in_notes = has_content = False
            continue
        else:
            head = line[:1]
            opened = fence_opening(line) if head in _FENCE_START else None
            if opened is not None:
                fence, fence_line = opened, index + 1
            elif "<!--" in line:
                in_comment = line.find("-->", line.rfind("<!--") + 4) < 0
                if not line.lstrip().startswith("<!--"):
                    has_content = True
                current.append(line)
                continue
            elif head in _NOTES_START and _starts_notes(line):
                in_notes = True
            elif levels and not in_notes and has_content:
                heading = _HEADING.match(line)
                if heading and len(heading.group(1)) in levels:
                    chunks.append(Chunk(start, current))
                    current, start = [], index + 1
            if not has_content and line.strip():
                has_content = True
        current.append(line)
    chunks.append(Chunk(start, current))
    warnings = []
    if fence is not None:
        warnings.append(
            Diagnostic(
                path,
                fence_line,
                f"code block opened here with {fence} is never closed: add a line {fence} "
                "after the code (everything up to the end of the deck is code now)",
            )
        )
    return chunks, warnings


@dataclass
class Directive:
    """One ``key: value`` from a comment."""

    value: Any
    line: int


@dataclass
class SlideSource:
    """One slide taken apart: Markdown content, notes, directives."""

    line: int
    content: str
    content_line: int
    """Source line of the first line of `content`."""
    notes: list[str] = field(default_factory=list)
    local: dict[str, Directive] = field(default_factory=dict)
    spot: dict[str, Directive] = field(default_factory=dict)
    globals: dict[str, Directive] = field(default_factory=dict)


def _parse_comment(body: str) -> dict[str, tuple[str, Any]] | None:
    """``{key: (prefix, value)}`` when the comment is a directive, else None."""
    found: dict[str, tuple[str, Any]] = {}
    for raw in body.split("\n"):
        if not raw.strip():
            continue
        match = _DIRECTIVE_LINE.match(raw)
        if match is None:
            return _parse_yaml_comment(body, found)
        prefix, key, value = match.group(1), canonical(match.group(2)), match.group(3) or ""
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if key not in LOCAL_KEYS and (prefix or key not in _COMMENT_GLOBALS):
            return None
        found[key if not prefix else "_" + key] = (prefix, value)
    return found or None


def _parse_yaml_comment(
    body: str, found: dict[str, tuple[str, Any]]
) -> dict[str, tuple[str, Any]] | None:
    # Multi-line YAML values (``style: |``) only: never worth a YAML parse otherwise.
    if not found and not _DIRECTIVE_LINE.match(body.strip().split("\n", 1)[0]):
        return None
    data = load_yaml(body)
    if not isinstance(data, dict) or not data:
        return None
    result: dict[str, tuple[str, Any]] = {}
    for raw_key, value in data.items():
        key = str(raw_key)
        prefix = "_" if key.startswith("_") else ""
        name = canonical(key.lstrip("_"))
        if name not in LOCAL_KEYS and (prefix or name not in _COMMENT_GLOBALS):
            return None
        text = "" if value is None else value if isinstance(value, str) else str(value).lower()
        result[prefix + name] = (prefix, text)
    return result


def extract(chunk: Chunk) -> SlideSource:
    """Take directives and notes out of a slide's lines."""
    lines = list(chunk.lines)
    source = SlideSource(chunk.line, "", chunk.start)
    notes: list[tuple[int, str]] = []
    fence: str | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        if fence is not None:
            if closes_fence(line, fence):
                fence = None
            index += 1
            continue
        head = line[:1]
        opened = fence_opening(line) if head in _FENCE_START else None
        if opened is not None:
            fence = opened
            index += 1
            continue
        pos = _comment_start(line) if "<!--" in line else -1
        if pos >= 0:
            index = _take_comment(lines, index, pos, chunk.start, source, notes)
            continue
        if head in _NOTES_START and _starts_notes(line):
            first = line.split(":", 1)[1].strip() if ":" in line else ""
            notes.append((index, "\n".join([first, *lines[index + 1 :]])))
            del lines[index:]
            break
        index += 1
    source.content = "\n".join(lines)
    source.notes = [text.strip("\n") for _, text in sorted(notes, key=lambda n: n[0])]
    source.notes = [text for text in source.notes if text.strip()]
    return source


def _comment_start(line: str) -> int:
    """Position of ``<!--`` outside an inline code span, or -1."""
    pos = line.find("<!--")
    while pos >= 0 and line.count("`", 0, pos) % 2:
        pos = line.find("<!--", pos + 4)
    return pos


def _take_comment(
    lines: list[str],
    index: int,
    pos: int,
    start: int,
    source: SlideSource,
    notes: list[tuple[int, str]],
) -> int:
    """Cut the comment starting at ``lines[index][pos]``; return the index to go on at."""
    end_index = index
    end = lines[index].find("-->", pos + 4)
    while end < 0 and end_index + 1 < len(lines):
        end_index += 1
        end = lines[end_index].find("-->")
    closer = 3
    if end < 0:  # an unclosed comment hides the rest of the slide, as in HTML
        end_index, end, closer = len(lines) - 1, len(lines[-1]), 0
    if end_index == index:
        body = lines[index][pos + 4 : end]
    else:
        middle = lines[index + 1 : end_index]
        body = "\n".join([lines[index][pos + 4 :], *middle, lines[end_index][:end]])
    before, after = lines[index][:pos], lines[end_index][end + closer :]
    for blank in range(index + 1, end_index + 1):
        lines[blank] = ""
    rest = before + after
    lines[index] = rest if rest.strip() else ""
    line = start + index
    parsed = _parse_comment(body)
    if parsed is None:
        notes.append((index, body.strip()))
    else:
        for name, (prefix, value) in parsed.items():
            key = name.lstrip("_")
            directive = Directive(value.strip() if isinstance(value, str) else value, line)
            if key == "notes":
                if str(directive.value):
                    notes.append((index, str(directive.value)))
            elif prefix:
                source.spot[key] = directive
            elif key in LOCAL_KEYS:
                source.local[key] = directive
            else:
                source.globals[key] = directive
    # Text after the comment on the same line may hold another comment.
    return index if rest.strip() and _comment_start(lines[index]) >= 0 else end_index + 1
