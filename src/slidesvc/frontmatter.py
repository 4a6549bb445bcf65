"""Front matter: the YAML block at the top of a deck -> validated settings.

YAML is composed with a `yaml.SafeLoader` subclass that refuses anchors,
aliases and any non-standard tag, and the node tree is kept so that every
problem names the line of its key. Each key is checked by one converter in
`convert` (also used for global directives written in HTML comments), which
returns the Python value or raises `BadValue` saying what is allowed. Marp's
camelCase spellings are aliases of slidesvc's keys. Front matter made only of
plain ``key: value`` lines (most decks) is read without importing PyYAML at
all; a property test checks that this reader agrees with PyYAML.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from slidesvc.errors import DeckError, Diagnostic

MAX_FRONT_MATTER_BYTES = 64 * 1024

ALIASES = {
    "headingDivider": "heading_divider",
    "size": "aspect",
    "backgroundColor": "background",
    "backgroundImage": "background",
    "allow_scripts": "scripts",
}
"""Marp (and convenience) spellings -> slidesvc keys."""

ASPECTS = {"16:9": (1280, 720), "4:3": (960, 720), "16:10": (1280, 800)}

_SAFE_TAGS = {
    f"tag:yaml.org,2002:{name}"
    for name in ("str", "int", "float", "bool", "null", "seq", "map", "timestamp")
}
_SIMPLE_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*):(?:[ \t]+(.*?))?[ \t]*$")
_QUOTES = frozenset("'\"")
_SPECIAL_START = frozenset("0123456789+-.!&*|><=%@`{}[],?:#")
_YAML_BOOLS = {
    word: value
    for value, words in (
        (True, "yes Yes YES true True TRUE on On ON"),
        (False, "no No NO false False FALSE off Off OFF"),
    )
    for word in words.split()
}
_KEY_LOOKING = re.compile(r"^[A-Za-z_][\w-]*\s*:(\s|$)")
_SIZE = re.compile(r"^(\d{2,5})\s*[xX\u00d7]\s*(\d{2,5})$")
_LANG = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+$")


class BadValue(ValueError):
    """A setting's value is wrong; the message says what is allowed."""


@dataclass
class FrontMatter:
    """Validated settings by slidesvc key, with the line each key is on."""

    settings: dict[str, Any] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    body_start: int = 0
    """0-based index of the first line after the front matter."""
    errors: list[Diagnostic] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)


