"""Run a PDF render in a separate process, under a time and a memory limit.

WeasyPrint runs on untrusted-looking input (raw HTML in decks), so neither the
command line nor the server renders in its own process:
`render_pdf_isolated_async` (and `find_overflows_isolated_async`) hand the
deck (a path or a pickled `Deck`) to a fresh process and wait.

That process is forked from a `WarmWorker`: ``python -m slidesvc.pdfworker
--warm``, started in a session of its own, imports WeasyPrint and lays out a
small page once (about 0.5 s, most of it cffi reading Pango's declarations),
then forks one child per render. Each child gets a process group of its own,
limits its address space (``RLIMIT_AS``, inherited by the render workers it
forks) and renders; the parent kills the child's group when the wall-clock
limit passes. Either way the caller gets a `RenderError` that says which limit
was hit and how to raise it, and the server stays up. A one-off render starts
a warm worker and closes it after (the command line starts it before parsing
the deck, so the imports overlap the parse); `serve --watch` and
`slidesvc pdf --watch` keep one, so re-exporting an edited deck skips the
start-up and costs little more than the slides that changed: after each
successful render the warm process also parses the deck's stylesheet and
cached pages (`WarmWorker.preload`), which the next fork starts with.

Limits: ``SLIDESVC_PDF_TIMEOUT`` seconds (default 120) and
``SLIDESVC_PDF_MEMORY_MB`` per process (default 1024), or the arguments.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import gc
import itertools
import json
import os
import pickle
import shutil
import signal
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

from slidesvc.errors import DeckError, Diagnostic, RenderError, SlidesvcError
from slidesvc.model import Deck

DEFAULT_TIMEOUT = 120.0
DEFAULT_MEMORY_MB = 1024
_EXIT_MEMORY = 3


@dataclass(frozen=True)
class PdfLimits:
    """How long and how much memory one PDF render may take."""

    timeout: float = DEFAULT_TIMEOUT
    """Wall-clock seconds for the whole render."""
    memory_mb: int = DEFAULT_MEMORY_MB
    """Address-space limit of each rendering process, in MiB (0 = none)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> PdfLimits:
        """Limits from ``SLIDESVC_PDF_TIMEOUT`` and ``SLIDESVC_PDF_MEMORY_MB``."""
        timeout = _number(environ, "SLIDESVC_PDF_TIMEOUT", DEFAULT_TIMEOUT)
        memory = _number(environ, "SLIDESVC_PDF_MEMORY_MB", DEFAULT_MEMORY_MB)
        if timeout <= 0:
            raise RenderError(f"SLIDESVC_PDF_TIMEOUT must be positive, not {timeout:g}")
        if memory < 0 or memory != int(memory):
            raise RenderError(f"SLIDESVC_PDF_MEMORY_MB must be a whole number >= 0, not {memory:g}")
        return cls(timeout=timeout, memory_mb=int(memory))


