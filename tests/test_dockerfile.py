"""The repository's Dockerfile builds a deck's image under podman, and the image serves the deck.

No public registry is reachable here, so the base image (Debian bookworm
with Python 3.11, made by ``debootstrap --variant=minbase``) is made locally
once and cached (``SLIDESVC_CACHE_DIR``/dockerfile-base), and pip inside the
build installs from a wheel folder in the build context (the Dockerfile's
``PIP_NO_INDEX``/``PIP_FIND_LINKS`` build arguments). apt inside the build
reaches the Debian mirror over plain HTTP, as on any Debian machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, require_tool
from test_image import make_artifacts
from test_image_podman import DECK, get, run, running, wait_for

from slidesvc import debbase
from slidesvc.image import WHEEL_TARGET, build_image

pytestmark = [pytest.mark.container, pytest.mark.slow]

BASE_TAG = "localhost/slidesvc-test/bookworm-python:1"
IMAGE_TAG = f"localhost/slidesvc-test/dockerfile:{os.getpid()}"
MIRROR = os.environ.get("SLIDESVC_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# debootstrap does not resolve virtual packages: python3-distutils provides python3.11-venv's
# python3.11-distutils.
BASE_PACKAGES = (
    "python3,python3-venv,python3-distutils,libpango-1.0-0,libpangoft2-1.0-0,fonts-dejavu-core"
)
BUILD_TOOLS = ("hatchling",)


def remove_rootfs(rootfs: Path) -> None:
    """Delete a debootstrap tree, but never through a mount it left behind (/proc, /dev)."""
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(f"{rootfs}/")), reverse=True):
        subprocess.run(["umount", "-l", mount], check=False)
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    if any(m.startswith(f"{rootfs}/") for m in mounts):
        pytest.fail(f"{rootfs} still has mounts; not deleting it")
    shutil.rmtree(rootfs, ignore_errors=True)


@pytest.fixture(scope="module")
def base_image(podman: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A local python:3.11-slim stand-in: debootstrap minbase + Python 3.11 + Pango, imported."""
    if run(podman, "image", "exists", BASE_TAG, check=False).returncode == 0:
        return BASE_TAG
    cached = debbase.cache_dir() / "dockerfile-base" / "bookworm-python.tar"
    if not cached.is_file():
        debootstrap = require_tool("debootstrap")
        rootfs = tmp_path_factory.mktemp("debootstrap") / "rootfs"
        try:
            run(
                debootstrap,
                "--variant=minbase",
                f"--include={BASE_PACKAGES}",
                "bookworm",
                str(rootfs),
                MIRROR,
                timeout=900,
            )
            for deb in (rootfs / "var/cache/apt/archives").glob("*.deb"):
                deb.unlink()
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_suffix(f".{os.getpid()}.partial")
            run("tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), ".")
            partial.replace(cached)
        finally:
            remove_rootfs(rootfs)
    run(podman, "import", "--change", "CMD=/bin/bash", str(cached), BASE_TAG)
    return BASE_TAG


@pytest.fixture(scope="module")
def wheelhouse() -> Path:
    """Wheels for slidesvc's dependencies and its build backend, for pip inside the build."""
    folder = debbase.cache_dir() / "dockerfile-wheelhouse"
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--quiet", *WHEEL_TARGET]
    command += ["-d", str(folder), str(ROOT), *BUILD_TOOLS]
    proc = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    assert proc.returncode == 0, proc.stderr
    for own in folder.glob("slidesvc-*"):
        own.unlink()  # pip builds our own wheel to learn its requirements; the image builds it
    return folder


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> Path:
    """A build context: the repository's sources, a deck, and the wheel folder."""
    ctx = tmp_path_factory.mktemp("context")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, ctx / name)
    for name in ("src", "themes", "decks"):
        shutil.copytree(ROOT / name, ctx / name, ignore=ignore)
    (ctx / "decks" / "containers.md").write_text(DECK)
    shutil.copytree(wheelhouse, ctx / "wheelhouse")
    return ctx