class _Rejected(Exception):
    def __init__(self, mark: Any, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message


Entry = tuple[str, Any, "str | None", int]
"""One front-matter key: (key as written, value, raw scalar text or None, line)."""


@cache
def _strict_loader() -> type[Any]:
    """A SafeLoader that also refuses anchors, aliases and unusual tags.

    Built on first use so that decks whose front matter is plain ``key: value``
    lines (read by `_simple_entries`) never import PyYAML.
    """
    import yaml

    class StrictLoader(yaml.SafeLoader):
        def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
            event = self.peek_event()  # type: ignore[no-untyped-call]
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise _Rejected(
                    event.start_mark,
                    "YAML anchors and aliases (& and *) are not allowed in front matter: "
                    "write the value out",
                )
            node = super().compose_node(parent, index)
            if node is not None and node.tag not in _SAFE_TAGS:
                raise _Rejected(
                    node.start_mark,
                    f"YAML tag {node.tag.replace('tag:yaml.org,2002:', '!!')} is not allowed "
                    "in front matter: remove it",
                )
            return node

    return StrictLoader


def load_yaml(text: str) -> Any:
    """``text`` loaded with the strict loader, or None when it is not safe, valid YAML."""
    import yaml

    try:
        loader = _strict_loader()(text)  # the reader already refuses control characters
    except yaml.YAMLError:
        return None
    try:
        return loader.get_single_data()
    except (_Rejected, yaml.YAMLError, ValueError):
        return None
    finally:
        loader.dispose()


def find_front_matter(lines: list[str]) -> int | None:
    """Index of the closing ``---`` when the deck starts with front matter, else None.

    A block counts as front matter only when its first meaningful line looks like
    a ``key:`` line, so a deck that merely starts with a slide separator followed
    by Markdown is not swallowed.
    """
    if not lines or lines[0].rstrip() != "---":
        return None
    for index in range(1, len(lines)):
        if lines[index].rstrip() == "---":
            break
    else:
        index = len(lines)
    for line in lines[1:index]:
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return index if _KEY_LOOKING.match(stripped) else None
    return index if index < len(lines) else None


def parse_front_matter(lines: list[str], path: Path) -> FrontMatter:
    """Read and validate the front matter at the top of ``lines`` (if any)."""
    end = find_front_matter(lines)
    if end is None:
        return FrontMatter()
    result = FrontMatter(body_start=end + 1)
    if end >= len(lines):
        raise DeckError(path, 1, "front matter is not closed: add a line '---' after it")
    text = "\n".join(lines[1:end])
    if len(text.encode("utf-8")) > MAX_FRONT_MATTER_BYTES:
        raise DeckError(
            path, 1, f"front matter is larger than {MAX_FRONT_MATTER_BYTES // 1024} KiB: shorten it"
        )
    entries = _simple_entries(lines[1:end])
    if entries is None:
        entries = _yaml_entries(text, path)
    for key, value, raw, line in entries:
        name = ALIASES.get(key, key)
        if name not in CONVERTERS:
            result.warnings.append(
                Diagnostic(path, line, f"unknown front matter key {key!r} (ignored)")
            )
            continue
        try:
            result.settings[name] = convert(name, value, raw)
            result.lines[name] = line
        except BadValue as exc:
            result.errors.append(Diagnostic(path, line, f"{key}: {exc}", "error"))
    return result


def _simple_entries(lines: list[str]) -> list[Entry] | None:
    """Entries of front matter made only of ``key: plain value`` lines, else None.

    Covers what most decks write (title, author, theme, paginate, ...) without
    PyYAML; anything beyond plain one-line scalars goes to `_yaml_entries`.
    """
    entries: list[Entry] = []
    for offset, line in enumerate(lines):
        if not line.strip() or line.startswith("#"):
            continue
        match = _SIMPLE_LINE.match(line) if line.isprintable() else None
        if match is None:
            return None
        key, raw = match.group(1), match.group(2) or ""
        if raw[:1] in _QUOTES:
            if len(raw) < 2 or raw[-1] != raw[0] or raw[0] in raw[1:-1] or "\\" in raw:
                return None
            raw = raw[1:-1]
            value: Any = raw
        elif raw in _YAML_BOOLS:
            value = _YAML_BOOLS[raw]
        elif raw in ("", "~", "null", "Null", "NULL"):
            value = None
        elif raw.isdigit() and (raw == "0" or raw[0] != "0"):
            value = int(raw)
        elif raw[0] in _SPECIAL_START or ": " in raw or " #" in raw or raw.endswith(":"):
            return None  # numbers, dates, flow and block syntax: YAML knows best
        else:
            value = raw
        entries.append((key, value, raw or None, offset + 2))
    return entries


def _yaml_entries(text: str, path: Path) -> list[Entry]:
    """Entries of any YAML mapping, composed safely so every key knows its line."""
    import yaml

    try:
        loader = _strict_loader()(text)
    except yaml.reader.ReaderError as exc:  # control characters
        raise DeckError(
            path,
            text.count("\n", 0, exc.position) + 2,
            f"front matter contains the control character U+{exc.character:04X}: remove it",
        ) from None
    try:
        root = loader.get_single_node()
    except _Rejected as exc:
        raise DeckError(path, _line(exc.mark), exc.message) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise DeckError(
            path, _line(mark), f"front matter is not valid YAML: {exc.problem}"
        ) from None
    except yaml.YAMLError as exc:
        raise DeckError(path, 2, f"front matter is not valid YAML: {exc}") from None
    if root is None:
        return []
    if not isinstance(root, yaml.MappingNode):
        raise DeckError(
            path, _line(root.start_mark), "front matter must be a mapping of key: value"
        )
    entries: list[Entry] = []
    for key_node, value_node in root.value:
        raw = value_node.value if isinstance(value_node, yaml.ScalarNode) else None
        try:
            value = loader.construct_object(value_node, deep=True)
        # An impossible date (2024-13-45) fails in the constructor: keep the text.
        except (yaml.YAMLError, ValueError):
            value = raw
        entries.append((str(key_node.value), value, raw, _line(key_node.start_mark)))
    loader.dispose()
    return entries


def _line(mark: Any) -> int:
    # The YAML text starts on the deck's second line.
    return mark.line + 2 if mark is not None else 1


def scalar(text: str) -> Any:
    """The YAML 1.2-ish meaning of a one-line directive value (bool, int or text)."""
    low = text.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if text.isdigit():
        return int(text)
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def convert(name: str, value: Any, raw: str | None) -> Any:
    """Validate ``value`` for setting ``name``; ``raw`` is the YAML scalar as written."""
    return CONVERTERS[name](value, raw)


def _show(value: Any) -> str:
    return repr(value) if not isinstance(value, str) else f"'{value}'"


def _text(value: Any, raw: str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        raise BadValue(f"{_show(value)} is not text: write a single value")
    # The raw scalar keeps what the author wrote: `16:9` stays `16:9`, not 969.
    if raw is not None and not isinstance(value, str):
        return raw
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


def _bool(value: Any, raw: str | None) -> bool:
    if isinstance(value, bool):
        return value
    raise BadValue(f"{_show(raw if raw is not None else value)} is not allowed: use true or false")


def _aspect(value: Any, raw: str | None) -> tuple[str, int, int]:
    text = _text(value, raw).strip()
    if text in ASPECTS:
        return (text, *ASPECTS[text])
    match = _SIZE.match(text)
    if match:
        width, height = int(match.group(1)), int(match.group(2))
        if 100 <= width <= 8000 and 100 <= height <= 8000:
            return (f"{width}x{height}", width, height)
    raise BadValue(
        f"{_show(text)} is not allowed: use 16:9, 4:3, 16:10 or WIDTHxHEIGHT in px (1280x720)"
    )


def _math(value: Any, raw: str | None) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("katex", "mathjax"):
        return True
    raise BadValue(f"{_show(value)} is not allowed: use true, false, katex or mathjax")


def _heading_divider(value: Any, raw: str | None) -> tuple[int, ...]:
    if value is None:
        return ()
    allowed = "use a heading level 1-6 or a list of levels ([1, 2])"
    if isinstance(value, int) and not isinstance(value, bool):
        if 1 <= value <= 6:
            return tuple(range(1, value + 1))
        raise BadValue(f"{value} is not allowed: {allowed}")
    if (
        isinstance(value, list)
        and value
        and all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 6 for v in value)
    ):
        return tuple(sorted(set(value)))
    raise BadValue(f"{_show(value)} is not allowed: {allowed}")


def _lang(value: Any, raw: str | None) -> str:
    text = _text(value, raw).strip()
    if _LANG.match(text):
        return text
    raise BadValue(f"{_show(text)} is not a language tag: use e.g. en, de or pt-BR")


def _embed(value: Any, raw: str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, dict) or set(value) - {"origins"}:
        raise BadValue(f"{_show(value)} is not allowed: use a mapping with 'origins: [URL, ...]'")
    origins = value.get("origins") or []
    if isinstance(origins, str):
        origins = [origins]
    if not isinstance(origins, list):
        raise BadValue(f"origins {_show(origins)} is not a list of origins")
    result = []
    for origin in origins:
        text = str(origin).rstrip("/")
        if not _ORIGIN.match(text):
            raise BadValue(
                f"origin {_show(origin)} is not allowed: use scheme://host[:port], "
                "like https://wiki.example.org"
            )
        result.append(text)
    return tuple(result)


def _pdf(value: Any, raw: str | None) -> dict[str, Any]:
    if value is None:
        return {}
    allowed = "use a mapping with 'notes: true|false' and 'filename: NAME.pdf'"
    if not isinstance(value, dict) or set(value) - {"notes", "filename"}:
        raise BadValue(f"{_show(value)} is not allowed: {allowed}")
    result: dict[str, Any] = {}
    if "notes" in value:
        if not isinstance(value["notes"], bool):
            raise BadValue(f"notes {_show(value['notes'])} is not allowed: use true or false")
        result["notes"] = value["notes"]
    if "filename" in value:
        name = str(value["filename"])
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise BadValue(f"filename {_show(name)} is not allowed: use a plain file name")
        result["filename"] = name if name.lower().endswith(".pdf") else f"{name}.pdf"
    return result


def _anything(value: Any, raw: str | None) -> Any:
    return None


CONVERTERS: dict[str, Callable[[Any, str | None], Any]] = {
    "title": _text,
    "author": _text,
    "date": _text,
    "lang": _lang,
    "description": _text,
    "theme": _text,
    "style": _text,
    "aspect": _aspect,
    "paginate": _bool,
    "header": _text,
    "footer": _text,
    "class": _text,
    "background": _text,
    "color": _text,
    "math": _math,
    "heading_divider": _heading_divider,
    "embed": _embed,
    "pdf": _pdf,
    "marp": _anything,
    "scripts": _bool,
}
"""Every key front matter may hold (after `ALIASES`), with its converter."""

GLOBAL_KEYS = frozenset(CONVERTERS) - {
    "paginate",
    "header",
    "footer",
    "class",
    "background",
    "color",
}
"""Keys that describe the whole deck; the others are the first slide's directives."""
