"""PDF rendering in a child process: results, time limit, memory limit, configuration."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from pdf_helpers import make_deck, page_texts, render_isolated, warm_workers

from slidesvc.errors import DeckError, Diagnostic, RenderError
from slidesvc.pdfworker import (
    DEFAULT_MEMORY_MB,
    DEFAULT_TIMEOUT,
    PdfLimits,
    WarmWorker,
    render_pdf_isolated_async,
)

SLIDES = [("<h1>One</h1><p>first</p>", "<p>note one</p>"), "<h1>Two</h1><p>second</p>"]
# Far more text-heavy slides than any machine renders within the tiny time limits below.
HEAVY = ["<h1>Heavy</h1>" + "<p>" + "word " * 400 + "</p>" for _ in range(600)]


def test_isolated_render_returns_the_pdf_and_warnings(tmp_path: Path) -> None:
    """The child renders the deck; its warnings come back to the caller."""
    deck = make_deck(tmp_path / "d", [*SLIDES, '<img src="file:///etc/passwd">'])
    found: list[Diagnostic] = []
    pdf = render_isolated(deck, notes=True, cache_dir=tmp_path / "c", diagnostics=found)
    texts = page_texts(pdf)
    assert len(texts) == 4
    assert "note one" in texts[1]
    assert [d.line for d in found] == [deck.slides[2].line]


def test_time_limit_kills_the_render(tmp_path: Path) -> None:
    """Past the wall-clock limit the child and its workers are killed: a clear error."""
    deck = make_deck(tmp_path / "d", HEAVY)
    cache = tmp_path / "c"
    started = time.monotonic()
    with pytest.raises(RenderError, match=r"longer than 0\.5 s .*SLIDESVC_PDF_TIMEOUT"):
        render_isolated(deck, timeout=0.5, cache_dir=cache, jobs=2)
    assert time.monotonic() - started < 5
    # Nothing keeps rendering in the background: the cache stops changing.
    before = sorted(p.name for p in cache.rglob("*")) if cache.exists() else []
    time.sleep(3)
    after = sorted(p.name for p in cache.rglob("*")) if cache.exists() else []
    assert after == before
    assert len([p for p in after if p.endswith(".json")]) < len(HEAVY)


def test_memory_limit_fails_cleanly(tmp_path: Path) -> None:
    """A render that needs more memory than allowed fails with a message naming the limit."""
    deck = make_deck(tmp_path / "d", SLIDES)
    with pytest.raises(RenderError, match=r"memory .*limit 60 MiB.*SLIDESVC_PDF_MEMORY_MB"):
        render_isolated(deck, memory_mb=60, cache_dir=tmp_path / "c")


def test_deck_errors_come_back_as_deck_errors(tmp_path: Path) -> None:
    """A deck path the child cannot load: the parser's file:line error, no traceback."""
    bad = tmp_path / "bad.md"
    bad.write_text("---\ntitle: x\naspect: wide\n---\n# Hi\n", encoding="utf-8")
    with pytest.raises(DeckError) as info:
        render_isolated(bad, cache_dir=tmp_path / "c")
    assert (info.value.path, info.value.line) == (bad, 3)
    assert str(info.value).startswith(f"{bad}:3: aspect")


async def test_async_render_and_the_loop_survives_a_timeout(tmp_path: Path) -> None:
    """The server's variant: a timed-out render fails alone; the next one works."""
    heavy = make_deck(tmp_path / "heavy", HEAVY)
    light = make_deck(tmp_path / "light", SLIDES)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.05)
            ticks += 1

    task = asyncio.create_task(ticker())
    with pytest.raises(RenderError, match="longer than"):
        await render_pdf_isolated_async(heavy, timeout=0.5, cache_dir=tmp_path / "c")
    pdf = await render_pdf_isolated_async(light, cache_dir=tmp_path / "c")
    task.cancel()
    assert len(page_texts(pdf)) == 2
    assert ticks >= 5  # the event loop kept running while the children worked


