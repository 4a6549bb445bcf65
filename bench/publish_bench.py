"""Publisher benchmarks: cold start, warm proxy overhead, memory, 50 decks at once.

Runs a real `slidesvc publish` (a subprocess, like in production) on a
temporary folder of generated decks and prints a Markdown table:

- cold start: first request for a stopped deck through the front door, until 200;
- warm overhead: p50/p90 latency of ``GET /<slug>/deck.json`` through the front
  door versus straight to the deck's process (same client, keep-alive both);
- RSS of the publisher and of each deck process (from ``/_status``);
- 50 decks with ``--preload``: time until all run, total RSS, one request each.

Usage: ``python bench/publish_bench.py [--decks 50] [--requests 2000]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

DECK = """---
title: Bench talk {n}
author: Bench
---

# Bench talk {n}

Some text with `code` and a list:

* one
* two

---

## Code

```python
def f(x):
    return x * {n}
```

---

## The end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_decks(folder: Path, count: int) -> list[str]:
    slugs = []
    for n in range(count):
        slug = f"talk-{n:02d}"
        (folder / f"{slug}.md").write_text(DECK.format(n=n), encoding="utf-8")
        slugs.append(slug)
    return slugs


class Publisher:
    """A `slidesvc publish` subprocess."""

    def __init__(self, folder: Path, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = folder.with_suffix(".log")
        with open(self.log, "wb") as log:
            self.proc = self._start(folder, extra, log)

    def _start(self, folder: Path, extra: tuple[str, ...], log: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "slidesvc", "publish", str(folder), "--port", str(self.port),
             "--idle-timeout", "0", *extra],
            stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip

    async def wait_up(self, http: aiohttp.ClientSession, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                async with http.get(self.url + "_status") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
        raise RuntimeError("publisher did not come up")

    async def status(self, http: aiohttp.ClientSession) -> dict[str, Any]:
        async with http.get(self.url + "_status") as resp:
            return dict(await resp.json())

    def problems(self) -> list[str]:
        """Log lines about processes that failed (printed when a run looks wrong)."""
        words = ("exited with", "not healthy", "failed", "Traceback")
        return [line for line in self.log.read_text().splitlines() if any(w in line for w in words)]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)


async def timed_get(http: aiohttp.ClientSession, url: str) -> float:
    start = time.perf_counter()
    async with http.get(url) as resp:
        await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{url}: {resp.status}")
    return time.perf_counter() - start


async def paired(
    http: aiohttp.ClientSession, direct: str, front: str, n: int
) -> tuple[list[float], list[float]]:
    """Latencies of the same request both ways, interleaved so both see the same load."""
    for _ in range(50):  # warm-up: connections, caches
        await timed_get(http, direct)
        await timed_get(http, front)
    a, b = [], []
    for _ in range(n):
        a.append(await timed_get(http, direct))
        b.append(await timed_get(http, front))
    return a, b


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process, in clock ticks (Linux)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:.1f} MiB"


async def cpu_per_request(http: aiohttp.ClientSession, pid: int, url: str, n: int) -> str:
    """CPU time (user + system) process `pid` spends per GET of `url`."""
    ticks = cpu_ticks(pid)
    for _ in range(n):
        await timed_get(http, url)
    used = (cpu_ticks(pid) - ticks) / os.sysconf("SC_CLK_TCK")
    return f"{used / n * 1000:.3f} ms"


