"""`slidesvc serve` as a process: banner, port 0, port in use, signals, access log, imports."""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import urlopen

import aiohttp
import pytest
from server_fixtures import make_artifacts, write_artifacts

from slidesvc.server.config import ServerSettings
from slidesvc.server.run import banner

PY = sys.executable
BUILD_SIDE = ("markdown", "pygments", "yaml", "weasyprint", "pypdf", "pypdfium2", "ziamath")

# Runs the real server entry point with the build side made unimportable.
BLOCKER = textwrap.dedent(
    f"""
    import importlib.abc, runpy, sys
    BLOCKED = {BUILD_SIDE!r}
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED or name in ("slidesvc.build", "slidesvc.render_html"):
                raise ImportError("blocked in this test: " + name)
    sys.meta_path.insert(0, Block())
    for mod in BLOCKED:
        sys.modules.pop(mod, None)
    sys.argv = ["slidesvc.server", *sys.argv[1:]]
    runpy.run_module("slidesvc.server", run_name="__main__", alter_sys=True)
    """
)


@pytest.fixture(scope="module")
def artifacts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_artifacts(tmp_path_factory.mktemp("art") / "talk", make_artifacts())


class Proc:
    def __init__(self, cmd: list[str], env: dict[str, str] | None = None) -> None:
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.started = time.monotonic()
        self.p = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env, text=True
        )
        self.out: list[str] = []
        self._partial = ""

    def wait_for(self, pattern: str, timeout: float = 20) -> re.Match[str]:
        """Read stdout until a line matches `pattern`."""
        assert self.p.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.p.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.out:
                if m := re.search(pattern, line):
                    return m
            if not sel.select(deadline - time.monotonic()):
                break
            # raw reads: a buffered readline could hide lines from select()
            chunk = os.read(self.p.stdout.fileno(), 65536).decode()
            if not chunk:
                break
            self._partial += chunk
            *lines, self._partial = self._partial.split("\n")
            self.out.extend(line + "\n" for line in lines)
        stderr = self.p.stderr.read() if self.p.poll() is not None and self.p.stderr else "?"
        raise AssertionError(f"no {pattern!r} in {self.out} (stderr: {stderr})")

    def finish(self) -> tuple[int, str, str]:
        """Wait for the process to exit by itself."""
        return self.stop(None)

    def stop(self, sig: int | None = signal.SIGTERM) -> tuple[int, str, str]:
        if sig is not None and self.p.poll() is None:
            self.p.send_signal(sig)
        out, err = self.p.communicate(timeout=15)
        return self.p.returncode, "".join(self.out) + self._partial + out, err


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in started:
        if proc.p.poll() is None:
            proc.p.kill()
            proc.p.communicate(timeout=5)


def start(procs: list[Proc], *args: str, env: dict[str, str] | None = None) -> Proc:
    proc = Proc([PY, "-m", "slidesvc", "serve", *args], env)
    procs.append(proc)
    return proc


def test_banner_names_the_three_urls() -> None:
    """The banner prints deck, embed and presenter URLs (token in the fragment)."""
    s = ServerSettings(presenter_token="t0ken-abcdef", token_generated=True).with_bound_port(8123)
    text = banner(s, {"title": "T", "slides": 3}, "decks/t.md")
    assert "deck       http://127.0.0.1:8123/\n" in text
    assert "embed      http://127.0.0.1:8123/embed\n" in text
    assert "presenter  http://127.0.0.1:8123/presenter#token=t0ken-abcdef" in text
    assert "random token" in text


def test_serve_artifacts_port_zero_and_sigterm(procs: list[Proc], artifacts_dir: Path) -> None:
    """--port 0 prints the chosen port; the deck answers; SIGTERM exits 0; access log is CLF."""
    proc = start(procs, "--artifacts", str(artifacts_dir), "--port", "0")
    url = proc.wait_for(r"deck\s+(http://127\.0\.0\.1:(\d+)/)").group(1)
    token = proc.wait_for(r"presenter\s+\S+/presenter#token=(\S+)").group(1)
    assert len(token) >= 24
    with urlopen(url, timeout=5) as resp:
        assert resp.status == 200
    with urlopen(url + "healthz", timeout=5) as resp:
        assert json.loads(resp.read())["deck"] == "talk"
    line = proc.wait_for(r'^127\.0\.0\.1 - - \[[^\]]+\] "GET / HTTP/1\.1" 200 \d+$').group(0)
    assert line
    code, out, err = proc.stop(signal.SIGTERM)
    assert code == 0, err
    assert "Traceback" not in err
    assert token not in "".join(line for line in out.splitlines() if '"GET' in line)


