"""One `slidesvc serve` process per deck: start on demand, health, crash, idle, stop.

A `DeckProcess` owns one deck's child process and its state machine
(stopped → starting → running → stopped, or → crashed, which waits out a
back-off before the next request may start it again). Requests call
`DeckProcess.acquire`, which starts the process if needed and holds the
request until the child answers its health check. The `Supervisor` keeps
the cap on running processes (least recently used is stopped first) and
stops idle ones. Children run in their own process group, so a stop
reaches the whole group (including their PDF workers), and they die with
the publisher (see `slidesvc.publish.child`). Their output goes to the
publisher's log, one line at a time, prefixed with ``[slug]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
import os
import re
import signal
import time
from collections import deque
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import aiohttp

from slidesvc.publish.settings import PUBLISHER_PID_ENV, PublishSettings

log = logging.getLogger("slidesvc.publish")
child_log = logging.getLogger("slidesvc.publish.child")

STABLE_AFTER = 60.0
"""A process that ran this long before crashing resets the crash back-off."""
MAX_BACKOFF = 30.0
_LINE_LIMIT = 4096
_LISTENING = re.compile(r"^\s*listening\s+127\.0\.0\.1:(\d+)\s*$")
"""The line of `slidesvc serve`'s banner that says which port it bound."""


class DeckState(enum.StrEnum):
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    CRASHED = "crashed"
    STOPPING = "stopping"


class DeckUnavailable(Exception):
    """The deck's process cannot serve now; answer 503 with ``Retry-After``."""

    def __init__(self, slug: str, reason: str, retry_after: int) -> None:
        super().__init__(f"{slug}: {reason}")
        self.slug = slug
        self.reason = reason
        self.retry_after = max(1, retry_after)


