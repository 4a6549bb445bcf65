"""The page cache: entries, content addressing, bounded size, misses after pruning."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from slidesvc.pdf_cache import PageCache, PageEntry, default_cache_dir


def _entry(batch: str) -> PageEntry:
    return PageEntry(batch=batch, page=1, notes_pages=(2,), overflow=(12.5, 0.0), fonts={})


def test_entries_round_trip_while_their_batch_exists(tmp_path: Path) -> None:
    """An entry comes back as written, and only while its batch PDF is there."""
    cache = PageCache(tmp_path)
    name = cache.put_batch(b"%PDF-1.7 fake batch")
    assert name == cache.put_batch(b"%PDF-1.7 fake batch")  # content-addressed
    cache.put_entry("k1", _entry(name))
    assert cache.get_entry("k1") == _entry(name)
    cache.batch_path(name).unlink()
    assert cache.get_entry("k1") is None
    assert cache.get_entry("never-written") is None


def test_a_missing_font_makes_the_entry_a_miss(tmp_path: Path) -> None:
    """Assembly needs the saved original fonts, so an entry without them is useless."""
    cache = PageCache(tmp_path)
    font = cache.put_font(b"font bytes", 0)
    batch = cache.put_batch(b"batch")
    cache.put_entry("k", PageEntry(batch=batch, page=0, fonts={"ABCDEF": font}))
    assert cache.get_entry("k") is not None
    cache.font_path(font).unlink()
    assert cache.get_entry("k") is None


def test_prune_drops_least_recently_used_batches(tmp_path: Path) -> None:
    """Over the limit, the oldest batches go; recently used ones stay."""
    cache = PageCache(tmp_path)
    names = [cache.put_batch(bytes([n]) * 1000) for n in range(5)]
    for age, name in enumerate(reversed(names)):
        stamp = 1_700_000_000 - age * 100
        os.utime(cache.batch_path(name), (stamp, stamp))
    cache.put_entry("recent", _entry(names[0]))
    assert cache.get_entry("recent") is not None  # a hit marks names[0] as used now
    cache.prune(limit=2500)
    left = sorted(p.name for p in (tmp_path / "batches").iterdir())
    assert left == sorted([names[0], names[4]])


def test_cache_dir_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """SLIDESVC_CACHE_DIR wins; else XDG_CACHE_HOME/slidesvc/pdf."""
    monkeypatch.setenv("SLIDESVC_CACHE_DIR", str(tmp_path / "explicit"))
    assert default_cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("SLIDESVC_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "slidesvc" / "pdf"
