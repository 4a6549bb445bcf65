"""Time `slidesvc build` (whole process) on generated decks, next to Marp CLI
and a bare Python-Markdown + Pygments script (the issue's reference points).

    python bench/build_bench.py [--runs 3] [--no-marp]

Prints a table: wall time (median of runs), peak RSS of the process, output
size raw and gzipped; the size of a 2-slide deck; the viewer runtime size.
Marp CLI is installed with npm into bench/.scratch (never into the project).
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from gen_deck import write_deck  # noqa: E402

SCRATCH = HERE / ".scratch"
BARE = """\
import sys, markdown
text = open(sys.argv[1], encoding="utf-8").read()
html = markdown.markdown(text, extensions=["fenced_code", "codehilite", "tables"])
open(sys.argv[2], "w", encoding="utf-8").write(html)
"""
"""The issue's reference point: a bare Python-Markdown + Pygments conversion."""
SIZES = (10, 100, 1000)


def run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Run `cmd`; return (wall seconds, peak RSS in MB of it and its children)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err}")
    return wall, usage.ru_maxrss // 1024


def timed(cmd: list[str], runs: int) -> tuple[float, int]:
    results = [run(cmd) for _ in range(runs)]
    return statistics.median(r[0] for r in results), max(r[1] for r in results)


def sizes(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    return len(data), len(gzip.compress(data, 9))


def marp_cli() -> Path | None:
    exe = SCRATCH / "node_modules" / ".bin" / "marp"
    if exe.exists():
        return exe
    if shutil.which("npm") is None:
        return None
    SCRATCH.mkdir(exist_ok=True)
    subprocess.run(
        ["npm", "install", "--silent", "--prefix", str(SCRATCH), "@marp-team/marp-cli"],
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return exe if exe.exists() else None


def kb(n: int) -> str:
    return f"{n / 1024:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-marp", action="store_true")
    args = parser.parse_args()
    slidesvc = [sys.executable, "-m", "slidesvc"]
    marp = None if args.no_marp else marp_cli()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print(f"{'deck':>10} {'tool':>9} {'wall s':>8} {'peak MB':>8} {'out KB':>9} {'gzip KB':>8}")
        for n in SIZES:
            deck = write_deck(n, work)
            out = work / f"deck-{n}.html"
            wall, peak = timed([*slidesvc, "build", str(deck), "-o", str(out)], args.runs)
            raw, gz = sizes(out)
            print(f"{n:>7} sl {'slidesvc':>9} {wall:>8.3f} {peak:>8} {kb(raw):>9} {kb(gz):>8}")
            bare_out = work / f"bare-{n}.html"
            wall, peak = timed([sys.executable, "-c", BARE, str(deck), str(bare_out)], args.runs)
            raw, gz = sizes(bare_out)
            print(f"{n:>7} sl {'bare md':>9} {wall:>8.3f} {peak:>8} {kb(raw):>9} {kb(gz):>8}")
            if marp is not None:
                mout = work / f"marp-{n}.html"
                wall, peak = timed([str(marp), "--no-stdin", str(deck), "-o", str(mout)], args.runs)
                raw, gz = sizes(mout)
                print(f"{n:>7} sl {'marp':>9} {wall:>8.3f} {peak:>8} {kb(raw):>9} {kb(gz):>8}")

        small = work / "small.md"
        small.write_text("# One\n\nHello\n\n---\n\n## Two\n\n* a\n* b\n", encoding="utf-8")
        subprocess.run([*slidesvc, "build", str(small), "-o", str(work / "small.html")], check=True)
        raw, gz = sizes(work / "small.html")
        print(f"\n2-slide deck: {kb(raw)} KB raw, {kb(gz)} KB gzipped (targets: < 60 KB, < 20 KB)")
        if marp is not None:
            subprocess.run(
                [str(marp), "--no-stdin", str(small), "-o", str(work / "small-marp.html")],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            raw, gz = sizes(work / "small-marp.html")
            print(f"2-slide deck, Marp: {kb(raw)} KB raw, {kb(gz)} KB gzipped")

    viewer = Path(__import__("slidesvc").__file__).parent / "viewer"
    runtime = b"".join(
        p.read_bytes() for p in sorted(viewer.glob("*.js")) + sorted(viewer.glob("*.css"))
    )
    print(
        f"viewer runtime (JS+CSS): {kb(len(runtime))} KB raw, "
        f"{kb(len(gzip.compress(runtime, 9)))} KB gzipped (target: < 25 KB gzipped)"
    )


if __name__ == "__main__":
    main()