def _number(environ: Mapping[str, str], key: str, default: float) -> float:
    raw = environ.get(key, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise RenderError(f"{key} must be a number, not {raw!r}") from None


@dataclass(frozen=True)
class _Request:
    deck: Deck | Path
    notes: bool
    cache_dir: Path | None
    jobs: int | None
    overflows_only: bool = False
    """Lay out for `find_overflows` (``slidesvc check``) instead of writing a PDF."""


def _limits(timeout: float | None, memory_mb: int | None) -> PdfLimits:
    env = PdfLimits.from_env()
    return PdfLimits(
        timeout=env.timeout if timeout is None else timeout,
        memory_mb=env.memory_mb if memory_mb is None else memory_mb,
    )


def _prepare(folder: Path, request: _Request) -> None:
    (folder / "request.pickle").write_bytes(pickle.dumps(request))


def _result(
    folder: Path,
    returncode: int,
    stderr: bytes,
    limits: PdfLimits,
    diagnostics: list[Diagnostic] | None,
) -> bytes:
    if returncode == 0:
        if diagnostics is not None:
            diagnostics.extend(_read_diagnostics(folder))
        return (folder / "out.pdf").read_bytes()
    error = folder / "error.json"
    if error.is_file():
        data = json.loads(error.read_text("utf-8"))
        if data.get("kind") == "deck":
            raise DeckError(data["path"], int(data["line"]), data["message"])
        raise RenderError(str(data["message"]))
    if returncode == _EXIT_MEMORY or returncode < 0:
        raise RenderError(
            f"PDF rendering ran out of memory or crashed (limit {limits.memory_mb} MiB per "
            "process; raise SLIDESVC_PDF_MEMORY_MB if the deck really needs more)"
        )
    detail = stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
    raise RenderError(f"PDF rendering failed (exit {returncode}): {detail[0]}")


def _timeout_error(limits: PdfLimits) -> RenderError:
    return RenderError(
        f"PDF rendering took longer than {limits.timeout:g} s and was stopped "
        "(raise SLIDESVC_PDF_TIMEOUT if the deck really needs more)"
    )


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


async def render_pdf_isolated_async(
    deck: Path | Deck,
    *,
    notes: bool = False,
    timeout: float | None = None,
    memory_mb: int | None = None,
    cache_dir: Path | None = None,
    jobs: int | None = None,
    diagnostics: list[Diagnostic] | None = None,
    worker: WarmWorker | None = None,
) -> bytes:
    """`render_pdf` in a child process, awaited; `RenderError` when a limit is hit.
    The child is forked from `worker` (kept warm by the caller) or from a
    warm worker started for this render alone."""
    request = _Request(deck, notes, cache_dir, jobs)
    return await _isolated(request, _limits(timeout, memory_mb), worker, diagnostics)


async def find_overflows_isolated_async(
    deck: Deck,
    *,
    timeout: float | None = None,
    memory_mb: int | None = None,
    cache_dir: Path | None = None,
    worker: WarmWorker | None = None,
) -> list[Diagnostic]:
    """`render_pdf.find_overflows` in a child process, under the same limits."""
    found: list[Diagnostic] = []
    request = _Request(deck, False, cache_dir, None, overflows_only=True)
    await _isolated(request, _limits(timeout, memory_mb), worker, found)
    return found


async def _isolated(
    request: _Request,
    limits: PdfLimits,
    worker: WarmWorker | None,
    diagnostics: list[Diagnostic] | None,
) -> bytes:
    with tempfile.TemporaryDirectory(prefix="slidesvc-pdf-") as tmp:
        folder = Path(tmp)
        _prepare(folder, request)
        if worker is None:
            async with WarmWorker() as own:
                returncode = await own.run(folder, limits)
        else:
            returncode = await worker.run(folder, limits)
        stderr = folder / "stderr.txt"
        output = stderr.read_bytes() if stderr.is_file() else b""
        result = _result(folder, returncode, output, limits, diagnostics)
        if worker is not None:
            await worker.preload(request, folder / "request.pickle")
        return result


class _WorkerGone(RenderError):
    """The warm process ended before a render could start."""


class WarmWorker:
    """A process with WeasyPrint imported that forks one child per render.

    ``async with WarmWorker() as worker`` stops it (and any render still
    running) on the way out; `start` may be called early so the imports
    overlap other work. If the process dies it is started again on the next
    render.
    """

    def __init__(self, *, preload: bool = False) -> None:
        """``preload``: for a caller that renders one deck again and again (the
        watch modes); after each render that succeeds, the warm process parses
        what the deck's next render needs (see `preload`)."""
        self._preload = preload
        self._process: asyncio.subprocess.Process | None = None
        self._readers: list[asyncio.Task[None]] = []
        self._waiting: dict[int, tuple[asyncio.Future[int], asyncio.Future[int]]] = {}
        self._ids = itertools.count(1)
        self._stderr: collections.deque[str] = collections.deque(maxlen=3)
        self._starting = asyncio.Lock()  # concurrent renders share one process
        self._preloads: tempfile.TemporaryDirectory[str] | None = None

    async def __aenter__(self) -> WarmWorker:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> asyncio.subprocess.Process:
        """The warm process, started now if it is not running."""
        async with self._starting:
            process = self._process
            if process is None or process.returncode is not None:
                process = await self._spawn()
        return process

    async def _spawn(self) -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "slidesvc.pdfworker",
            "--warm",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # a terminal's Ctrl+C goes to the caller only
        )
        self._process = process
        self._readers = [
            asyncio.ensure_future(self._read_events(process)),
            asyncio.ensure_future(self._read_stderr(process)),
        ]
        return process

    async def run(self, folder: Path, limits: PdfLimits) -> int:
        """Render the request in `folder` in a new child; its exit code.
        Past ``limits.timeout`` (or when cancelled) the child's group is killed."""
        if "\n" in str(folder):
            raise RenderError(f"{folder!r}: a work folder name cannot contain a newline")
        try:
            async with asyncio.timeout(limits.timeout):
                try:
                    return await self._run_once(folder, limits)
                except _WorkerGone:  # it died while idle: start a new one, once
                    return await self._run_once(folder, limits)
        except TimeoutError:
            raise _timeout_error(limits) from None

    async def _run_once(self, folder: Path, limits: PdfLimits) -> int:
        job = next(self._ids)
        loop = asyncio.get_running_loop()
        pid: asyncio.Future[int] = loop.create_future()
        exit_code: asyncio.Future[int] = loop.create_future()
        self._waiting[job] = (pid, exit_code)
        try:
            process = await self.start()
            assert process.stdin is not None
            try:
                process.stdin.write(f"{job} {limits.memory_mb} {folder}\n".encode())
                await process.stdin.drain()
                return await exit_code
            except (RenderError, BrokenPipeError, ConnectionResetError) as exc:
                if pid.done() and pid.exception() is None:
                    raise  # the render had started: its failure is the answer
                await process.wait()  # so that `start` makes a new one
                raise _WorkerGone(str(self._died())) from exc
        finally:
            self._waiting.pop(job, None)
            if pid.done() and not pid.cancelled() and pid.exception() is None:
                _kill_group(pid.result())  # whatever of it still runs: the child, its workers

    async def preload(self, request: _Request, pickled: Path) -> None:
        """After a render of ``request`` (``pickled`` in its work folder)
        succeeded, if this worker preloads: let the warm process parse what
        the next render of its deck needs (its stylesheet, its cached pages;
        see `render_pdf.preload`), so every later fork starts with it. Nothing
        waits for it; a parsed deck only (the warm process never parses
        Markdown)."""
        process = self._process
        if not self._preload or isinstance(request.deck, Path):
            return
        if process is None or process.returncode is not None:
            return
        assert process.stdin is not None
        if self._preloads is None:
            self._preloads = tempfile.TemporaryDirectory(prefix="slidesvc-preload-")
        path = Path(self._preloads.name) / f"{next(self._ids)}.pickle"
        shutil.move(pickled, path)  # the work folder goes; a rename, on one file system
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            process.stdin.write(f"preload {path}\n".encode())
            await process.stdin.drain()

    async def close(self) -> None:
        """Stop the warm process; renders still running are killed."""
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            assert process.stdin is not None
            process.stdin.close()  # end of input: it exits
            try:
                await asyncio.wait_for(process.wait(), 2)
            except TimeoutError:
                _kill_group(process.pid)
                await process.wait()
        for pid, _ in list(self._waiting.values()):  # in case it had to be killed
            if pid.done() and not pid.cancelled() and pid.exception() is None:
                _kill_group(pid.result())
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        self._readers = []
        if self._preloads is not None:
            self._preloads.cleanup()
            self._preloads = None

    async def _read_events(self, process: asyncio.subprocess.Process) -> None:
        """``<job> pid <n>`` and ``<job> exit <code>`` lines from the warm process."""
        assert process.stdout is not None
        async for line in process.stdout:
            parts = line.decode("ascii", "replace").split()
            if len(parts) != 3 or not parts[0].isdigit() or not parts[2].lstrip("-").isdigit():
                continue  # not ours (a library printing to stdout)
            job, event, value = int(parts[0]), parts[1], int(parts[2])
            futures = self._waiting.get(job)
            if futures is None:
                if event == "pid":  # its caller gave up (time limit) before it started
                    _kill_group(value)
                continue
            future = futures[0] if event == "pid" else futures[1]
            if not future.done():
                future.set_result(value)
        await process.wait()
        for pid, exit_code in self._waiting.values():  # it died: nobody gets an answer
            for future in (pid, exit_code):
                if not future.done():
                    future.set_exception(self._died())

    async def _read_stderr(self, process: asyncio.subprocess.Process) -> None:
        assert process.stderr is not None
        async for line in process.stderr:
            text = line.decode("utf-8", "replace").strip()
            if text:
                self._stderr.append(text)

    def _died(self) -> RenderError:
        detail = f": {self._stderr[-1]}" if self._stderr else ""
        return RenderError(f"the PDF worker process stopped unexpectedly{detail}")


