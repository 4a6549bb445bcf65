"""Benchmark one deck process against nginx serving the same bytes.

    .venv/bin/python bench/serve_bench.py [--deck decks/x.md | --artifacts DIR]
                                          [--duration 10] [--connections 50]

Measures, on loopback and in one run: requests/s and p50/p99 latency of
`/` and `/embed` with wrk (deck process vs. nginx with one worker serving
the very bytes the deck process answers), once as wrk asks by default
(no compression) and once as every browser asks (`Accept-Encoding: gzip`;
nginx then serves the deck process's own pre-compressed bytes with
`gzip_static`), idle RSS of the deck process, time
from process start to its first 200, and live-follow fan-out (500 WebSocket
followers, p99 delay from a presenter move to its arrival). Prints a table.
Both servers keep their access log on (written to a file), as in production.
Each target is measured in several interleaved rounds (medians reported), so
other load on the machine hits every server alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.request import Request, urlopen

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
TOKEN = "bench-presenter-token"
EXAMPLE_DECK = ROOT / "decks" / "slidesvc.md"
ENCODINGS = ("identity", "gzip")
Target = tuple[str, str, str]  # server, path, Accept-Encoding


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_artifacts(out: Path, deck: Path | None) -> Path:
    """A built artifact folder: from a real deck when the build side can, else synthetic."""
    if deck is not None:
        from slidesvc.build import build_artifacts

        build_artifacts(deck, out, pdf=False)
        return out
    sys.path.insert(0, str(ROOT / "tests"))
    from server_fixtures import make_artifacts as synthetic
    from server_fixtures import write_artifacts

    return write_artifacts(out, synthetic(slides=30, title="Bench deck"))


def wait_200(url: str, timeout: float = 10.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            with urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return time.monotonic()
        except OSError:
            time.sleep(0.002)
    raise RuntimeError(f"{url} never answered 200")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wrk(url: str, duration: int, connections: int, encoding: str) -> dict[str, float]:
    out = subprocess.run(
        [
            *("wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"),
            *("-H", f"Accept-Encoding: {encoding}", url),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = {}
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert m, out
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
        lat[pct] = float(m.group(1)) * scale
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} error responses\n{out}")
    return {"rps": rps, "p50": lat["50"], "p99": lat["99"]}


PLAIN_SERVER = """
import sys
from aiohttp import web
def read(name):
    with open(name, "rb") as f:
        return f.read()
pages = {"/": sys.argv[1], "/embed": sys.argv[2]}
pages = {path: (read(name), read(name + ".gz")) for path, name in pages.items()}
async def handler(request):
    body, gz = pages[request.path]
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        return web.Response(body=gz, content_type="text/html", headers={"Content-Encoding": "gzip"})
    return web.Response(body=body, content_type="text/html")
app = web.Application()
app.router.add_get("/", handler)
app.router.add_get("/embed", handler)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[3]), access_log=None, print=None)
"""
"""The reference point the issue quotes: the least an aiohttp handler can do."""


def start_nginx(root: Path, port: int, tmp: Path) -> subprocess.Popen[bytes]:
    conf = tmp / "nginx.conf"
    conf.write_text(
        f"""
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
    access_log {tmp}/nginx-access.log;
    client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp};
    uwsgi_temp_path {tmp}; scgi_temp_path {tmp};
    sendfile on; tcp_nopush on; tcp_nodelay on;
    keepalive_requests 1000000;
    default_type text/html;
    gzip_static on;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location = / {{ try_files /index.html =404; }}
        location = /embed {{ try_files /embed.html =404; }}
    }}
}}
"""
    )
    proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(tmp)])
    wait_200(f"http://127.0.0.1:{port}/")
    return proc


async def fanout(base: str, followers: int, moves: int, slides: int) -> list[float]:
    """Delays (ms) between a presenter's move and each follower receiving it."""
    import aiohttp

    ws_url = base.replace("http://", "ws://") + "live"
    conn = aiohttp.TCPConnector(limit=0)
    async with (
        aiohttp.ClientSession(connector=conn) as fans,
        aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True)  # the cookie comes from an IP address
        ) as pres,
    ):
        sockets = [await fans.ws_connect(ws_url) for _ in range(followers)]
        await pres.post(base + "presenter", data={"token": TOKEN}, allow_redirects=False)
        presenter = await pres.ws_connect(ws_url)
        await presenter.receive_json(timeout=10)  # "presenter connected"
        for ws in sockets:  # drain "presenter connected"
            await ws.receive_json(timeout=10)
        delays: list[float] = []
        for i in range(moves):
            slide = 1 + (i + 1) % slides  # always a move (the deck has 2+ slides)
            sent = time.perf_counter()

            async def arrival(
                ws: aiohttp.ClientWebSocketResponse, slide: int = slide, sent: float = sent
            ) -> float:
                while True:
                    msg = json.loads((await ws.receive(timeout=10)).data)
                    if msg.get("type") == "position" and msg["slide"] == slide:
                        return (time.perf_counter() - sent) * 1000

            await presenter.send_str(json.dumps({"slide": slide, "fragment": 0}))
            delays += await asyncio.gather(*(arrival(ws) for ws in sockets))
            await asyncio.sleep(0.05)
        for ws in sockets:
            await ws.close()
        await presenter.close()
    return delays


