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
from slidesvc import debbase
from test_image_podman import CONTAINERS_CONF, DECK, free_port, get, run, wait_for

pytestmark = [pytest.mark.container, pytest.mark.slow]

BASE_TAG = "localhost/slidesvc-test/bookworm-python:1"
IMAGE_TAG = "localhost/slidesvc-test/dockerfile:1"
MIRROR = os.environ.get("SLIDESVC_DEBIAN_MIRROR", "http://deb.debian.org/debian")
BASE_PACKAGES = "python3,python3-venv,libpango-1.0-0,libpangoft2-1.0-0,fonts-dejavu-core"
BUILD_TOOLS = ("hatchling",)


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = require_tool("podman")
    require_tool("runc")
    if "CONTAINERS_CONF" not in os.environ:
        conf = tmp_path_factory.mktemp("containers") / "containers.conf"
        conf.write_text(CONTAINERS_CONF)
        os.environ["CONTAINERS_CONF"] = str(conf)
    return path


@pytest.fixture(scope="module")
def base_image(podman: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A local python:3.11-slim stand-in: debootstrap minbase + Python 3.11 + Pango, imported."""
    if run(podman, "image", "exists", BASE_TAG, check=False).returncode == 0:
        return BASE_TAG
    cached = debbase.cache_dir() / "dockerfile-base" / "bookworm-python.tar"
    if not cached.is_file():
        debootstrap = require_tool("debootstrap")
        rootfs = tmp_path_factory.mktemp("debootstrap") / "rootfs"
        run(debootstrap, "--variant=minbase", f"--include={BASE_PACKAGES}", "bookworm", str(rootfs), MIRROR,
            timeout=900)  # fmt: skip
        shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".partial")
        run("tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), ".")
        partial.replace(cached)
        shutil.rmtree(rootfs, ignore_errors=True)
    run(podman, "import", "--change", "CMD=/bin/bash", str(cached), BASE_TAG)
    return BASE_TAG


@pytest.fixture(scope="module")
def wheelhouse() -> Path:
    """Wheels for slidesvc's dependencies and its build backend, for pip inside the build."""
    folder = debbase.cache_dir() / "dockerfile-wheelhouse"
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
               "--implementation", "cp", "--python-version", "3.11", "--abi", "cp311",
               "--platform", "manylinux_2_36_x86_64", "-d", str(folder),
               str(ROOT), *BUILD_TOOLS]  # fmt: skip
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
    run(podman, "build", "--network", "host", "--format", "docker", "-t", IMAGE_TAG,
        "--build-arg", f"BASE={base_image}", "--build-arg", "DECK=decks/containers.md",
        "--build-arg", "PIP_NO_INDEX=1", "--build-arg", "PIP_FIND_LINKS=/src/wheelhouse",
        str(context), timeout=1200)  # fmt: skip
    yield IMAGE_TAG
    run(podman, "rmi", "-f", IMAGE_TAG, check=False)


def test_the_dockerfile_image_serves_the_deck(podman: str, built: str) -> None:
    """Read-only, no capabilities: the deck, /embed, /deck.pdf and /healthz; non-root; healthy."""
    port = free_port()
    name = f"slidesvc-dockerfile-{port}"
    run(podman, "run", "-d", "--name", name, "--network", "host", "--read-only", "--cap-drop=ALL",
        "-e", f"PORT={port}", built)  # fmt: skip
    try:
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
    finally:
        run(podman, "rm", "-f", "-t", "0", name, check=False)


def test_the_runtime_stage_has_no_build_tools(podman: str, built: str) -> None:
    """aiohttp is importable in the runtime stage; Markdown, WeasyPrint and pip's venv are not there."""
    probe = (
        "import importlib.util as u; "
        "print(*(bool(u.find_spec(m)) for m in ('aiohttp', 'markdown', 'weasyprint', 'pygments')))"
    )
    out = run(podman, "run", "--rm", "--network", "none", "--entrypoint", "python3", built, "-c", probe)
    assert out.stdout.split() == ["True", "False", "False", "False"]
    assert run(podman, "run", "--rm", "--entrypoint", "ls", built, "/opt/venv", check=False).returncode != 0