def _read_diagnostics(folder: Path) -> list[Diagnostic]:
    path = folder / "diagnostics.json"
    if not path.is_file():
        return []
    return [
        Diagnostic(Path(d["path"]), int(d["line"]), str(d["message"]), d["severity"])
        for d in json.loads(path.read_text("utf-8"))
    ]


# --------------------------------------------------------------------------- the child


def _limit_memory(memory_mb: int) -> None:
    if memory_mb > 0:
        import resource

        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _child(folder: Path) -> int:
    request: _Request = pickle.loads((folder / "request.pickle").read_bytes())
    error = folder / "error.json"
    try:
        from slidesvc.render_pdf import find_overflows, render_pdf

        deck = request.deck
        if isinstance(deck, Path):
            from slidesvc.parse import load_deck  # type: ignore[import-not-found, unused-ignore]

            deck = load_deck(deck)
        found: list[Diagnostic] = []
        if request.overflows_only:
            found = find_overflows(deck, jobs=request.jobs, cache_dir=request.cache_dir)
            pdf = b""
        else:
            pdf = render_pdf(
                deck,
                notes=request.notes,
                jobs=request.jobs,
                cache_dir=request.cache_dir,
                diagnostics=found,
            )
    except MemoryError:
        return _EXIT_MEMORY
    except OSError as exc:
        if exc.errno != errno.ENOMEM:  # e.g. no address space left to fork a render worker
            return _report_failure(error, exc)
        return _EXIT_MEMORY
    except DeckError as exc:
        data: dict[str, Any] = {"kind": "deck", "path": str(exc.path), "line": exc.line}
        error.write_text(json.dumps({**data, "message": exc.message}), "utf-8")
        return 1
    except SlidesvcError as exc:
        error.write_text(json.dumps({"kind": "render", "message": str(exc)}), "utf-8")
        return 1
    except Exception as exc:
        return _report_failure(error, exc)
    (folder / "diagnostics.json").write_text(
        json.dumps(
            [
                {"path": str(d.path), "line": d.line, "message": d.message, "severity": d.severity}
                for d in found
            ]
        ),
        "utf-8",
    )
    (folder / "out.pdf").write_bytes(pdf)
    return 0