async def bench_small(folder: Path, requests: int, rows: list[tuple[str, str]]) -> None:
    slugs = make_decks(folder, 3)
    pub = Publisher(folder)
    async with aiohttp.ClientSession() as http:
        try:
            await pub.wait_up(http)
            colds = [await timed_get(http, f"{pub.url}{slug}/") for slug in slugs]
            cold = statistics.median(colds) * 1000
            rows.append(("cold start through the front door (first request → 200), median of 3",
                         f"{cold:.0f} ms"))  # fmt: skip
            status = await pub.status(http)
            child = {d["slug"]: d for d in status["decks"]}[slugs[0]]
            direct_url = f"http://127.0.0.1:{child['port']}/"
            front_url = f"{pub.url}{slugs[0]}/"

            direct, front = await paired(http, direct_url + "deck.json", front_url + "deck.json",
                                         requests)  # fmt: skip
            for name, values in (("direct to the deck process", direct),
                                 ("through the front door", front)):  # fmt: skip
                rows.append((f"warm GET deck.json, {name}: p50 / p90",
                             f"{pct(values, 50):.3f} / {pct(values, 90):.3f} ms"))  # fmt: skip
            added = [f - d for d, f in zip(direct, front, strict=True)]
            rows.append(("front door overhead (paired differences) p50 / p90",
                         f"{pct(added, 50):.3f} / {pct(added, 90):.3f} ms"))  # fmt: skip
            big_direct, big = await paired(http, direct_url, front_url, requests // 4)
            rows.append(("warm GET / (≈30 KiB page): direct / front door p50",
                         f"{pct(big_direct, 50):.3f} / {pct(big, 50):.3f} ms"))  # fmt: skip

            rows.append(("publisher CPU time per proxied GET deck.json",
                         await cpu_per_request(http, pub.proc.pid, front_url + "deck.json",
                                               requests)))  # fmt: skip
            rows.append(("deck process CPU time per direct GET deck.json (for comparison)",
                         await cpu_per_request(http, child["pid"], direct_url + "deck.json",
                                               requests)))  # fmt: skip

            status = await pub.status(http)
            rows.append(("RSS of the publisher (3 decks running)",
                         mib(status["publisher"]["rss_bytes"])))  # fmt: skip
            rss = [d["rss_bytes"] for d in status["decks"] if d["rss_bytes"]]
            rows.append(("RSS of one deck process (median)", mib(int(statistics.median(rss)))))
        finally:
            pub.stop()


async def bench_many(folder: Path, count: int, rows: list[tuple[str, str]]) -> None:
    slugs = make_decks(folder, count)
    start = time.perf_counter()
    pub = Publisher(folder, "--preload", "--max-running", str(count))
    async with aiohttp.ClientSession() as http:
        try:
            await pub.wait_up(http, timeout=600)
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:  # --preload starts them in the background
                status = await pub.status(http)
                running = sum(d["state"] == "running" for d in status["decks"])
                settled = all(d["state"] in ("running", "crashed") for d in status["decks"])
                if settled:
                    break
                await asyncio.sleep(0.1)
            ready = time.perf_counter() - start
            if running < count:
                print("\n".join(pub.problems()[:20]), file=sys.stderr)
            rows.append(
                (
                    f"{count} decks with --preload: running / time until all up",
                    f"{running} / {ready:.1f} s",
                )
            )
            results = await asyncio.gather(
                *(timed_get(http, f"{pub.url}{s}/deck.json") for s in slugs)
            )
            rows.append(
                (
                    f"{count} concurrent requests, one per deck: max latency",
                    f"{max(results) * 1000:.0f} ms",
                )
            )
            status = await pub.status(http)
            rss = [d["rss_bytes"] or 0 for d in status["decks"]]
            total = sum(rss) + (status["publisher"]["rss_bytes"] or 0)
            rows.append(
                (
                    f"{count} decks: publisher RSS / median child RSS / total",
                    f"{mib(status['publisher']['rss_bytes'])} / "
                    f"{mib(int(statistics.median(rss)))} / {mib(total)}",
                )
            )
        finally:
            pub.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decks", type=int, default=50)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "small").mkdir()
        (Path(tmp) / "many").mkdir()
        await bench_small(Path(tmp) / "small", args.requests, rows)
        if args.decks:
            await bench_many(Path(tmp) / "many", args.decks, rows)
    print(f"slidesvc publish bench ({os.cpu_count()} CPUs, Python {sys.version.split()[0]})\n")
    print("| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    asyncio.run(main())