def _is_dead(pid: int) -> bool:
    """Whether `pid` has exited (a zombie not yet reaped counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in (b"Z", b"X")


def backoff(crashes: int) -> float:
    """Seconds to wait before restarting after the n-th crash in a row: 0, 1, 2, 4 … 30."""
    return 0.0 if crashes <= 1 else min(MAX_BACKOFF, 2.0 ** (crashes - 2))


def rss_bytes(pid: int) -> int | None:
    """Resident set size of a process (Linux ``/proc``), None when unknown."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class DeckProcess:
    """One deck's child process and its state."""

    def __init__(
        self,
        slug: str,
        path: Path,
        *,
        token: str,
        settings: PublishSettings,
        session: aiohttp.ClientSession,
    ) -> None:
        self.slug = slug
        self.path = path
        self.token = token
        self._settings = settings
        self._session = session
        self.state = DeckState.STOPPED
        self.proc: asyncio.subprocess.Process | None = None
        self.port = 0
        self.started_at = 0.0
        """Monotonic time the current process became healthy."""
        self.last_used = time.monotonic()
        self.active = 0
        """Requests in flight plus open WebSocket connections."""
        self.requests = 0
        self.crashes = 0
        """Crashes in a row (reset by a process that ran `STABLE_AFTER` seconds)."""
        self.restarts = 0
        self.retry_at = 0.0
        self.last_error = ""
        self.output: deque[str] = deque(maxlen=20)
        """The child's last output lines, for `/_status`."""
        self._starting: asyncio.Task[int] | None = None
        self._exited: asyncio.Task[None] | None = None
        self._listening: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def public_url(self) -> str:
        return f"{self._settings.base_url}{self.slug}/"

    def check_startable(self) -> None:
        """Raise `DeckUnavailable` while a crash back-off or a stop is under way."""
        if self.state is DeckState.CRASHED and self._starting is None:
            wait = self.retry_at - time.monotonic()
            if wait > 0:
                raise DeckUnavailable(
                    self.slug, "its process crashed and is restarting", math.ceil(wait)
                )
        if self.state is DeckState.STOPPING:
            raise DeckUnavailable(self.slug, "its process is stopping", 1)

    def forgive(self) -> None:
        """Forget past crashes (the deck file changed): the next request may start it."""
        self.crashes = 0
        self.retry_at = 0.0

    @property
    def needs_start(self) -> bool:
        return self.state is not DeckState.RUNNING and self._starting is None

    def begin_start(self) -> None:
        """Start the process unless it is starting already (returns at once)."""
        if self._starting is None:
            self.state = DeckState.STARTING
            self._starting = asyncio.create_task(self._start(), name=f"start {self.slug}")

    async def acquire(self) -> str:
        """The base URL of a healthy process, starting one if needed."""
        self.last_used = time.monotonic()
        if self.state is DeckState.RUNNING:
            return self.url
        self.check_startable()
        self.begin_start()
        task = self._starting
        assert task is not None
        # Not `await task`: one impatient client must not cancel everybody's start.
        await asyncio.wait({task})
        if task.cancelled():
            raise DeckUnavailable(self.slug, "its process was stopped while starting", 1)
        task.result()
        return self.url

    async def _start(self) -> int:
        try:
            return await self._spawn_and_wait()
        finally:
            self._starting = None

    async def _spawn_and_wait(self) -> int:
        self.port = 0
        self.output.clear()
        self.last_error = ""
        self._listening = asyncio.get_running_loop().create_future()
        proc = await asyncio.create_subprocess_exec(
            *self._argv(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            env=self._env(),
        )
        self.proc = proc
        pump = self._spawn(self._pump_output(proc))
        exited = self._exited = self._spawn(self._watch_exit(proc, pump))
        try:
            await self._wait_healthy(exited)
        except (asyncio.CancelledError, DeckUnavailable):
            await self._terminate(proc)
            raise
        self.state = DeckState.RUNNING
        self.started_at = time.monotonic()
        log.info("[%s] process %d ready on 127.0.0.1:%d", self.slug, proc.pid, self.port)
        return proc.pid

    def _argv(self) -> list[str]:
        # Port 0: the child binds a free port itself and prints it (no race).
        return [
            *self._settings.child_command,
            str(self.path),
            "--host", "127.0.0.1",
            "--port", "0",
            "--public-url", self.public_url,
            "--watch",
            "--lazy-pdf",
        ]  # fmt: skip

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        for name in ("SLIDESVC_HOST", "SLIDESVC_PORT", "PORT", "SLIDESVC_PUBLIC_URL"):
            env.pop(name, None)
        # `serve` flushes its banner and batches its access log; an unbuffered stdout
        # would turn every request into a pipe write and a log record here.
        env.pop("PYTHONUNBUFFERED", None)
        # The token goes through the environment: argv is visible to every user in `ps`.
        env["SLIDESVC_PRESENTER_TOKEN"] = self.token
        env[PUBLISHER_PID_ENV] = str(os.getpid())
        return env

    async def _wait_healthy(self, exited: asyncio.Task[None]) -> None:
        timeout = self._settings.start_timeout
        deadline = time.monotonic() + timeout
        first: set[asyncio.Future[Any]] = {exited, self._listening}
        await asyncio.wait(first, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        delay = 0.01
        while self._listening.done() and time.monotonic() < deadline:
            if exited.done():
                break
            self.port = self._listening.result()
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with self._session.get(
                    f"{self.url}/healthz", timeout=aiohttp.ClientTimeout(total=2)
                ) as resp:
                    if resp.status == 200:
                        return
            await asyncio.wait({exited}, timeout=delay)
            delay = min(delay * 2, 0.25)
        if exited.done():
            raise DeckUnavailable(self.slug, "its process failed to start", self._note_crash())
        self.last_error = f"not healthy within {timeout:g} s"
        log.warning("[%s] %s", self.slug, self.last_error)
        raise DeckUnavailable(self.slug, "its process did not become healthy", self._note_crash())

    def _note_crash(self) -> int:
        """Record a crash; returns the seconds until the next start may be tried."""
        now = time.monotonic()
        if self.started_at and now - self.started_at > STABLE_AFTER:
            self.crashes = 0
        self.crashes += 1
        self.restarts += 1
        wait = backoff(self.crashes)
        self.retry_at = now + wait
        self.state = DeckState.CRASHED
        self.started_at = 0.0
        if self.output and not self.last_error:
            self.last_error = self.output[-1]
        return math.ceil(wait)

    async def _watch_exit(self, proc: asyncio.subprocess.Process, pump: asyncio.Task[None]) -> None:
        code = await proc.wait()
        _kill_group(proc.pid, signal.SIGKILL)  # strays of the group (PDF workers)
        await asyncio.wait({pump}, timeout=1)
        if self.proc is not proc:
            return
        self.proc = None
        if self.state in (DeckState.STOPPING, DeckState.STOPPED):
            return
        self.last_error = f"exited with code {code}" + (
            f": {self.output[-1]}" if self.output else ""
        )
        log.warning("[%s] process %d %s", self.slug, proc.pid, self.last_error)
        if self.state is DeckState.RUNNING:
            self._note_crash()

    async def _pump_output(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        pending = b""
        while chunk := await proc.stdout.read(65536):
            *lines, pending = (pending + chunk).split(b"\n")
            if len(pending) > _LINE_LIMIT:
                lines.append(pending)
                pending = b""
            self._emit(lines)
        self._emit([pending])

    def _emit(self, raw_lines: list[bytes]) -> None:
        """Log what one read brought, as one record (cheap under a busy access log)."""
        out = []
        for raw in raw_lines:
            line = raw.decode("utf-8", "replace").rstrip()[:_LINE_LIMIT]
            if not line:
                continue
            if not self._listening.done() and (match := _LISTENING.match(line)):
                self._listening.set_result(int(match.group(1)))
            # The child's banner shows its presenter URL: keep the token out of the log.
            line = line.replace(self.token, "<token>")
            self.output.append(line)
            out.append(f"[{self.slug}] {line}")
        if out:
            child_log.info("%s", "\n".join(out))

    async def confirm_exit(self, *, refused: bool = False) -> bool:
        """After a failed connection: True when the process is gone (then the next
        `acquire` starts a new one). A dead process is waited for until its exit
        has been handled, however loaded the machine; a live one (it merely closed
        a keep-alive connection) is not waited for. ``refused``: the process no
        longer accepts connections, which only a dying process does (the kernel
        closes its sockets before it shows as exited)."""
        exited = self._exited
        if exited is None:
            return True
        proc = self.proc
        if not refused and proc is not None and not _is_dead(proc.pid):
            return False
        await asyncio.wait({exited}, timeout=5.0)
        return exited.done()

    async def stop(self) -> None:
        """Stop the process (SIGTERM to its group, SIGKILL after the grace time)."""
        if self._starting is not None:
            self._starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, DeckUnavailable):
                await self._starting
        proc = self.proc
        if proc is None:
            if self.state is not DeckState.CRASHED:
                self.state = DeckState.STOPPED
            return
        self.state = DeckState.STOPPING
        await self._terminate(proc)
        self.state = DeckState.STOPPED
        self.started_at = 0.0
        log.info("[%s] stopped process %d", self.slug, proc.pid)

    async def _terminate(self, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is None:
            _kill_group(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), self._settings.stop_timeout)
            except TimeoutError:
                log.warning("[%s] process %d ignored SIGTERM; killing it", self.slug, proc.pid)
                _kill_group(proc.pid, signal.SIGKILL)
                await proc.wait()
        _kill_group(proc.pid, signal.SIGKILL)
        if self.proc is proc:
            self.proc = None

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def status(self) -> dict[str, object]:
        """This deck's line of `/_status`."""
        pid = self.proc.pid if self.proc is not None else None
        running = self.state is DeckState.RUNNING and self.started_at
        return {
            "slug": self.slug,
            "state": str(self.state),
            "pid": pid,
            "port": self.port if pid else None,
            "rss_bytes": rss_bytes(pid) if pid else None,
            "uptime_s": round(time.monotonic() - self.started_at, 1) if running else 0.0,
            "requests": self.requests,
            "active": self.active,
            "restarts": self.restarts,
            "retry_in_s": max(0, math.ceil(self.retry_at - time.monotonic()))
            if self.state is DeckState.CRASHED
            else 0,
            "last_error": self.last_error,
        }


def _kill_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class Supervisor:
    """Every deck process: the running cap (LRU) and the idle reaper."""

    def __init__(self, settings: PublishSettings, session: aiohttp.ClientSession) -> None:
        self.settings = settings
        self.session = session
        self.decks: dict[str, DeckProcess] = {}
        self._room = asyncio.Lock()

    def add(self, slug: str, path: Path, token: str) -> DeckProcess:
        deck = DeckProcess(slug, path, token=token, settings=self.settings, session=self.session)
        self.decks[slug] = deck
        return deck

    async def remove(self, slug: str) -> None:
        deck = self.decks.pop(slug, None)
        if deck is not None:
            await deck.stop()

    async def acquire(self, slug: str) -> str:
        """The URL of the deck's healthy process (KeyError for an unknown deck)."""
        deck = self.decks[slug]
        if deck.state is DeckState.RUNNING:  # the hot path: no extra awaits
            deck.last_used = time.monotonic()
            return deck.url
        if deck.needs_start:
            deck.check_startable()
            # Making room and starting happen under one lock, so concurrent first
            # requests for different decks cannot overshoot the cap.
            async with self._room:
                if deck.needs_start:
                    await self._make_room(deck)
                    deck.begin_start()
        return await deck.acquire()

    async def _make_room(self, starting: DeckProcess) -> None:
        live = [
            d for d in self.decks.values()
            if d is not starting and d.state in (DeckState.RUNNING, DeckState.STARTING)
        ]  # fmt: skip
        excess = len(live) + 1 - self.settings.max_running
        if excess <= 0:
            return
        # Least recently used first; a deck with open connections only if we must.
        live.sort(key=lambda d: (d.active > 0, d.last_used))
        victims = live[:excess]
        for victim in victims:
            log.info(
                "[%s] stopping (cap of %d running decks)", victim.slug, self.settings.max_running
            )
        await asyncio.gather(*(v.stop() for v in victims))

    async def reap_idle(self) -> None:
        """Stop processes idle for longer than the idle timeout."""
        limit = self.settings.idle_timeout
        if limit <= 0:
            return
        now = time.monotonic()
        idle = [
            d for d in self.decks.values()
            if d.state is DeckState.RUNNING and d.active == 0 and now - d.last_used > limit
        ]  # fmt: skip
        for deck in idle:
            log.info("[%s] idle for %.0f s; stopping", deck.slug, now - deck.last_used)
        await asyncio.gather(*(d.stop() for d in idle))

    async def stop_all(self) -> None:
        await asyncio.gather(*(d.stop() for d in self.decks.values()))
