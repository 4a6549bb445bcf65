"""Time `render_html` alone (parsing excluded) on generated decks.

    python bench/render_html_bench.py [--runs 20]

Prints a table: best and median render time, page size raw and gzipped, and
how many times the deck's repeated image is stored in the page (must be 1).
"""

from __future__ import annotations

import argparse
import base64
import gzip
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from gen_deck import write_deck  # noqa: E402

from slidesvc.parse import load_deck  # noqa: E402
from slidesvc.render_html import render_html, runtime  # noqa: E402

SIZES = (2, 10, 100, 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    rt = runtime()
    print(f"viewer runtime: {len((rt.js + rt.css).encode()) / 1024:.1f} KB raw, ", end="")
    print(f"{len(gzip.compress((rt.js + rt.css).encode())) / 1024:.1f} KB gzipped")
    header = ("slides", 6), ("best ms", 8), ("median ms", 10), ("KB", 8), ("KB gz", 7)
    print(" ".join(f"{name:>{width}}" for name, width in header), f"{'image copies':>13}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in SIZES:
            deck = load_deck(write_deck(n, Path(tmp)))
            times = []
            for _ in range(args.runs):
                start = time.perf_counter()
                page = render_html(deck)
                times.append((time.perf_counter() - start) * 1000)
            data = page.encode()
            copies = max(
                (page.count(base64.b64encode(a.data).decode()) for a in deck.assets.values()),
                default=0,
            )
            print(
                f"{n:>6} {min(times):>8.2f} {statistics.median(times):>10.2f}"
                f" {len(data) / 1024:>8.1f} {len(gzip.compress(data)) / 1024:>7.1f} {copies:>13}"
            )


if __name__ == "__main__":
    main()
