"""Quicker loading of the native libraries behind WeasyPrint, on Linux.

WeasyPrint opens GObject, Pango, HarfBuzz and fontconfig through cffi, trying
several names for each library (one per platform it supports). cffi hands
every name it cannot open directly to `ctypes.util.find_library`, which on
Linux first looks the name up in ldconfig's cache and, when that fails, runs
gcc and then ld to search for it. Importing WeasyPrint this way starts about
fifty processes, which cost about 0.13 s (0.1-0.3 s, with the machine's load)
on every start of a process that renders PDFs. While WeasyPrint loads,
`ldconfig_only` keeps the first step only: the one that finds libraries
installed by the system's package manager. With ``LD_LIBRARY_PATH`` set
(libraries outside ldconfig's cache, which only the ld search finds) or off
Linux, nothing changes.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def ldconfig_only() -> Iterator[None]:
    """Within the block, `ctypes.util.find_library` asks ldconfig's cache only."""
    lookup = getattr(ctypes.util, "_findSoname_ldconfig", None)
    if lookup is None or not sys.platform.startswith("linux") or os.environ.get("LD_LIBRARY_PATH"):
        yield
        return
    original = ctypes.util.find_library
    ctypes.util.find_library = lookup
    try:
        yield
    finally:
        ctypes.util.find_library = original