def note(text: str) -> None:
    print(f"... {text}", file=sys.stderr, flush=True)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--deck", type=Path, help="build this deck (default: decks/slidesvc.md)")
    parser.add_argument("--artifacts", type=Path, help="serve this prebuilt artifact folder")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs per target")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--followers", type=int, default=500)
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (apt-get install wrk nginx-light)", file=sys.stderr)
            return 2

    load_before = Path("/proc/loadavg").read_text().split()[0]
    tmp = Path(tempfile.mkdtemp(prefix="slidesvc-bench-"))
    deck = args.deck
    if deck is None and args.artifacts is None and EXAMPLE_DECK.is_file():
        deck = EXAMPLE_DECK
    folder = args.artifacts or make_artifacts(tmp / "artifacts", deck)
    port, nginx_port = free_port(), free_port()
    log = open(tmp / "slidesvc-access.log", "w")  # noqa: SIM115 - lives for the whole run
    env = {**os.environ, "SLIDESVC_PRESENTER_TOKEN": TOKEN}
    started = time.monotonic()
    server = subprocess.Popen(
        [PY, "-m", "slidesvc.server", "--artifacts", str(folder), "--port", str(port)],
        stdout=log,
        env=env,
    )
    base = f"http://127.0.0.1:{port}/"
    first_200 = wait_200(base + "healthz") - started
    nginx = plain = None
    rows: list[tuple[str, str]] = []
    try:
        # nginx serves exactly the bytes the deck process answers
        web_root = tmp / "www"
        web_root.mkdir()
        for path, name in (("", "index.html"), ("embed", "embed.html")):
            for encoding, file_name in (("identity", name), ("gzip", name + ".gz")):
                req = Request(base + path, headers={"Accept-Encoding": encoding})
                with urlopen(req) as resp:
                    (web_root / file_name).write_bytes(resp.read())
        note("starting nginx and a plain aiohttp handler")
        nginx = start_nginx(web_root, nginx_port, tmp)
        plain_port = free_port()
        plain = subprocess.Popen(
            [
                PY,
                "-c",
                PLAIN_SERVER,
                str(web_root / "index.html"),
                str(web_root / "embed.html"),
                str(plain_port),
            ]
        )
        wait_200(f"http://127.0.0.1:{plain_port}/")
        time.sleep(0.5)
        idle_rss = rss_mb(server.pid)

        bases = {
            "slidesvc": base,
            "nginx": f"http://127.0.0.1:{nginx_port}/",
            "plain aiohttp": f"http://127.0.0.1:{plain_port}/",
        }
        targets = {
            (name, path, encoding): (url + path, encoding)
            for name, url in bases.items()
            for path in ("", "embed")
            for encoding in ENCODINGS
        }
        for url, encoding in targets.values():
            wrk(url, 1, args.connections, encoding)  # warm-up
        runs: dict[Target, list[dict[str, float]]] = {key: [] for key in targets}
        for round_ in range(args.rounds):
            # interleaved, in a new order each round, so a busy moment hits all alike
            order = list(targets.items())
            random.Random(round_).shuffle(order)
            for key, (url, encoding) in order:
                note(f"round {round_ + 1}/{args.rounds}: wrk {key[0]} /{key[1]} {encoding}")
                runs[key].append(wrk(url, args.duration, args.connections, encoding))
        results = {
            key: {m: statistics.median(r[m] for r in rs) for m in ("rps", "p50", "p99")}
            for key, rs in runs.items()
        }
        note(f"live fan-out to {args.followers} followers")
        with urlopen(base + "healthz") as resp:
            slides = int(json.loads(resp.read())["slides"])
        delays = asyncio.run(fanout(base, args.followers, moves=10, slides=slides))
    finally:
        if nginx is not None:
            nginx.send_signal(signal.SIGQUIT)
            nginx.wait(10)
        if plain is not None:
            plain.terminate()
            plain.wait(10)
        server.send_signal(signal.SIGTERM)
        server.wait(10)
        log.close()

    size = (web_root / "index.html").stat().st_size
    gz_size = (web_root / "index.html.gz").stat().st_size
    print(
        f"\nslidesvc bench: {os.cpu_count()} CPUs, median of {args.rounds} interleaved runs of "
        f"wrk -t1 -c{args.connections} -d{args.duration}s, page {size / 1024:.0f} KiB "
        f"({gz_size / 1024:.0f} KiB gzipped), nginx 1 worker, load average before {load_before}\n"
    )
    print("| route | Accept-Encoding | server | req/s | p50 ms | p99 ms | vs nginx |")
    print("|---|---|---|---:|---:|---:|---:|")
    for path in ("", "embed"):
        for encoding in ENCODINGS:
            ref = results[("nginx", path, encoding)]["rps"]
            for name in bases:
                r = results[(name, path, encoding)]
                print(
                    f"| /{path} | {encoding} | {name} | {r['rps']:.0f} | {r['p50']:.2f} "
                    f"| {r['p99']:.2f} | {100 * r['rps'] / ref:.0f}% |"
                )
    rows = [
        ("idle RSS of the deck process", f"{idle_rss:.1f} MB (target < 45 MB)"),
        ("process start to first 200", f"{first_200 * 1000:.0f} ms (target < 500 ms)"),
        (
            f"live fan-out, {args.followers} followers, p50",
            f"{pct(delays, 50):.1f} ms",
        ),
        (
            f"live fan-out, {args.followers} followers, p99",
            f"{pct(delays, 99):.1f} ms (target < 200 ms)",
        ),
    ]
    print()
    print("| measure | value |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
