"""The deck's slug: its identity in URLs, folders and image names.

The file name without ``.md``, lower-cased, with every run of characters
outside ``[a-z0-9-]`` replaced by one ``-`` (``My Talk.md`` -> ``my-talk``).
"""

from __future__ import annotations

import re
from pathlib import Path

_NOT_SLUG = re.compile(r"[^a-z0-9-]+")


def slugify(path: Path | str) -> str:
    """The slug of a deck file; ``deck`` when nothing usable is left."""
    name = Path(path).name
    if name.lower().endswith(".md"):
        name = name[:-3]
    slug = _NOT_SLUG.sub("-", name.lower()).strip("-")
    return slug or "deck"
