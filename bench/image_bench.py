"""Measure `slidesvc image`: build time, sizes, start-up time and memory of the running image.

    .venv/bin/python bench/image_bench.py [DECK.md] [--runs 5] [--dockerfile-image TAG]

Builds the deck's image (cold: no cached layers; warm: cached base and
dependency layers), loads it into podman, then starts it read-only without
capabilities several times and times `podman run` -> first 200 on /healthz.
Prints one table with the targets of the issue: < 25 MB compressed,
< 70 MB unpacked, first answer < 1 s. With --dockerfile-image, also the size
of an image built from the repository's Dockerfile (tests/test_dockerfile.py
builds one as localhost/slidesvc-test/dockerfile:1).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from slidesvc import debbase  # noqa: E402
from slidesvc.build import build_artifacts  # noqa: E402
from slidesvc.image import assemble, build_image  # noqa: E402

CONTAINERS_CONF = '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n'
CONTAINERS_CONF += '[engine]\nruntime = "runc"\n'


def mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def first_200(url: str, timeout: float = 20) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return time.monotonic()
        except OSError:
            time.sleep(0.005)
    raise SystemExit(f"{url}: no answer within {timeout} s")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("deck", nargs="?", default=str(ROOT / "decks" / "slidesvc.md"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dockerfile-image", default=None, metavar="TAG")
    args = parser.parse_args()
    podman = shutil.which("podman")
    rows: list[tuple[str, str, str]] = []

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        t = time.monotonic()
        build_artifacts(Path(args.deck), tmp / "artifacts")
        rows.append(("compile deck (HTML, PDF, thumbnail)", f"{time.monotonic() - t:.2f} s", ""))

        cold_cache = tmp / "cache"
        cold_cache.mkdir()
        debbase.fetch_packages()  # make sure downloads exist; only layers are rebuilt cold
        for sub in ("debs", "wheels"):
            (cold_cache / sub).symlink_to(debbase.cache_dir() / sub)
        t = time.monotonic()
        assemble(tmp / "artifacts", cache=cold_cache)
        rows.append(
            ("assemble image, cold (no cached layers)", f"{time.monotonic() - t:.2f} s", "")
        )
        t = time.monotonic()
        result = build_image(
            None, tmp / "image.tar", fmt="oci-archive", artifacts_dir=tmp / "artifacts"
        )
        rows.append(("assemble + write oci-archive, warm", f"{time.monotonic() - t:.2f} s", ""))

        image = result.image
        compressed = sum(layer.blob.size for layer in image.layers)
        unpacked = sum(len(gzip.decompress(layer.blob.data)) for layer in image.layers)
        for layer in image.layers:
            rows.append((f"  layer: {layer.comment}", mb(layer.blob.size), "compressed"))
        rows.append(("image, compressed", mb(compressed), "target < 25 MB"))
        rows.append(("image, unpacked (layer tars)", mb(unpacked), "target < 70 MB"))

        if podman is None:
            rows.append(("podman", "not installed", "start-up not measured"))
        else:
            if "CONTAINERS_CONF" not in os.environ:
                (tmp / "containers.conf").write_text(CONTAINERS_CONF)
                os.environ["CONTAINERS_CONF"] = str(tmp / "containers.conf")
            t = time.monotonic()
            subprocess.run(
                [podman, "load", "-q", "-i", str(tmp / "image.tar")],
                check=True,
                capture_output=True,
            )
            rows.append(("podman load", f"{time.monotonic() - t:.2f} s", ""))
            times, rss = [], 0
            for _ in range(args.runs):
                port = free_port()
                name = f"slidesvc-bench-{port}"
                start = time.monotonic()
                subprocess.run(
                    [podman, "run", "-d", "--name", name, "--network", "host", "--read-only",
                     "--cap-drop=ALL", "-e", f"PORT={port}", result.ref],
                    check=True, capture_output=True,
                )  # fmt: skip
                times.append(first_200(f"http://127.0.0.1:{port}/healthz") - start)
                for path in ("/", "/embed", "/deck.pdf", "/deck.json"):
                    urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5).read()
                pid = subprocess.run(
                    [podman, "inspect", name, "--format", "{{.State.Pid}}"],
                    check=True, capture_output=True, text=True,
                ).stdout.strip()  # fmt: skip
                status = Path(f"/proc/{pid}/status").read_text()
                rss = max(
                    rss,
                    int(next(x for x in status.splitlines() if x.startswith("VmRSS")).split()[1]),
                )
                subprocess.run(
                    [podman, "rm", "-f", "-t", "0", name], check=True, capture_output=True
                )
            rows.append(
                (
                    f"podman run -> first 200 (median of {args.runs})",
                    f"{statistics.median(times):.2f} s",
                    f"target < 1 s; min {min(times):.2f}, max {max(times):.2f}",
                )
            )
            rows.append(
                (
                    "server RSS after /, /embed, /deck.pdf",
                    f"{rss / 1024:.1f} MiB",
                    "k8s.BASE_RSS_MIB",
                )
            )
            subprocess.run([podman, "rmi", "-f", result.ref], check=False, capture_output=True)
            if args.dockerfile_image:
                info = subprocess.run(
                    [podman, "image", "inspect", args.dockerfile_image],
                    check=True, capture_output=True, text=True,
                ).stdout  # fmt: skip
                rows.append(
                    ("Dockerfile image (podman, unpacked)", mb(json.loads(info)[0]["Size"]), "")
                )

    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>10}  note")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>10}  {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
