"""ldconfig_only: WeasyPrint's native libraries found without running gcc or ld."""

from __future__ import annotations

import ctypes.util
import json
import os
import subprocess
import sys
import textwrap

import pytest

from slidesvc.libfind import ldconfig_only

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux lookup")

SPAWNS = textwrap.dedent(
    """
    import json, os, sys
    spawned = []
    def hook(event, args):
        if event == "subprocess.Popen":
            spawned.append(os.path.basename(os.fsdecode(args[0])))
    sys.addaudithook(hook)
    exec(sys.argv[1])
    print(json.dumps(spawned))
    """
)


def spawned_by(code: str, **env: str) -> list[str]:
    """The programs a fresh interpreter starts while running ``code``."""
    out = subprocess.run(
        [sys.executable, "-c", SPAWNS, code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    ).stdout
    return list(json.loads(out.splitlines()[-1]))


def test_importing_the_pdf_renderer_runs_only_ldconfig() -> None:
    """WeasyPrint's many library names cost ldconfig lookups, never a gcc or ld run."""
    spawned = spawned_by("import slidesvc.render_pdf")
    assert spawned, "WeasyPrint no longer looks its libraries up: drop slidesvc.libfind"
    assert set(spawned) == {"ldconfig"}


def test_lookups_match_ctypes_and_are_restored() -> None:
    """Installed libraries resolve as ctypes resolves them; unknown names are None."""
    expected = ctypes.util.find_library("c")
    original = ctypes.util.find_library
    with ldconfig_only():
        assert ctypes.util.find_library is not original
        assert ctypes.util.find_library("c") == expected
        assert ctypes.util.find_library("pango-1.0") == "libpango-1.0.so.0"
        assert ctypes.util.find_library("no-such-library-slidesvc") is None
    assert ctypes.util.find_library is original


def test_a_miss_runs_ldconfig_only() -> None:
    code = (
        "import ctypes.util\nfrom slidesvc.libfind import ldconfig_only\n"
        "with ldconfig_only():\n    ctypes.util.find_library('no-such-library-slidesvc')"
    )
    assert spawned_by(code) == ["ldconfig"]


def test_ld_library_path_keeps_the_full_search(monkeypatch: pytest.MonkeyPatch) -> None:
    """Libraries outside ldconfig's cache are found by the ld search: keep it then."""
    monkeypatch.setenv("LD_LIBRARY_PATH", "/opt/pango/lib")
    original = ctypes.util.find_library
    with ldconfig_only():
        assert ctypes.util.find_library is original