def test_environment_configures_the_service(procs: list[Proc], artifacts_dir: Path) -> None:
    """SLIDESVC_PORT, SLIDESVC_PUBLIC_URL and SLIDESVC_PRESENTER_TOKEN are honoured."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = {
        "SLIDESVC_PORT": str(port),
        "SLIDESVC_PUBLIC_URL": "https://decks.example.org/talk/",
        "SLIDESVC_PRESENTER_TOKEN": "my-env-token",
    }
    proc = start(procs, "--artifacts", str(artifacts_dir), env=env)
    proc.wait_for(r"presenter\s+https://decks\.example\.org/talk/presenter#token=my-env-token$")
    with urlopen(f"http://127.0.0.1:{port}/deck.json", timeout=5) as resp:
        assert json.loads(resp.read())["links"]["embed"] == "https://decks.example.org/talk/embed"
    assert proc.stop(signal.SIGINT)[0] == 0


def test_port_in_use_is_a_one_line_error(procs: list[Proc], artifacts_dir: Path) -> None:
    """A taken port exits 1 with one line and no traceback."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    port = sock.getsockname()[1]
    try:
        proc = start(procs, "--artifacts", str(artifacts_dir), "--port", str(port))
        code, _, err = proc.finish()
    finally:
        sock.close()
    assert code == 1
    assert err.strip().count("\n") == 0
    assert f"127.0.0.1:{port} is already in use" in err


@pytest.mark.parametrize(
    "origin",
    ["https://a.org/path", "https://*.a.*", "https://a.org; script-src *", "'unsafe-inline'"],
)
def test_bad_origin_is_a_start_up_error(
    procs: list[Proc], artifacts_dir: Path, origin: str
) -> None:
    """A malformed --embed-origin stops start-up with a clear message (exit 1)."""
    proc = start(procs, "--artifacts", str(artifacts_dir), "--port", "0", "--embed-origin", origin)
    code, _, err = proc.finish()
    assert code == 1
    assert "--embed-origin" in err and "Traceback" not in err


def test_missing_artifacts_folder_is_an_error(procs: list[Proc], tmp_path: Path) -> None:
    """A folder that is not a build's output is a one-line error."""
    proc = start(procs, "--artifacts", str(tmp_path), "--port", "0")
    code, _, err = proc.finish()
    assert code == 1
    assert "not a deck artifact folder" in err and "Traceback" not in err


def test_serving_needs_only_aiohttp(procs: list[Proc], artifacts_dir: Path) -> None:
    """`python -m slidesvc.server` serves with markdown, pygments, yaml, weasyprint blocked."""
    proc = Proc(
        [PY, "-c", BLOCKER, "--artifacts", str(artifacts_dir), "--port", "0"],
        {"SLIDESVC_ACCESS_LOG": "0"},
    )
    procs.append(proc)
    url = proc.wait_for(r"deck\s+(\S+)").group(1)
    for path in ("", "embed", "deck.pdf", "deck.json", "oembed?url=" + url):
        with urlopen(url + path, timeout=5) as resp:
            assert resp.status == 200, path
    code, out, err = proc.stop()
    assert code == 0, err
    assert '"GET' not in out  # SLIDESVC_ACCESS_LOG=0


def test_blocker_really_blocks() -> None:
    """The import blocker used above does stop a build-side import."""
    run = 'runpy.run_module("slidesvc.server", run_name="__main__", alter_sys=True)'
    code = BLOCKER.replace(run, "import yaml")
    result = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "blocked in this test: yaml" in result.stderr


async def test_sigterm_closes_websockets_going_away(procs: list[Proc], artifacts_dir: Path) -> None:
    """On SIGTERM live connections get close code 1001 and the process exits 0."""
    proc = start(procs, "--artifacts", str(artifacts_dir), "--port", "0")
    url = proc.wait_for(r"deck\s+(\S+)").group(1)
    async with aiohttp.ClientSession() as session, session.ws_connect(url + "live") as ws:
        proc.p.send_signal(signal.SIGTERM)
        msg = await ws.receive(timeout=5)
        assert msg.type is aiohttp.WSMsgType.CLOSE
        assert msg.data == aiohttp.WSCloseCode.GOING_AWAY
    code, _, err = proc.stop()
    assert code == 0, err


def test_unknown_path_over_real_socket(procs: list[Proc], artifacts_dir: Path) -> None:
    """A real client gets the small 404 page."""
    proc = start(procs, "--artifacts", str(artifacts_dir), "--port", "0")
    url = proc.wait_for(r"deck\s+(\S+)").group(1)
    with pytest.raises(HTTPError) as info:
        urlopen(url + "nope", timeout=5)
    assert info.value.code == 404
    assert b"Not found" in info.value.read()
    info.value.close()
    assert proc.stop()[0] == 0