@pytest.fixture(scope="module")
def built(podman: str, base_image: str, context: Path) -> Iterator[str]:
    """`podman build` of the Dockerfile, as a user with Docker would run `docker build`."""
    run(
        podman,
        "build",
        "--layers=false",  # no intermediate images left behind (the build stage is 500 MB)
        "--network",
        "host",
        "--format",
        "docker",  # keeps HEALTHCHECK, which the OCI image format has no field for
        "-t",
        IMAGE_TAG,
        "--build-arg",
        f"BASE={base_image}",
        "--build-arg",
        "DECK=decks/containers.md",
        "--build-arg",
        "PIP_NO_INDEX=1",
        "--build-arg",
        "PIP_FIND_LINKS=/src/wheelhouse",
        str(context),
        timeout=1200,
    )
    yield IMAGE_TAG
    run(podman, "rmi", "-f", IMAGE_TAG, check=False)


def test_the_dockerfile_image_serves_the_deck(podman: str, built: str) -> None:
    """Read-only, no capabilities: the deck, /embed, /deck.pdf and /healthz; non-root; healthy."""
    with running(podman, built) as (name, port):
        wait_for(f"http://127.0.0.1:{port}/healthz", 30)
        status, _, body = get(f"http://127.0.0.1:{port}/")
        assert status == 200 and b"Containers For Slides" in body and b"A private note" not in body
        assert get(f"http://127.0.0.1:{port}/embed")[0] == 200
        status, _, pdf = get(f"http://127.0.0.1:{port}/deck.pdf")
        assert status == 200 and pdf.startswith(b"%PDF-")
        uid = run(podman, "exec", name, "python3", "-c", "import os; print(os.getuid())").stdout
        assert uid.strip() == "65532"
        assert run(podman, "healthcheck", "run", name, check=False).returncode == 0
        start = time.monotonic()
        run(podman, "kill", "--signal", "TERM", name)
        assert run(podman, "wait", name).stdout.strip() == "0"
        assert time.monotonic() - start < 5


def test_the_runtime_stage_has_no_build_tools(podman: str, built: str) -> None:
    """The runtime stage has aiohttp; not Markdown, WeasyPrint, Pygments or the build venv."""
    probe = (
        "import importlib.util as u; "
        "print(*(bool(u.find_spec(m)) for m in ('aiohttp', 'markdown', 'weasyprint', 'pygments')))"
    )
    out = run(
        podman, "run", "--rm", "--network", "none", "--entrypoint", "python3", built, "-c", probe
    )
    assert out.stdout.split() == ["True", "False", "False", "False"]
    assert (
        run(podman, "run", "--rm", "--entrypoint", "ls", built, "/opt/venv", check=False).returncode
        != 0
    )


def test_slidesvc_image_on_a_debian_base_from_docker_save(
    podman: str, base_image: str, tmp_path: Path
) -> None:
    """`slidesvc image --base` appends its layers to a `docker save` archive; the result runs."""
    saved = tmp_path / "base.tar"
    run(podman, "save", "--format", "docker-archive", "-o", str(saved), base_image)
    artifacts = make_artifacts(tmp_path / "artifacts", "on-debian", "On Debian")
    out = tmp_path / "image.tar"
    tag = f"localhost/slidesvc-test/on-debian:{os.getpid()}"
    result = build_image(
        None, out, fmt="docker-archive", base=saved, artifacts_dir=artifacts, tag=tag
    )
    assert len(result.image.layers) == 3  # the imported rootfs, dependencies, deck
    run(podman, "load", "-i", str(out))
    try:
        with running(podman, tag) as (_, port):
            wait_for(f"http://127.0.0.1:{port}/healthz", 30)
            status, _, body = get(f"http://127.0.0.1:{port}/")
            assert status == 200 and b"On Debian" in body
    finally:
        run(podman, "rmi", "-f", tag, check=False)
