"""Generate benchmark decks: N slides of headings, lists, code, a table,
a repeated image and speaker notes. Shared by every bench script.

    python bench/gen_deck.py 100 /tmp/bench-decks     # writes /tmp/bench-decks/deck-100.md
"""

from __future__ import annotations

import sys
from pathlib import Path

FRONT = """---
title: Benchmark deck ({n} slides)
author: slidesvc bench
paginate: true
---

"""

SLIDE = """# Section {i}: measuring things

* point one about item {i}
* point two, with `inline code` and **bold**
* point three links to [the docs](https://example.org/{i})

```python {{2}}
def slide_{i}(x: int) -> int:
    total = x * {i}
    return total + 1
```

| metric | value | unit |
|--------|------:|------|
| slides | {i} | count |
| time   | {t} | ms |

![w:120px](img/logo.png)

???
Notes for slide {i}: say something clever about point {i}.
"""


def logo_png(size: int = 64) -> bytes:
    """A small real PNG (a two-colour checkerboard)."""
    from slidesvc.thumbnail import encode_png

    blue, white = b"\x24\x56\xc7", b"\xf6\xf7\xf9"
    rows = [
        b"".join(blue if (x // 8 + y // 8) % 2 else white for x in range(size)) for y in range(size)
    ]
    return encode_png(rows, size, size)


def deck_text(n: int) -> str:
    slides = [SLIDE.format(i=i, t=i * 7 % 1000) for i in range(1, n + 1)]
    return FRONT.format(n=n) + "\n---\n\n".join(slides)


def write_deck(n: int, folder: Path) -> Path:
    """Write ``folder/deck-N.md`` (and ``folder/img/logo.png``); return its path."""
    (folder / "img").mkdir(parents=True, exist_ok=True)
    (folder / "img" / "logo.png").write_bytes(logo_png())
    path = folder / f"deck-{n}.md"
    path.write_text(deck_text(n), encoding="utf-8")
    return path


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("bench/out")
    print(write_deck(count, out))
