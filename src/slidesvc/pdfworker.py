"""Run a PDF render in a separate process, under a time and a memory limit.

WeasyPrint runs on untrusted-looking input (raw HTML in decks), so neither the
command line nor the server renders in its own process: `render_pdf_isolated`
(sync, for the CLI) and `render_pdf_isolated_async` (for the server) start
``python -m slidesvc.pdfworker`` in a new session, give it the deck (a path
or a pickled `Deck`), and wait. The child limits its own address space
(``RLIMIT_AS``, applied to it and to each render worker it forks) before it
imports anything heavy; the parent kills the whole process group when the
wall-clock limit passes. Either way the caller gets a `RenderError` that says
which limit was hit and how to raise it, and the server stays up.

Limits: ``SLIDESVC_PDF_TIMEOUT`` seconds (default 120) and
``SLIDESVC_PDF_MEMORY_MB`` per process (default 1024), or the arguments.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pickle
import signal
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def _limits(timeout: float | None, memory_mb: int | None) -> PdfLimits:
    env = PdfLimits.from_env()
    return PdfLimits(
        timeout=env.timeout if timeout is None else timeout,
        memory_mb=env.memory_mb if memory_mb is None else memory_mb,
    )


def _command(folder: Path, memory_mb: int) -> list[str]:
    return [sys.executable, "-m", "slidesvc.pdfworker", str(folder), str(memory_mb)]


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


def render_pdf_isolated(
    deck: Path | Deck,
    *,
    notes: bool = False,
    timeout: float | None = None,
    memory_mb: int | None = None,
    cache_dir: Path | None = None,
    jobs: int | None = None,
    diagnostics: list[Diagnostic] | None = None,
) -> bytes:
    """`render_pdf` in a child process; `RenderError` when a limit is hit.
    For callers without an event loop (the command line, image builds)."""
    return asyncio.run(
        render_pdf_isolated_async(
            deck,
            notes=notes,
            timeout=timeout,
            memory_mb=memory_mb,
            cache_dir=cache_dir,
            jobs=jobs,
            diagnostics=diagnostics,
        )
    )


async def render_pdf_isolated_async(
    deck: Path | Deck,
    *,
    notes: bool = False,
    timeout: float | None = None,
    memory_mb: int | None = None,
    cache_dir: Path | None = None,
    jobs: int | None = None,
    diagnostics: list[Diagnostic] | None = None,
) -> bytes:
    """`render_pdf` in a child process, awaited; `RenderError` when a limit is hit."""
    limits = _limits(timeout, memory_mb)
    with tempfile.TemporaryDirectory(prefix="slidesvc-pdf-") as tmp:
        folder = Path(tmp)
        _prepare(folder, _Request(deck, notes, cache_dir, jobs))
        process = await asyncio.create_subprocess_exec(
            *_command(folder, limits.memory_mb),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        try:
            _, stderr = await asyncio.wait_for(process.communicate(), limits.timeout)
        except TimeoutError:
            _kill_group(process.pid)
            await process.wait()
            raise _timeout_error(limits) from None
        finally:
            if process.returncode is None:  # cancelled: do not leave it running
                _kill_group(process.pid)
                await process.wait()
            else:
                _kill_group(process.pid)
        assert process.returncode is not None
        return _result(folder, process.returncode, stderr, limits, diagnostics)


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
        from slidesvc.render_pdf import render_pdf

        deck = request.deck
        if isinstance(deck, Path):
            from slidesvc.parse import load_deck  # type: ignore[import-not-found, unused-ignore]

            deck = load_deck(deck)
        found: list[Diagnostic] = []
        pdf = render_pdf(
            deck,
            notes=request.notes,
            jobs=request.jobs,
            cache_dir=request.cache_dir,
            diagnostics=found,
        )
    except MemoryError:
        return _EXIT_MEMORY
    except DeckError as exc:
        data: dict[str, Any] = {"kind": "deck", "path": str(exc.path), "line": exc.line}
        error.write_text(json.dumps({**data, "message": exc.message}), "utf-8")
        return 1
    except SlidesvcError as exc:
        error.write_text(json.dumps({"kind": "render", "message": str(exc)}), "utf-8")
        return 1
    except Exception as exc:  # reported to the parent as one line, not a traceback
        message = f"PDF rendering failed: {type(exc).__name__}: {exc}"
        error.write_text(json.dumps({"kind": "render", "message": message}), "utf-8")
        return 1
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


def main(argv: list[str]) -> int:
    folder, memory_mb = Path(argv[0]), int(argv[1])
    _limit_memory(memory_mb)
    return _child(folder)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
