"""List block processors for slides: fragment lists and CommonMark-like lists.

Python-Markdown knows ``*``/``-``/``+`` and ``1.`` lists, mixes them into one
list, and nests only by four spaces. Slides need more: ``*`` and ``1)``
lists are fragment lists (``class="fragments"``, shown step by step), a
change of marker starts a new list as in CommonMark, and items indented
under their parent's text (Marp decks use two spaces) nest. One processor
class per marker kind does this; `LIST_PROCESSORS` says how to register them.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as etree
from typing import ClassVar

from markdown.blockparser import BlockParser
from markdown.blockprocessors import OListProcessor

MARKER_ATTRIBUTE = "data-slidesvc-marker"
"""Remembers a list's marker while parsing; the slide tree step removes it."""


class _ListProcessor(OListProcessor):
    """One list marker kind; a different marker at the top level starts a new list."""

    MARKER: ClassVar[str] = r"\d+\."
    FRAGMENTS: ClassVar[bool] = False
    LAZY_OL = False  # `3.` starts at 3, as in CommonMark

    def __init__(self, parser: BlockParser) -> None:
        super().__init__(parser)
        indent, marker = self.tab_length - 1, self.MARKER
        self.RE = re.compile(rf"^[ ]{{0,{indent}}}{marker}[ ]+(.*)")
        self.CHILD_RE = re.compile(rf"^[ ]{{0,{indent}}}(({marker}))[ ]+(.*)")
        self.OTHER_RE = re.compile(rf"^[ ]{{0,{indent}}}(?!{marker}[ ])(\d+[.)]|[*+-])[ ]+")
        self.INDENT_RE = re.compile(
            rf"^[ ]{{{self.tab_length},{self.tab_length * 2 - 1}}}(\d+[.)]|[*+-])[ ]+.*"
        )
        self._sibling_check = False

    def lastChild(self, parent: etree.Element) -> etree.Element | None:
        child = super().lastChild(parent)
        # The base class's first lookup finds the list to continue (items split by
        # blank lines); a list of another marker is not one to continue.
        if self._sibling_check:
            self._sibling_check = False
            if child is not None and child.get(MARKER_ATTRIBUTE, self.MARKER) != self.MARKER:
                return None
        return child

    def run(self, parent: etree.Element, blocks: list[str]) -> None:
        lines = _four_space_nesting(blocks[0].split("\n"), self.tab_length)
        blocks[0] = "\n".join(lines)
        for index in range(1, len(lines)):
            if self.OTHER_RE.match(lines[index]):
                blocks[0] = "\n".join(lines[:index])
                blocks.insert(1, "\n".join(lines[index:]))
                break
        self._sibling_check = True
        super().run(parent, blocks)
        self._sibling_check = False
        last = super().lastChild(parent)
        if last is not None and last.tag == self.TAG and MARKER_ATTRIBUTE not in last.attrib:
            last.set(MARKER_ATTRIBUTE, self.MARKER)
            if self.FRAGMENTS:
                last.set("class", "fragments")


_ANY_MARKER = re.compile(r"^( *)(?:[*+-]|\d{1,9}[.)])( +)(?=\S)")


def _four_space_nesting(lines: list[str], tab: int) -> list[str]:
    """Re-indent a list block nested CommonMark-style (``  * b`` under ``* a``).

    Marp decks nest items under the parent's text, often two spaces in;
    Python-Markdown nests only by multiples of four. Each item's depth follows
    from the items above it, and its lines are re-indented to ``depth * 4``.
    """
    if not any(0 < len(line) - len(line.lstrip(" ")) < tab for line in lines[1:]):
        return lines
    open_items: list[int] = []  # content column of each open item
    out = []
    for line in lines:
        indent = len(line) - len(line.lstrip(" "))
        match = _ANY_MARKER.match(line)
        if match is not None:
            while open_items and indent < open_items[-1]:
                open_items.pop()
            depth = len(open_items)
            open_items.append(match.end())
            out.append(" " * (depth * tab) + line[indent:])
        elif open_items and line.strip() and indent >= open_items[-1]:
            extra = indent - open_items[-1]
            out.append(" " * (len(open_items) * tab + extra) + line[indent:])
        else:
            out.append(line)
    return out


class _DotList(_ListProcessor):
    TAG = "ol"


class _ParenList(_ListProcessor):
    TAG = "ol"
    MARKER = r"\d+\)"
    FRAGMENTS = True


class _StarList(_ListProcessor):
    TAG = "ul"
    MARKER = r"[*]"
    FRAGMENTS = True


class _DashList(_ListProcessor):
    TAG = "ul"
    MARKER = r"[-]"


class _PlusList(_ListProcessor):
    TAG = "ul"
    MARKER = r"[+]"


LIST_PROCESSORS: list[tuple[str, type[_ListProcessor], int]] = [
    ("list_dot", _DotList, 40),
    ("list_paren", _ParenList, 39),
    ("list_star", _StarList, 30),
    ("list_dash", _DashList, 29),
    ("list_plus", _PlusList, 28),
]
"""(name, processor class, priority) replacing Python-Markdown's olist/ulist."""
