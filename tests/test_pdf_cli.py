"""`slidesvc pdf`: one-off export, warnings, errors, and `--watch`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cli_helpers import run_cli
from pdf_helpers import page_texts, warm_workers
from process_helpers import alive

DECK = """\
---
title: Exported talk
author: Ada
---

# First slide

Hello

???
Spoken only

---

# Second slide

<div style="background:url(http://169.254.169.254/x.png)">metadata</div>
"""


def cache(tmp_path: Path) -> dict[str, str]:
    return {"SLIDESVC_CACHE_DIR": str(tmp_path / "cache")}


def test_pdf_command_writes_the_pdf_and_reports_refusals(tmp_path: Path) -> None:
    """One page per slide, notes only with --notes, refused URLs named by file:line."""
    deck = tmp_path / "talk.md"
    deck.write_text(DECK, encoding="utf-8")
    result = run_cli("pdf", deck, cwd=tmp_path, env=cache(tmp_path))
    assert result.returncode == 0, result.stderr
    texts = page_texts((tmp_path / "talk.pdf").read_bytes())
    assert len(texts) == 2
    assert "First slide" in texts[0] and "Spoken only" not in texts[0]
    refused = f"{deck}:15: warning: slide 2: refused to load http://169.254.169.254/x.png"
    assert refused in result.stderr

    handout = run_cli(
        "pdf", deck, "--notes", "-o", tmp_path / "handout.pdf", cwd=tmp_path, env=cache(tmp_path)
    )
    assert handout.returncode == 0, handout.stderr
    assert any("Spoken only" in t for t in page_texts((tmp_path / "handout.pdf").read_bytes()))


def test_pdf_command_on_a_broken_deck_writes_nothing(tmp_path: Path) -> None:
    """file:line, exit 1, no output file, no traceback."""
    deck = tmp_path / "talk.md"
    deck.write_text("---\ntitle: x\naspect: wide\n---\n# Hi\n", encoding="utf-8")
    result = run_cli("pdf", deck, cwd=tmp_path, env=cache(tmp_path))
    assert result.returncode == 1
    assert result.stderr.startswith(f"{deck}:3: ")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "talk.pdf").exists()


def wait_for(condition: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_pdf_watch_exports_again_on_every_change(tmp_path: Path) -> None:
    """--watch: an edit gives a new PDF, a broken edit keeps the last good one and
    says file:line, Ctrl+C stops it and its worker."""
    deck = tmp_path / "talk.md"
    out = tmp_path / "talk.pdf"
    deck.write_text(DECK, encoding="utf-8")
    log = tmp_path / "watch.log"  # beside the deck, like `2> talk.log` would be
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "slidesvc", "pdf", str(deck), "--watch"],
            stderr=stderr,
            env={**os.environ, "SLIDESVC_CACHE_DIR": str(tmp_path.parent / "pdf-cache")},
        )
    try:
        wait_for(lambda: log.read_text().count("wrote") == 1)
        assert "Second slide" in page_texts(out.read_bytes())[1]
        time.sleep(1.5)
        assert log.read_text().count("wrote") == 1, "writing the PDF is not a change"

        deck.write_text(DECK.replace("# Second slide", "# Second slide, edited"), "utf-8")
        wait_for(lambda: log.read_text().count("wrote") == 2)
        assert "Second slide, edited" in page_texts(out.read_bytes())[1]
        good = out.read_bytes()

        deck.write_text(DECK.replace("author: Ada", "aspect: wide"), "utf-8")
        wait_for(lambda: "the last good PDF stays" in log.read_text())
        assert f"{deck}:3: aspect" in log.read_text()
        assert out.read_bytes() == good
        (warm,) = warm_workers(process.pid)
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 130
    wait_for(lambda: not alive(warm), 10)  # its warm worker went with it


def test_check_lays_out_under_the_pdf_limits(tmp_path: Path) -> None:
    """`check` lays slides out in a worker process: past the time limit it stops
    with a clear error instead of hanging; within it, it reports overflows."""

    def deck(name: str, slides: int) -> Path:
        path = tmp_path / name
        path.write_text(
            "\n\n---\n\n".join(f"# Heavy {i}\n\n" + "word " * 400 for i in range(slides)),
            "utf-8",
        )
        return path

    # Far more than any machine lays out in a second: the limit, not the speed
    # of the machine, decides how this run ends.
    endless = deck("endless.md", 2000)
    started = time.monotonic()
    result = run_cli("check", endless, env={**cache(tmp_path), "SLIDESVC_PDF_TIMEOUT": "1"})
    assert result.returncode == 1
    assert result.stderr.startswith(f"{endless}: PDF rendering took longer than 1 s")
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 15

    heavy = deck("heavy.md", 60)
    fits = run_cli("check", heavy, cwd=tmp_path, env=cache(tmp_path))
    assert fits.returncode == 0, fits.stderr
    assert f"{heavy}:1: warning: slide 1 overflows by" in fits.stderr