def _warm(stdin: int = 0) -> int:
    """The warm process: import, warm up, then fork one child per request line
    (``<job> <memory MiB> <folder>``) and report ``<job> pid <n>`` and
    ``<job> exit <code>`` on stdout; a ``preload <file>`` line is
    `WarmWorker.preload`. At the end of its input it kills the renders still
    running and exits."""
    import selectors

    from slidesvc import parse, render_pdf  # noqa: F401 - imported once, shared by every fork

    render_pdf.warm_up()
    # What is loaded now is shared by every fork: frozen, it is left out of the
    # children's garbage collections, which would otherwise walk (and so copy)
    # every page of it. A one-slide re-export gets about 15% faster.
    gc.freeze()
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # only to wake the selector
    selector = selectors.DefaultSelector()
    selector.register(stdin, selectors.EVENT_READ)
    selector.register(wake_read, selectors.EVENT_READ)
    running: dict[int, str] = {}  # pid -> job
    pending = b""

    def say(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    while True:
        for key, _ in selector.select():
            if key.fd == wake_read:
                os.read(wake_read, 4096)
                while running:
                    try:
                        pid, status = os.waitpid(-1, os.WNOHANG)
                    except ChildProcessError:
                        break
                    if pid == 0:
                        break
                    say(f"{running.pop(pid)} exit {os.waitstatus_to_exitcode(status)}")
                continue
            data = os.read(stdin, 65536)
            if not data:  # the caller is done (or gone): so are its renders
                for pid in running:
                    _kill_group(pid)
                return 0
            *lines, pending = (pending + data).split(b"\n")
            for line in lines:
                if line.startswith(b"preload "):
                    _preload(Path(line[8:].decode()))
                    continue
                job, memory_mb, folder = line.decode().split(" ", 2)
                try:
                    pid = os.fork()
                except OSError:  # no memory (or processes) left for one more
                    say(f"{job} exit {_EXIT_MEMORY}")
                    continue
                if pid == 0:
                    selector.close()
                    for fd in (wake_read, wake_write):
                        os.close(fd)
                    _forked(Path(folder), int(memory_mb))
                with contextlib.suppress(OSError):  # the child may have done it already
                    os.setpgid(pid, pid)
                running[pid] = job
                say(f"{job} pid {pid}")


def _preload(path: Path) -> None:
    """`WarmWorker.preload` in the warm process. Only ever a head start: if it
    fails, each render parses what it needs itself, as it would anyway."""
    with contextlib.suppress(Exception):
        request: _Request = pickle.loads(path.read_bytes())
        from slidesvc.render_pdf import preload

        assert isinstance(request.deck, Deck)
        preload(request.deck, notes=request.notes, cache_dir=request.cache_dir)
    with contextlib.suppress(OSError):
        path.unlink()  # done (which tests wait for)
    # The pages it replaced are cycles (pypdf objects point at their reader):
    # collect them before freezing again, or each edit would leak its pages.
    # Then, as after the warm-up, the forks' collections leave the rest alone.
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _forked(folder: Path, memory_mb: int) -> NoReturn:
    """One render in a child of the warm process; never returns."""
    code = 1
    try:
        os.setpgid(0, 0)  # a group of its own, so a timeout kills its workers too
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        devnull = os.open(os.devnull, os.O_RDWR)
        err = os.open(folder / "stderr.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        for fd, target in ((devnull, 0), (devnull, 1), (err, 2)):
            os.dup2(fd, target)
        _limit_memory(memory_mb)
        code = _child(folder)
    except MemoryError:
        code = _EXIT_MEMORY
    except BaseException as exc:  # must never return into the warm loop
        with contextlib.suppress(Exception):
            print(f"PDF worker: {type(exc).__name__}: {exc}", file=sys.stderr)
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os._exit(code)


def _report_failure(error: Path, exc: Exception) -> int:
    """An unexpected failure, for the parent as one line, not a traceback."""
    message = f"PDF rendering failed: {type(exc).__name__}: {exc}"
    error.write_text(json.dumps({"kind": "render", "message": message}), "utf-8")
    return 1


def main(argv: list[str]) -> int:
    if argv == ["--warm"]:
        return _warm()
    print("usage: python -m slidesvc.pdfworker --warm", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
