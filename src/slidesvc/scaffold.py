"""`slidesvc new`: start a deck from the template that shows the syntax."""

from __future__ import annotations

import datetime
import re
import string
from importlib import resources
from pathlib import Path

from slidesvc.errors import SlidesvcError
from slidesvc.fsutil import write_atomic

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,80}$")


def new_deck(name: str, folder: Path) -> Path:
    """Write ``folder/NAME.md`` from the template; never overwrite a deck."""
    stem = name.removesuffix(".md")
    if not _NAME_RE.match(stem) or ".." in stem:
        raise SlidesvcError(
            f"{name!r}: not a usable deck name; use letters, digits, spaces, '-', '_' or '.'"
        )
    path = folder / f"{stem}.md"
    if path.exists():
        raise SlidesvcError(f"{path}: already exists; choose another name or edit that deck")
    template = resources.files("slidesvc").joinpath("templates/new-deck.md").read_text("utf-8")
    title = stem.replace("-", " ").replace("_", " ").strip().title()
    text = string.Template(template).safe_substitute(
        title=title, name=stem, year=datetime.date.today().year
    )
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text.encode("utf-8"))
    return path
