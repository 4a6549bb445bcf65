"""The command line: commands, exit codes, error format, no partial outputs."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest
from cli_helpers import run_cli

from slidesvc.cli import main


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.extend(v for k, v in attrs if k == "href" and v)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


GOOD = "---\ntitle: Good talk\nauthor: Ada\n---\n\n# Hello\n\n---\n\n## Two\n"
BROKEN = "---\ntitle: Broken\npaginate: maybe\n---\n\n# Hi\n"


def test_help_lists_every_command() -> None:
    """`slidesvc --help` shows the whole command contract."""
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("new", "build", "pdf", "check", "serve", "publish", "image", "k8s"):
        assert command in result.stdout


def test_usage_error_exits_2() -> None:
    """Bad command-line usage exits with code 2."""
    with pytest.raises(SystemExit) as exc:
        main(["build"])
    assert exc.value.code == 2
    assert run_cli("frobnicate").returncode == 2


def test_new_writes_a_deck_that_builds(tmp_path: Path) -> None:
    """`slidesvc new NAME` writes decks/NAME.md; it builds; it is never overwritten."""
    result = run_cli("new", "mytalk", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    deck = tmp_path / "decks" / "mytalk.md"
    assert deck.read_text(encoding="utf-8").startswith("---\n")
    out = tmp_path / "mytalk.html"
    built = run_cli("build", deck, "-o", out)
    assert built.returncode == 0, built.stderr
    assert built.stderr == "", "the template deck builds without warnings"
    assert out.read_text(encoding="utf-8").startswith("<!doctype html>")
    again = run_cli("new", "mytalk", cwd=tmp_path)
    assert again.returncode == 1
    assert "already exists" in again.stderr


def test_deck_error_is_file_line_message_and_writes_nothing(tmp_path: Path) -> None:
    """A deck error prints `file:line: message`, exits 1, no traceback, no output file."""
    deck = tmp_path / "broken.md"
    deck.write_text(BROKEN, encoding="utf-8")
    out = tmp_path / "broken.html"
    result = run_cli("build", deck, "-o", out)
    assert result.returncode == 1
    assert f"{deck}:3:" in result.stderr
    assert "paginate" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [deck], "no temporary file left behind"


def test_check_exit_codes(tmp_path: Path) -> None:
    """`slidesvc check` exits 1 on errors and 0 on a clean deck."""
    good = tmp_path / "good.md"
    good.write_text(GOOD, encoding="utf-8")
    bad = tmp_path / "bad.md"
    bad.write_text(BROKEN, encoding="utf-8")
    ok = run_cli("check", good)
    assert ok.returncode == 0, ok.stderr
    failed = run_cli("check", bad, "--no-layout")
    assert failed.returncode == 1
    assert f"{bad}:3:" in failed.stderr


def test_check_reports_warnings_but_exits_0(tmp_path: Path) -> None:
    """Warnings (here an unknown front-matter key) are listed with their line; exit 0."""
    deck = tmp_path / "warn.md"
    deck.write_text("---\ntitle: T\ncolour: red\n---\n\n# Hi\n", encoding="utf-8")
    result = run_cli("check", deck, "--no-layout")
    assert result.returncode == 0
    assert f"{deck}:3:" in result.stderr
    assert "colour" in result.stderr


def test_huge_deck_is_refused(tmp_path: Path) -> None:
    """A 20 MB deck is refused with a clear message, not parsed."""
    deck = tmp_path / "huge.md"
    deck.write_bytes(b"# Big\n\n" + b"word " * (4 * 1024 * 1024))
    result = run_cli("build", deck, "-o", tmp_path / "huge.html")
    assert result.returncode == 1
    assert "huge.md" in result.stderr and "SLIDESVC_MAX_DECK_BYTES" in result.stderr
    assert not (tmp_path / "huge.html").exists()


def test_build_site_keeps_going_past_a_broken_deck(tmp_path: Path) -> None:
    """One broken deck is reported (exit 1) while the others are built and indexed."""
    src = tmp_path / "decks"
    src.mkdir()
    (src / "good.md").write_text(GOOD, encoding="utf-8")
    (src / "Other Talk.md").write_text("# Other\n", encoding="utf-8")
    (src / "broken.md").write_text(BROKEN, encoding="utf-8")
    site = tmp_path / "site"
    result = run_cli("build", src, "-o", site, "--no-pdf")
    assert result.returncode == 1
    assert "broken.md:3:" in result.stderr
    assert (site / "good" / "index.html").is_file()
    assert (site / "good" / "deck.json").is_file()
    assert (site / "other-talk" / "index.html").is_file()
    assert not (site / "broken").exists()
    assert not (site / "good" / "presenter.html").exists(), "no notes on a public site"
    index = _Links()
    index.feed((site / "index.html").read_text(encoding="utf-8"))
    assert "good/" in index.hrefs and "other-talk/" in index.hrefs
    assert "Good talk" in "".join(index.text)
    assert "Ada" in "".join(index.text)


def test_python_dash_m_works() -> None:
    """`python -m slidesvc` works like the `slidesvc` script."""
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("slidesvc ")