def test_limits_come_from_the_environment() -> None:
    """Defaults, environment values, and errors that name the bad key."""
    assert PdfLimits.from_env({}) == PdfLimits(DEFAULT_TIMEOUT, DEFAULT_MEMORY_MB)
    assert PdfLimits.from_env(
        {"SLIDESVC_PDF_TIMEOUT": "30", "SLIDESVC_PDF_MEMORY_MB": "512"}
    ) == PdfLimits(30.0, 512)
    with pytest.raises(RenderError, match="SLIDESVC_PDF_TIMEOUT must be a number, not 'soon'"):
        PdfLimits.from_env({"SLIDESVC_PDF_TIMEOUT": "soon"})
    with pytest.raises(RenderError, match="SLIDESVC_PDF_MEMORY_MB must be a whole number"):
        PdfLimits.from_env({"SLIDESVC_PDF_MEMORY_MB": "-5"})


def test_environment_limits_apply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SLIDESVC_PDF_TIMEOUT is used when no argument is given."""
    monkeypatch.setenv("SLIDESVC_PDF_TIMEOUT", "0.5")
    deck = make_deck(tmp_path / "d", HEAVY)
    with pytest.raises(RenderError, match=r"longer than 0\.5 s"):
        render_isolated(deck, cache_dir=tmp_path / "c")
    assert os.environ["SLIDESVC_PDF_TIMEOUT"] == "0.5"


def files_of(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


async def test_warm_worker_renders_each_deck_in_a_fresh_fork(tmp_path: Path) -> None:
    """One warm process serves many renders; a killed render leaves it working;
    closing it stops the render in flight and the process itself."""
    deck = make_deck(tmp_path / "d", SLIDES)
    edited = make_deck(tmp_path / "e", [SLIDES[0], "<h1>Two, edited</h1>"])
    heavy = make_deck(tmp_path / "heavy", HEAVY)
    cache = tmp_path / "c"
    async with WarmWorker() as worker:
        first, second = await asyncio.gather(  # concurrent renders start one process
            render_pdf_isolated_async(deck, worker=worker, cache_dir=cache),
            render_pdf_isolated_async(edited, worker=worker, cache_dir=cache),
        )
        warm = warm_workers()
        assert len(warm) == 1
        assert "edited" not in page_texts(first)[1]
        assert "Two, edited" in page_texts(second)[1]
        with pytest.raises(RenderError, match="longer than"):
            await render_pdf_isolated_async(heavy, worker=worker, timeout=0.5, cache_dir=cache)
        again = await render_pdf_isolated_async(deck, worker=worker, cache_dir=cache)
        assert again == first
        assert worker._preloads is None, "only a worker made to preload does"
        assert warm_workers() == warm, "the same warm process all along"

        busy = tmp_path / "busy"
        render = asyncio.ensure_future(
            render_pdf_isolated_async(heavy, worker=worker, cache_dir=busy, jobs=2)
        )
        while not (busy / "slides").exists():  # it is rendering
            await asyncio.sleep(0.05)
    with pytest.raises(RenderError, match="stopped"):
        await render
    assert warm_workers() == set()
    before = files_of(busy)
    await asyncio.sleep(2)
    assert files_of(busy) == before, "nothing keeps rendering after close"
    assert len([p for p in before if p.endswith(".json")]) < len(HEAVY)


async def test_warm_worker_restarts_after_it_dies(tmp_path: Path) -> None:
    """If the warm process is killed, the next render starts a new one."""
    deck = make_deck(tmp_path / "d", SLIDES)
    async with WarmWorker() as worker:
        await render_pdf_isolated_async(deck, worker=worker, cache_dir=tmp_path / "c")
        (old,) = warm_workers()
        os.kill(old, 9)
        pdf = await render_pdf_isolated_async(deck, worker=worker, cache_dir=tmp_path / "c")
        assert len(page_texts(pdf)) == 2
        assert len(warm_workers() - {old}) == 1


async def preloaded(worker: WarmWorker) -> None:
    """Wait until the warm process has done the preloads asked of it."""
    assert worker._preloads is not None, "a successful render asks for a preload"
    folder = Path(worker._preloads.name)
    while any(folder.iterdir()):
        await asyncio.sleep(0.02)


def corrupt_batches(cache: Path) -> None:
    for batch in (cache / "batches").iterdir():
        batch.write_bytes(b"%PDF-1.7\nnot a PDF any more\n")


async def test_forks_assemble_from_the_pages_the_warm_process_preloaded(tmp_path: Path) -> None:
    """After a render, the warm process parses the deck's cached pages, and the
    next render's fork assembles from that copy: with every cached file broken
    after the preload, re-exporting an edit still gives the PDF a render from
    scratch gives, where a worker without the preload fails."""
    from slidesvc.render_pdf import render_pdf

    slides = [f"<h1>Slide {n}</h1><p>text {n}</p>" for n in range(6)]
    cache = tmp_path / "c"
    async with WarmWorker(preload=True) as worker:
        deck = make_deck(tmp_path / "d", slides)
        await render_pdf_isolated_async(deck, worker=worker, cache_dir=cache, jobs=2)
        await preloaded(worker)
        corrupt_batches(cache)
        slides[2] = "<h1>Slide 2, edited</h1>"
        edited = make_deck(tmp_path / "d", slides)
        pdf = await render_pdf_isolated_async(edited, worker=worker, cache_dir=cache, jobs=2)
    assert pdf == render_pdf(edited, cache_dir=tmp_path / "fresh", jobs=2)
    assert "Slide 2, edited" in page_texts(pdf)[2]

    slides[3] = "<h1>Slide 3, edited</h1>"
    async with WarmWorker(preload=True) as cold:
        with pytest.raises(RenderError):
            edited = make_deck(tmp_path / "d", slides)
            await render_pdf_isolated_async(edited, worker=cold, cache_dir=cache, jobs=2)


def test_the_preloading_process_itself_never_uses_the_preload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Assembling changes the readers it uses: only forks may use the preloaded
    ones (each its own copy); the process that preloaded reads the files. And a
    stylesheet that loads fonts or imports is not preparsed."""
    import pypdf

    from slidesvc import pdf_assemble, render_pdf

    monkeypatch.setattr(pdf_assemble, "_PRELOADED", {})
    monkeypatch.setattr(render_pdf, "_STATE", None)
    deck = make_deck(tmp_path / "d", ["<h1>One</h1>", "<h1>Two</h1>"])
    cache = tmp_path / "c"
    render_pdf.render_pdf(deck, cache_dir=cache, jobs=1)
    render_pdf.preload(deck, cache_dir=cache)
    assert set(pdf_assemble._PRELOADED) == {p.name for p in (cache / "batches").iterdir()}
    assert len(render_pdf._state().css) == 1
    opened: list[str] = []

    def reader(source: object) -> object:
        opened.append(str(source))
        return pypdf.PdfReader(source)

    monkeypatch.setattr(pdf_assemble, "PdfReader", reader)
    render_pdf.render_pdf(deck, cache_dir=cache, jobs=1)
    assert sorted(opened) == sorted(str(p) for p in (cache / "batches").iterdir())
    assert len(pdf_assemble._PRELOADED) == len(opened), "still there, unused"

    fonts = make_deck(tmp_path / "f", ["<h1>One</h1>"], theme_css="@font-face{font-family:x}")
    render_pdf._state().css.clear()
    render_pdf.preload(fonts, cache_dir=tmp_path / "c2")
    assert render_pdf._state().css == {}


async def test_a_failed_preload_leaves_the_warm_process_working(tmp_path: Path) -> None:
    """A preload that cannot be done (its file is gone) is skipped."""
    deck = make_deck(tmp_path / "d", SLIDES)
    async with WarmWorker(preload=True) as worker:
        process = await worker.start()
        assert process.stdin is not None
        process.stdin.write(f"preload {tmp_path / 'missing.pickle'}\n".encode())
        pdf = await render_pdf_isolated_async(deck, worker=worker, cache_dir=tmp_path / "c")
        assert len(page_texts(pdf)) == 2
        assert len(warm_workers()) == 1
