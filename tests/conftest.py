"""Shared fixtures: tool checks and deck files in a temp folder.

Browser fixtures live in tests/browser/conftest.py.
"""

from __future__ import annotations

import os
import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DECKS = ROOT / "decks"
CHROMIUM = os.environ.get("SLIDESVC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def require_tool(name: str) -> str:
    """Path of an external tool; skip without it, but fail under CI=true."""
    path = name if os.path.isabs(name) and os.access(name, os.X_OK) else shutil.which(name)
    if path is None:
        message = f"{name} is not installed (the README's test command installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def write_deck(tmp_path: Path) -> Callable[..., Path]:
    """Write a deck (dedented) into a temp folder and return its path."""

    def write(text: str, name: str = "talk.md", *, dedent: bool = True) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text) if dedent else text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def parallel_parse(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """load_deck shares out decks of 4+ slides to a forked child; the list
    collects the pids of the children forked."""
    from slidesvc import parse

    forks: list[int] = []
    real_fork = os.fork

    def counting_fork() -> int:
        pid = real_fork()
        if pid:
            forks.append(pid)
        return pid

    monkeypatch.setattr(parse, "PARALLEL_MIN_SLIDES", 4)
    monkeypatch.setattr(parse, "_can_fork", lambda: True)
    monkeypatch.setattr(os, "fork", counting_fork)
    return forks


CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
"""


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The podman binary, with a containers.conf that works in CI sandboxes."""
    path = require_tool("podman")
    require_tool("runc")
    if "CONTAINERS_CONF" not in os.environ:
        conf = tmp_path_factory.mktemp("containers") / "containers.conf"
        conf.write_text(CONTAINERS_CONF)
        os.environ["CONTAINERS_CONF"] = str(conf)
    return path
