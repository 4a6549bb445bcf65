"""PDF export benchmark: speed and memory against Marp CLI, size, and fidelity.

    python bench/pdf_bench.py                      # fidelity + 100 and 1000 slides
    python bench/pdf_bench.py --sizes 100 --no-marp
    python bench/pdf_bench.py --fidelity-only

Speed: every tool runs as its own process tree on the same generated decks
(bench/gen_deck.py); wall time and the peak summed RSS of the whole tree
(sampled from /proc every 20 ms) are measured. "cold" is `slidesvc pdf` with
an empty page cache. Cold exports alternate with Marp's for ``--rounds``
rounds (default 3); the table shows each tool's median times and highest
peak, and the ratio of each round. "1 slide edited" edits one slide and runs
it again (warm cache, new process); "pdf --watch" and "serve --watch" time
the re-export of such an edit by a running process (its warm worker forks the
render; median of five edits): the export itself, and from the save to the
new PDF (which adds the 0.3 s file polling). "single pass" is one plain
WeasyPrint render of the whole deck (the baseline for the PDF size ratio).
Marp CLI is installed with ``npm install @marp-team/marp-cli`` into
bench/.scratch and drives Debian's Chromium (CHROME_PATH=/usr/bin/chromium).

Fidelity: each example deck's page N (pdftoppm, at the slide's pixel size)
against slide N as Chromium shows it (the deck's own HTML with print media
emulated, so every fragment is visible); a pixel "differs noticeably" when a
channel differs by more than 48/255. Target: under 2% on every page.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCRATCH = HERE / ".scratch"
MARP = SCRATCH / "node_modules" / ".bin" / "marp"
PYTHON = sys.executable
CHROMIUM = os.environ.get("SLIDESVC_CHROMIUM", "/usr/bin/chromium")
NOTICEABLE = 48

sys.path.insert(0, str(HERE))
from gen_deck import write_deck  # noqa: E402

# --------------------------------------------------------------------------- measuring


def _tree_rss(root: int) -> int:
    """Summed RSS (bytes) of ``root`` and all its descendants."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().rsplit(b")", 1)[1].split()
            parents[int(entry)] = int(stat[1])
            rss[int(entry)] = int(stat[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in tree:
                tree.add(pid)
                frontier.append(pid)
    return sum(rss.get(pid, 0) for pid in tree)


@dataclass
class Run:
    wall: float
    cpu: float
    peak_mb: float
    ok: bool


def measure(command: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> Run:
    """Run a command; wall time and peak RSS of its process tree."""
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = subprocess.Popen(
        command, env={**os.environ, **(env or {})}, cwd=cwd,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss(process.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = process.communicate()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    done.set()
    sampler.join()
    if process.returncode != 0:
        print(stderr.decode(errors="replace")[-2000:], file=sys.stderr)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return Run(wall, cpu, peak / 2**20, process.returncode == 0)


# --------------------------------------------------------------------------- speed


EDITS = 5
"""Watch-mode re-exports are timed this many times (one edit each); medians are reported."""


def edit_one_slide(deck: Path, n: int, mark: str = "edited") -> None:
    """Retitle the middle slide (again: each call's ``mark`` replaces the last one)."""
    middle = n // 2
    text = deck.read_text("utf-8")
    edited = re.sub(
        rf"^# Section {middle}( \([^)\n]*\))?:", f"# Section {middle} ({mark}):", text, flags=re.M
    )
    assert edited != text, "the bench deck has no middle slide to edit"
    deck.write_text(edited, "utf-8")


def watch_reexport(deck: Path, n: int, cache: str) -> tuple[float, float]:
    """`slidesvc pdf --watch`: (export seconds it reports, save-to-new-PDF seconds)."""
    out = deck.with_suffix(".watch.pdf")  # beside the deck, as by default
    log = Path(cache) / "watch.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [PYTHON, "-m", "slidesvc", "pdf", str(deck), "-o", str(out), "--watch"],
            stderr=stderr,
            env={**os.environ, "SLIDESVC_CACHE_DIR": cache},
        )
    reported, latencies = [], []
    try:
        _wait(lambda: log.read_text().count(" wrote ") == 1, 600)
        for edit in range(1, EDITS + 1):
            time.sleep(0.5)
            saved = time.perf_counter()
            edit_one_slide(deck, n, f"watched {edit}")
            _wait(lambda edit=edit: log.read_text().count(" wrote ") == edit + 1, 600)
            latencies.append(time.perf_counter() - saved)
            reported.append(float(log.read_text().rsplit(" in ", 1)[1].split(" s;", 1)[0]))
    finally:
        process.terminate()
        process.wait(30)
    return statistics.median(reported), statistics.median(latencies)


def serve_reexport(deck: Path, n: int, cache: str) -> tuple[float, float]:
    """`slidesvc serve --watch`: (GET /deck.pdf once the edit is served, save-to-PDF)."""
    import json
    import socket
    from urllib.request import urlopen

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}/"
    process = subprocess.Popen(
        [PYTHON, "-m", "slidesvc", "serve", str(deck), "--watch", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "SLIDESVC_CACHE_DIR": cache},
    )

    def get(path: str) -> bytes:
        with urlopen(base + path, timeout=600) as resp:
            return bytes(resp.read())

    def version() -> str:
        return str(json.loads(get("deck.json"))["version"])

    exports, latencies = [], []
    try:
        _wait(lambda: _answers(base + "healthz"), 60)
        get("deck.pdf")  # the first render
        for edit in range(1, EDITS + 1):
            time.sleep(0.5)
            before = version()
            saved = time.perf_counter()
            edit_one_slide(deck, n, f"served {edit}")
            _wait(lambda before=before: version() != before, 60)
            asked = time.perf_counter()
            get("deck.pdf")
            done = time.perf_counter()
            exports.append(done - asked)
            latencies.append(done - saved)
    finally:
        process.terminate()
        process.wait(30)
    return statistics.median(exports), statistics.median(latencies)


def _answers(url: str) -> bool:
    from urllib.request import urlopen

    try:
        with urlopen(url, timeout=1):
            return True
    except OSError:
        return False


def _wait(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the benchmarked process did not get there in time")
        time.sleep(0.01)


IN_PROCESS = """
import sys, tempfile, time
from dataclasses import replace
from pathlib import Path
from slidesvc.parse import load_deck
from slidesvc.render_pdf import render_pdf
deck = load_deck(Path(sys.argv[1]))
with tempfile.TemporaryDirectory() as cache:
    started = time.perf_counter()
    render_pdf(deck, cache_dir=Path(cache), jobs=2)
    cold = time.perf_counter() - started
    middle = len(deck.slides) // 2
    slide = deck.slides[middle]
    edited = replace(slide, html=slide.html.replace("<h1>", "<h1>Edited "))
    deck = replace(deck, slides=(*deck.slides[:middle], edited, *deck.slides[middle + 1:]))
    started = time.perf_counter()
    render_pdf(deck, cache_dir=Path(cache), jobs=2)
    print(f"{cold:.3f} {time.perf_counter() - started:.3f}")
"""

SINGLE_PASS = """
import sys
from pathlib import Path
from weasyprint import CSS, HTML
from slidesvc.parse import load_deck
from slidesvc import pdf_html as h, render_pdf as r
deck = load_deck(Path(sys.argv[1]))
css = h.stylesheet(deck)
html = h.document(deck.meta.lang, [h.page_body(s, deck.meta.width, False) for s in deck.slides])
for asset_id, asset in deck.assets.items():
    html = html.replace(r.ASSET_SCHEME + asset_id, asset.data_uri())
    css = css.replace(r.ASSET_SCHEME + asset_id, asset.data_uri())
fetcher = r.ConfinedFetcher(deck.folder, {})
doc = HTML(string=html, base_url=deck.folder.as_uri() + "/", url_fetcher=fetcher).render(
    stylesheets=[CSS(string=css, url_fetcher=fetcher)])
Path(sys.argv[2]).write_bytes(doc.write_pdf())
"""


def typical(runs: list[Run]) -> Run:
    """The median wall and CPU time of repeated runs, with the highest peak."""
    return Run(
        statistics.median_low(r.wall for r in runs),
        statistics.median_low(r.cpu for r in runs),
        max(r.peak_mb for r in runs),
        all(r.ok for r in runs),
    )


def speed(sizes: list[int], marp: bool, single_max: int, rounds: int) -> list[str]:
    rows = [
        "| slides | tool | wall s | CPU s | peak MB (tree) | PDF KB | vs Marp (wall) |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    if marp and not MARP.exists():
        print(
            f"Marp CLI is not at {MARP}, so it is left out: install it with "
            f"`npm install --prefix {SCRATCH} @marp-team/marp-cli` (or pass --no-marp)",
            file=sys.stderr,
        )
        marp = False
    for n in sizes:
        first_row = len(rows)
        folder = SCRATCH / "decks"
        deck = write_deck(n, folder)
        out = SCRATCH / "out"
        out.mkdir(exist_ok=True)
        results: dict[str, tuple[Run, int]] = {}
        original = deck.read_text("utf-8")
        pdf, marp_pdf = out / f"slidesvc-{n}.pdf", out / f"marp-{n}.pdf"
        marp_command = [str(MARP), "--pdf", "--allow-local-files", "--browser-timeout", "0"]
        marp_command += ["--browser-path", CHROMIUM, str(deck), "-o", str(marp_pdf)]
        marp_env = {"CHROME_PATH": CHROMIUM, "CHROME_NO_SANDBOX": "1"}
        with tempfile.TemporaryDirectory(dir=SCRATCH) as scratch:
            # Cold exports alternate with Marp's, each with an empty page cache;
            # the last round's cache is the warm one for the edits below.
            colds: list[Run] = []
            marps: list[Run] = []
            for round_ in range(rounds):
                cache = str(Path(scratch) / f"cache-{round_}")
                env = {"SLIDESVC_CACHE_DIR": cache}
                colds.append(
                    measure([PYTHON, "-m", "slidesvc", "pdf", str(deck), "-o", str(pdf)], env)
                )
                if marp:
                    marps.append(measure(marp_command, env=marp_env))
            results["slidesvc pdf, cold"] = (typical(colds), pdf.stat().st_size)
            if marp:
                results["Marp CLI (Chromium)"] = (typical(marps), marp_pdf.stat().st_size)
            edit_one_slide(deck, n)
            edited = out / f"slidesvc-{n}-edited.pdf"
            results["slidesvc pdf, 1 slide edited"] = (
                measure([PYTHON, "-m", "slidesvc", "pdf", str(deck), "-o", str(edited)], env),
                edited.stat().st_size,
            )
            deck.write_text(original, "utf-8")
            watched = watch_reexport(deck, n, cache)
            deck.write_text(original, "utf-8")
            served = serve_reexport(deck, n, cache)
            deck.write_text(original, "utf-8")
        if n <= single_max:
            single = out / f"single-{n}.pdf"
            results["WeasyPrint single pass"] = (
                measure([PYTHON, "-c", SINGLE_PASS, str(deck), str(single)]),
                single.stat().st_size,
            )
        marp_wall = results.get("Marp CLI (Chromium)", (Run(0, 0, 0, False), 0))[0].wall
        for tool, (run, size) in results.items():
            ratio = f"{run.wall / marp_wall:.2f}" if marp_wall else "-"
            status = "" if run.ok else " (FAILED)"
            cells = [
                str(n),
                tool + status,
                f"{run.wall:.2f}",
                f"{run.cpu:.2f}",
                f"{run.peak_mb:.0f}",
            ]
            cells += [f"{size / 1024:.0f}", ratio]
            rows.append("| " + " | ".join(cells) + " |")
        inproc = subprocess.run(
            [PYTHON, "-c", IN_PROCESS, str(deck)], capture_output=True, text=True, check=True
        ).stdout.split()
        cold_s, edit_s = float(inproc[0]), float(inproc[1])
        rows.append(
            f"| {n} | render_pdf() in process: cold {cold_s:.2f} s, one slide edited "
            f"{edit_s:.2f} s ({edit_s / cold_s:.1%}) | | | | | |"
        )
        if marps and rounds > 1:
            ratios = ", ".join(f"{c.wall / m.wall:.2f}" for c, m in zip(colds, marps, strict=True))
            rows.append(f"| {n} | cold / Marp, round by round: {ratios} | | | | | |")
        cold = results["slidesvc pdf, cold"]
        rerun = results["slidesvc pdf, 1 slide edited"][0]
        rows.append(
            f"| {n} | slidesvc pdf re-export / cold | {rerun.wall / cold[0].wall:.1%} | | | | |"
        )
        for name, (export, latency) in (("pdf --watch", watched), ("serve --watch", served)):
            rows.append(
                f"| {n} | {name} re-export: {export:.2f} s = {export / cold[0].wall:.1%} of cold "
                f"(save to new PDF {latency:.2f} s) | | | | | |"
            )
        if "WeasyPrint single pass" in results:
            ratio = cold[1] / results["WeasyPrint single pass"][1]
            rows.append(f"| {n} | PDF size / single pass | {ratio:.2f}x | | | | |")
        print("\n".join(rows[first_row:]), flush=True)
    return rows


# --------------------------------------------------------------------------- fidelity


def fidelity(decks: list[Path]) -> list[str]:
    from PIL import Image, ImageChops
    from playwright.sync_api import sync_playwright

    from slidesvc.parse import load_deck
    from slidesvc.render_html import render_html
    from slidesvc.render_pdf import render_pdf

    rows = [
        "| deck | pages | mean % differing | worst page | worst % |",
        "|---|---:|---:|---:|---:|",
    ]
    work = Path(tempfile.mkdtemp(dir=SCRATCH, prefix="fidelity-"))
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update"]  # fmt: skip
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
        for path in decks:
            deck = load_deck(path)
            w, h = deck.meta.width, deck.meta.height
            pdf = work / f"{deck.slug}.pdf"
            pdf.write_bytes(render_pdf(deck, cache_dir=work / "cache", diagnostics=[]))
            prefix = work / deck.slug
            subprocess.run(
                ["pdftoppm", "-png", "-r", "72", "-scale-to-x", str(w), "-scale-to-y", str(h),
                 str(pdf), str(prefix)],
                check=True,
            )  # fmt: skip
            html = work / f"{deck.slug}.html"
            html.write_text(render_html(deck), "utf-8")
            page = browser.new_page(viewport={"width": w, "height": h})
            page.goto(html.as_uri())
            page.emulate_media(media="print")
            shots = page.locator("section.slide")
            diffs = []
            pages = sorted(work.glob(f"{deck.slug}-*.png"))
            for index, png in enumerate(pages):
                shot = work / f"{deck.slug}-chromium-{index + 1}.png"
                shots.nth(index).screenshot(path=str(shot))
                a = Image.open(png).convert("RGB")
                b = Image.open(shot).convert("RGB").resize(a.size)
                diff = (
                    ImageChops.difference(a, b)
                    .convert("L")
                    .point(lambda v: 255 if v > NOTICEABLE else 0)
                )
                histogram = diff.histogram()
                diffs.append(histogram[255] / (a.size[0] * a.size[1]) * 100)
            page.close()
            worst = max(range(len(diffs)), key=diffs.__getitem__)
            rows.append(
                f"| {path.name} | {len(diffs)} | {sum(diffs) / len(diffs):.2f} | "
                f"{worst + 1} | {diffs[worst]:.2f} |"
            )
            print(rows[-1], " ".join(f"{d:.1f}" for d in diffs), flush=True)
        browser.close()
    print(f"(images in {work})")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000", help="comma-separated slide counts")
    parser.add_argument("--no-marp", action="store_true")
    parser.add_argument("--single-pass-max", type=int, default=1000)
    parser.add_argument(
        "--rounds", type=int, default=3, help="cold exports per tool, alternating (median shown)"
    )
    parser.add_argument("--fidelity-only", action="store_true")
    parser.add_argument("--speed-only", action="store_true")
    args = parser.parse_args()
    SCRATCH.mkdir(exist_ok=True)
    tables = []
    if not args.speed_only:
        decks = [*sorted((ROOT / "decks").glob("*.md")), write_deck(12, SCRATCH / "decks")]
        tables.append(fidelity(decks))
    if not args.fidelity_only:
        sizes = [int(s) for s in args.sizes.split(",") if s]
        tables.append(speed(sizes, not args.no_marp, args.single_pass_max, max(1, args.rounds)))
    print()
    for table in tables:
        print("\n".join(table))
        print()


if __name__ == "__main__":
    main()
