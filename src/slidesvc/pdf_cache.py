"""The on-disk cache of rendered PDF pages (standard library only).

A render writes each batch of slides as one PDF (``batches/<sha>.pdf``), one
small JSON entry per slide (``slides/<key>.json``: which batch, which page,
its notes pages, overflow, refused URLs, fonts) and every font it embedded,
once, as the original file (``fonts/<sha>-<index>.font``) so the assembler
can subset each font once for the whole deck. Everything is content-addressed
and written atomically, so concurrent renders can share the folder. The
cache is bounded (`SLIDESVC_CACHE_MB`, default 512): the least recently used
batches go first; an entry whose batch is gone is simply a miss.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_LIMIT_MB = 512


def default_cache_dir() -> Path:
    """``$SLIDESVC_CACHE_DIR``, else ``$XDG_CACHE_HOME/slidesvc/pdf`` (``~/.cache``)."""
    configured = os.environ.get("SLIDESVC_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "slidesvc" / "pdf"


def _limit_bytes() -> int:
    raw = os.environ.get("SLIDESVC_CACHE_MB", "")
    mb = int(raw) if raw.isdigit() else DEFAULT_LIMIT_MB
    return mb * 1024 * 1024


@dataclass(frozen=True)
class PageEntry:
    """Where one rendered slide lives and what its render found."""

    batch: str
    """File name of the batch PDF under ``batches/``."""
    page: int
    """0-based page of the slide in that PDF."""
    notes_pages: tuple[int, ...] = ()
    overflow: tuple[float, float] = (0.0, 0.0)
    """(vertical, horizontal) px the slide's content leaves its box."""
    refused: tuple[tuple[str, str], ...] = ()
    """(URL, reason) the fetcher refused for this slide."""
    theme_refused: tuple[tuple[str, str], ...] = ()
    """Refusals that no slide's HTML mentions (theme or deck style)."""
    fonts: dict[str, str] | None = None
    """PDF font resource name -> saved original font (``fonts/`` file name)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "batch": self.batch,
            "page": self.page,
            "notes_pages": list(self.notes_pages),
            "overflow": list(self.overflow),
            "refused": [list(r) for r in self.refused],
            "theme_refused": [list(r) for r in self.theme_refused],
            "fonts": self.fonts or {},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PageEntry:
        dy, dx = data["overflow"]
        return cls(
            batch=str(data["batch"]),
            page=int(data["page"]),
            notes_pages=tuple(int(n) for n in data["notes_pages"]),
            overflow=(float(dy), float(dx)),
            refused=tuple((str(u), str(r)) for u, r in data["refused"]),
            theme_refused=tuple((str(u), str(r)) for u, r in data["theme_refused"]),
            fonts={str(k): str(v) for k, v in data["fonts"].items()},
        )


class PageCache:
    """A cache folder; every method is safe to call from several processes."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def batch_path(self, name: str) -> Path:
        return self.root / "batches" / name

    def font_path(self, name: str) -> Path:
        return self.root / "fonts" / name

    def get_entry(self, key: str) -> PageEntry | None:
        """The entry for a slide key, if it and its batch PDF are still there."""
        try:
            data = json.loads((self.root / "slides" / f"{key}.json").read_text("utf-8"))
            entry = PageEntry.from_json(data)
        except (OSError, ValueError, KeyError, TypeError):
            return None
        batch = self.batch_path(entry.batch)
        fonts = [self.font_path(name) for name in (entry.fonts or {}).values()]
        if not batch.is_file() or not all(f.is_file() for f in fonts):
            return None
        with contextlib.suppress(OSError):
            os.utime(batch)  # least recently used goes first when pruning
        return entry

    def put_entry(self, key: str, entry: PageEntry) -> None:
        self._write(self.root / "slides" / f"{key}.json", json.dumps(entry.to_json()).encode())

    def put_batch(self, pdf: bytes) -> str:
        name = hashlib.sha256(pdf).hexdigest()[:32] + ".pdf"
        self._write(self.batch_path(name), pdf)
        return name

    def put_font(self, data: bytes, index: int) -> str:
        name = f"{hashlib.sha256(data).hexdigest()[:32]}-{index}.font"
        path = self.font_path(name)
        if not path.is_file():
            self._write(path, data)
        return name

    def prune(self, limit: int | None = None) -> None:
        """Drop the least recently used batches until the cache fits its limit."""
        limit = _limit_bytes() if limit is None else limit
        folder = self.root / "batches"
        try:
            files = [(p.stat(), p) for p in folder.iterdir() if p.suffix == ".pdf"]
        except OSError:
            return
        total = sum(st.st_size for st, _ in files)
        for st, path in sorted(files, key=lambda item: item[0].st_mtime):
            if total <= limit:
                break
            with contextlib.suppress(OSError):
                path.unlink()
                total -= st.st_size

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
