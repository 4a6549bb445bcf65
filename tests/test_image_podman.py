"""The deck image with real tools: skopeo, umoci, podman (read-only, no capabilities), a registry.

The image is built once per session from a real deck through the CLI
(`slidesvc image DECK.md`), so the artifacts, the PDF and the server are the
real ones. Podman runs rootful with runc and host networking (see
scripts/container-setup.sh); the registry is Debian's docker-registry on
127.0.0.1:5000 (another free port when a concurrent run holds it), started
and stopped here. Image tags carry the test process id, so concurrent runs
do not remove each other's images.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cli_helpers import run_cli
from conftest import require_tool
from process_helpers import free_port

pytestmark = [pytest.mark.container, pytest.mark.slow]

DECK = """\
---
title: Containers For Slides
author: Test Author
---
# Containers For Slides

One deck, one image.

---

## Why

* small
* immutable

???
A private note.
"""
TAG = f"localhost/slidesvc-test/containers:{os.getpid()}"
"""Unique per test session, so that concurrent runs never remove each other's images."""


def run(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def get(url: str, timeout: float = 5) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def wait_for(url: str, deadline: float) -> float:
    """Seconds until `url` answers 200."""
    start = time.monotonic()
    while time.monotonic() - start < deadline:
        try:
            if get(url, timeout=1)[0] == 200:
                return time.monotonic() - start
        except OSError:
            time.sleep(0.02)
    raise AssertionError(f"{url} did not answer 200 within {deadline} s")


@contextmanager
def running(podman: str, image: str, *options: str) -> Iterator[tuple[str, int]]:
    """`image` running detached, read-only, without capabilities, on a free port."""
    port = free_port()
    name = f"slidesvc-test-{port}"
    run(podman, "run", "-d", "--name", name, "--network", "host", "--read-only",
        "--cap-drop=ALL", *options, "-e", f"PORT={port}", image)  # fmt: skip
    try:
        yield name, port
    finally:
        run(podman, "rm", "-f", "-t", "0", name, check=False)


@pytest.fixture(scope="session")
def deck_image(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The image of a real deck, as an OCI layout and as an oci-archive, built by the CLI."""
    root = tmp_path_factory.mktemp("deck-image")
    deck = root / "containers.md"
    deck.write_text(DECK)
    outputs = {"layout": root / "layout", "archive": root / "image.tar"}
    for fmt, out in (("oci", outputs["layout"]), ("oci-archive", outputs["archive"])):
        proc = run_cli("image", deck, "-o", out, "--format", fmt, "--tag", TAG, timeout=600)
        assert proc.returncode == 0, proc.stderr
    return outputs


@pytest.fixture(scope="session")
def loaded(podman: str, deck_image: dict[str, Path]) -> Iterator[str]:
    """The image loaded into podman's store; removed afterwards."""
    out = run(podman, "load", "-i", str(deck_image["archive"])).stdout
    assert TAG in out
    yield TAG
    run(podman, "rmi", "-f", TAG, check=False)


@pytest.fixture
def container(podman: str, loaded: str) -> Iterator[tuple[str, int]]:
    """The deck running read-only, without capabilities, on a free port: (name, port)."""
    with running(podman, loaded, "--security-opt", "no-new-privileges") as (name, port):
        wait_for(f"http://127.0.0.1:{port}/healthz", 30)
        yield name, port


def test_skopeo_reads_the_layout_and_the_archive(deck_image: dict[str, Path]) -> None:
    """skopeo inspects both outputs and sees the labels and three layers."""
    skopeo = require_tool("skopeo")
    for ref in (f"oci:{deck_image['layout']}", f"oci-archive:{deck_image['archive']}"):
        info = json.loads(run(skopeo, "inspect", ref).stdout)
        assert info["Labels"]["dev.slidesvc.deck.slug"] == "containers"
        assert info["Labels"]["org.opencontainers.image.title"] == "Containers For Slides"
        assert len(info["Layers"]) == 3
        config = json.loads(run(skopeo, "inspect", "--config", ref).stdout)
        assert config["config"]["User"] == "65532:65532"


def test_umoci_unpacks_it_into_a_runtime_bundle(
    deck_image: dict[str, Path], tmp_path: Path
) -> None:
    """umoci unpacks the layout; the bundle runs the server as the non-root user."""
    umoci = require_tool("umoci")
    bundle = tmp_path / "bundle"
    run(
        umoci,
        "unpack",
        "--image",
        f"{deck_image['layout']}:{TAG}",
        str(bundle),
    )
    rootfs = bundle / "rootfs"
    assert (rootfs / "usr/bin/python3.11").is_file()
    assert (rootfs / "deck/index.html").is_file() and (rootfs / "deck/deck.pdf").is_file()
    assert not (rootfs / "bin/sh").exists()
    spec = json.loads((bundle / "config.json").read_text())
    assert spec["process"]["user"]["uid"] == 65532
    assert spec["process"]["args"][:3] == ["python3", "-m", "slidesvc.server"]


def test_the_container_serves_the_deck(container: tuple[str, int]) -> None:
    """Read-only root, all capabilities dropped: /, /embed, /deck.pdf and /healthz answer."""
    _, port = container
    base = f"http://127.0.0.1:{port}"
    status, headers, body = get(base + "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b"Containers For Slides" in body and b"A private note" not in body
    status, headers, body = get(base + "/embed")
    assert status == 200 and b'data-mode="embed"' in body
    status, headers, body = get(base + "/deck.pdf")
    assert (
        status == 200 and body.startswith(b"%PDF-") and headers["Content-Type"] == "application/pdf"
    )
    status, _, body = get(base + "/healthz")
    assert status == 200 and json.loads(body)["deck"] == "containers"


def test_the_container_runs_as_non_root_without_a_shell(
    podman: str, container: tuple[str, int]
) -> None:
    """The server's uid is 65532; there is no shell to exec into; the health check passes."""
    name, _ = container
    uid = run(podman, "exec", name, "python3", "-c", "import os; print(os.getuid(), os.getgid())")
    assert uid.stdout.split() == ["65532", "65532"]
    assert run(podman, "exec", name, "/bin/sh", "-c", "true", check=False).returncode != 0
    assert (
        run(podman, "exec", name, "python3", "-m", "slidesvc.healthcheck", check=False).returncode
        == 0
    )
    probe = "open('/deck/index.html', 'a')"
    assert run(podman, "exec", name, "python3", "-c", probe, check=False).returncode != 0


def test_the_container_stops_cleanly_on_sigterm(podman: str, container: tuple[str, int]) -> None:
    """SIGTERM (podman stop) ends the server at once with exit code 0."""
    name, _ = container
    start = time.monotonic()
    run(podman, "kill", "--signal", "TERM", name)
    code = run(podman, "wait", name).stdout.strip()
    assert time.monotonic() - start < 5
    assert code == "0"


def test_first_answer_comes_quickly(podman: str, loaded: str) -> None:
    """From `podman run` to the first 200 in a few seconds (the 1 s target is in bench/)."""
    start = time.monotonic()
    with running(podman, loaded) as (_, port):
        wait_for(f"http://127.0.0.1:{port}/healthz", 10)
        assert time.monotonic() - start < 10


# --- registry --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's docker-registry on 127.0.0.1 (port 5000 when free), storing in a temp dir."""
    binary = require_tool("docker-registry")
    with socket.socket() as s:
        port = 5000 if s.connect_ex(("127.0.0.1", 5000)) != 0 else free_port()
    address = f"127.0.0.1:{port}"
    root = tmp_path_factory.mktemp("registry")
    config = root / "config.yml"
    config.write_text(
        textwrap.dedent(
            f"""\
            version: 0.1
            log: {{level: warn}}
            storage:
              filesystem: {{rootdirectory: {root / "data"}}}
              delete: {{enabled: true}}
            http: {{addr: "{address}"}}
            """
        )
    )
    log = (root / "registry.log").open("wb")
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(f"http://{address}/v2/", 20)
        yield address
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def test_push_and_pull_through_a_registry(
    podman: str, deck_image: dict[str, Path], registry: str, tmp_path: Path
) -> None:
    """`slidesvc image --push` uploads it; skopeo and podman pull the same digest back."""
    skopeo = require_tool("skopeo")
    deck = tmp_path / "containers.md"
    deck.write_text(DECK)
    ref = f"{registry}/slidesvc-test/containers:1"
    proc = run_cli("image", deck, "-o", tmp_path / "out", "--push", ref, timeout=600)
    assert proc.returncode == 0, proc.stderr
    digest = json.loads((tmp_path / "out/index.json").read_text())["manifests"][0]["digest"]
    assert f"pushed {registry}/slidesvc-test/containers@{digest} (4 of 4 blobs sent)" in proc.stdout
    info = json.loads(run(skopeo, "inspect", "--tls-verify=false", f"docker://{ref}").stdout)
    assert info["Digest"] == digest
    assert info["Labels"]["dev.slidesvc.deck.slug"] == "containers"
    try:
        run(podman, "pull", "--tls-verify=false", ref)
        pulled = run(podman, "image", "inspect", ref, "--format", "{{.Digest}}").stdout.strip()
        assert pulled == digest
    finally:
        run(podman, "rmi", "-f", ref, check=False)


def test_further_decks_send_only_their_own_blobs(registry: str, tmp_path: Path) -> None:
    """Re-push sends nothing; a second deck mounts base and dependencies, sends deck + config."""
    from test_image import make_artifacts

    from slidesvc.image import build_image

    first = make_artifacts(tmp_path / "first", "first", "First")
    second = make_artifacts(tmp_path / "second", "second", "Second")
    one = build_image(None, tmp_path / "1", artifacts_dir=first, push=f"{registry}/t/first:1")
    assert one.pushed is not None and len(one.pushed.uploaded) == 4  # config + 3 layers
    again = build_image(None, tmp_path / "2", artifacts_dir=first, push=f"{registry}/t/first:1")
    assert again.pushed is not None and again.pushed.uploaded == ()
    other = build_image(
        None,
        tmp_path / "3",
        artifacts_dir=second,
        push=f"{registry}/t/second:1",
        mount_from="t/first",
    )
    assert other.pushed is not None
    deck_layer, config = other.image.layers[2].blob.digest, other.image.config_blob.digest
    assert set(other.pushed.uploaded) == {deck_layer, config}
    with urllib.request.urlopen(
        f"http://{registry}/v2/t/second/blobs/{other.image.layers[0].blob.digest}"
    ) as r:
        assert r.status == 200  # the mounted base layer is served from the second repository


def test_push_to_a_missing_registry_is_a_clear_error(tmp_path: Path) -> None:
    """Nothing listening: exit 1 naming the registry, no traceback."""
    port = free_port()
    art = tmp_path / "art"
    art.mkdir()
    (art / "index.html").write_text(
        '<html data-mode="deck"><head><!--slidesvc:head--></head></html>'
    )
    (art / "deck.json").write_text('{"slug": "x", "title": "X", "version": "1"}')
    proc = run_cli(
        "image", "--artifacts", art, "-o", tmp_path / "o", "--push", f"127.0.0.1:{port}/x:1"
    )
    assert proc.returncode == 1
    assert f"cannot reach 127.0.0.1:{port}" in proc.stderr and "Traceback" not in proc.stderr
