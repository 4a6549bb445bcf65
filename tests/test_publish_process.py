"""`slidesvc publish` as a real command: signals, SIGKILL, --status, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from process_helpers import alive, free_port
from test_publish import three_decks


@pytest.fixture
def decks(tmp_path: Path) -> Path:
    return three_decks(tmp_path)


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return resp.status, resp.read()


def _status(port: int) -> dict[str, dict[str, Any]]:
    _, body = _get(f"http://127.0.0.1:{port}/_status")
    return {d["slug"]: d for d in json.loads(body)["decks"]}


def _wait(check: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.1)


@pytest.fixture
def publisher(decks: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    port = free_port()
    log = tmp_path / "publisher.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "slidesvc", "publish", str(decks), "--port", str(port),
             "--preload"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
    try:
        _wait(lambda: {d["state"] for d in _status(port).values()} == {"running"}, timeout=60)
        yield proc, port, log
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_sigterm_stops_every_child_and_exits_cleanly(publisher: Any) -> None:
    """SIGTERM: children stop gracefully, the publisher exits 0, no child PID survives."""
    proc, port, log = publisher
    pids = [d["pid"] for d in _status(port).values()]
    assert len(pids) == 3 and all(alive(p) for p in pids)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    assert not any(alive(p) for p in pids)
    text = log.read_text()
    assert text.count("] stopped process ") == 3
    assert "ignored SIGTERM" not in text  # each child finished within the grace time
    assert "Traceback" not in text


def test_sigkill_of_the_publisher_takes_its_children_along(publisher: Any) -> None:
    """Even SIGKILL of the publisher leaves no deck process behind."""
    proc, port, _ = publisher
    pids = [d["pid"] for d in _status(port).values()]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    _wait(lambda: not any(alive(p) for p in pids), timeout=10)


def test_status_command_prints_each_deck(publisher: Any, decks: Path) -> None:
    """`slidesvc publish DIR --status` shows state, PID and RSS of each deck."""
    _, port, _ = publisher
    assert _get(f"http://127.0.0.1:{port}/alpha/deck.json")[0] == 200
    out = subprocess.run(
        [sys.executable, "-m", "slidesvc", "publish", str(decks), "--port", str(port), "--status"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:]}
    assert sorted(rows) == ["alpha", "beta", "gamma"]
    assert rows["alpha"][1] == "running" and int(rows["alpha"][2]) == _status(port)["alpha"]["pid"]
    assert "MiB" in out


def test_status_without_a_publisher_is_a_clear_error(decks: Path) -> None:
    """--status when nothing listens: one line, exit code 1, no traceback."""
    port = free_port()
    done = subprocess.run(
        [sys.executable, "-m", "slidesvc", "publish", str(decks), "--port", str(port), "--status"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 1
    assert f"no publisher answers at http://127.0.0.1:{port}/_status" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--idle-timeout", "-1"], "--idle-timeout"),
        (["--max-running", "0"], "--max-running"),
        (["--public-url", "ftp://x"], "--public-url"),
    ],
)
def test_bad_options_are_clear_errors(decks: Path, args: list[str], message: str) -> None:
    """Bad values are reported in one line with exit code 1."""
    done = subprocess.run(
        [sys.executable, "-m", "slidesvc", "publish", str(decks), *args],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 1 and message in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_folder_and_busy_port_are_clear_errors(decks: Path, tmp_path: Path) -> None:
    """A folder that does not exist, or a port in use, is one line and exit code 1."""
    done = subprocess.run(
        [sys.executable, "-m", "slidesvc", "publish", str(tmp_path / "nope")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 1 and "not a folder of decks" in done.stderr
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "slidesvc", "publish", str(decks), "--port", str(port)],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    assert done.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in done.stderr
