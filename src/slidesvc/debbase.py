"""The default base layer: a Python runtime read straight out of Debian packages.

Like apko or distroless, but without installing anything: the pinned
bookworm packages (`PACKAGES`) are fetched once with ``apt-get download``
into a cache (``SLIDESVC_CACHE_DIR`` or ``~/.cache/slidesvc``), each ``.deb``
is opened in Python (an ``ar`` archive holding ``data.tar.xz``) and only the
files a server needs are kept: the interpreter, the standard library minus
tests, GUI, packaging and documentation, and the shared libraries that the
interpreter and the kept extension modules actually link (found by reading
their ELF ``DT_NEEDED`` entries). An extension module whose libraries are not
in the set (``_ssl``, ``_sqlite3``, ``readline``...) is dropped rather than
left broken. The layer adds ``/etc/passwd`` with a non-root user and no
shell, and ``/usr/lib/slidesvc/sbom.json`` naming every package and version.
"""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import os
import re
import shutil
import struct
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from slidesvc import oci
from slidesvc.errors import ImageBuildError

PACKAGES = (
    "python3.11-minimal",
    "libpython3.11-minimal",
    "libpython3.11-stdlib",
    "libc6",
    "zlib1g",
    "libexpat1",
    "libffi8",
)
"""Debian bookworm packages the base is made of (versions are recorded in the SBOM)."""

PYTHON = "usr/bin/python3.11"
STDLIB = "usr/lib/python3.11/"
USER, UID = "slidesvc", 65532
SBOM_PATH = "usr/lib/slidesvc/sbom.json"
PASSWD = (
    f"root:x:0:0:root:/root:/sbin/nologin\n{USER}:x:{UID}:{UID}:{USER}:/home/{USER}:/sbin/nologin\n"
)
"""No login shell for anyone: the image has no shell at all."""
GROUP = f"root:x:0:\n{USER}:x:{UID}:\n"

# Standard library parts a web server never imports: tests, GUI, packaging,
# documentation and interactive tools. (aiohttp needs asyncio, email, http,
# json, urllib, logging, encodings, ...; those stay.)
_STDLIB_DROP = re.compile(
    r"""^usr/lib/python3\.11/(
        test|tests|idlelib|tkinter|turtledemo|ensurepip|lib2to3|pydoc_data|distutils|
        venv|unittest|sqlite3|dbm|curses|config-3\.11-[^/]+|site-packages|dist-packages|
        turtle\.py|pydoc\.py|doctest\.py|__phello__|_pydecimal\.py|lib-dynload/(_test|_?xx|_ctypes_test)
    )""",
    re.VERBOSE,
)
_LIB_DIRS = ("lib/x86_64-linux-gnu/", "usr/lib/x86_64-linux-gnu/", "lib64/")


@dataclass(frozen=True)
class Package:
    """One downloaded .deb and what the SBOM says about it."""

    name: str
    version: str
    arch: str
    path: Path

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def cache_dir() -> Path:
    """Where downloaded packages and wheels are kept between builds."""
    env = os.environ.get("SLIDESVC_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "slidesvc"


def fetch_packages(names: Sequence[str] = PACKAGES, cache: Path | None = None) -> list[Package]:
    """The .debs for `names` at apt's candidate versions, downloading only what is missing.

    Without apt (a non-Debian host), the newest .deb of each package already
    in the cache is used, so a cache copied from elsewhere still works.
    """
    folder = (cache or cache_dir()) / "debs"
    folder.mkdir(parents=True, exist_ok=True)
    if shutil.which("apt-cache") is None or shutil.which("apt-get") is None:
        return [_cached(folder, name) for name in names]
    versions = _candidates(names)
    wanted = {
        name: folder / f"{name}_{_quote(version)}_amd64.deb" for name, version in versions.items()
    }
    missing = [name for name, path in wanted.items() if not path.is_file()]
    if missing:
        args = [f"{name}={versions[name]}" for name in missing]
        # Download next to the cache and move complete files in, so that a
        # concurrent build never reads a half-written package.
        with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as tmp:
            proc = subprocess.run(
                ["apt-get", "download", "-q", *args],
                cwd=tmp,
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                raise ImageBuildError(
                    f"apt-get download {' '.join(args)} failed:\n{proc.stderr.strip()}"
                )
            for deb in Path(tmp).glob("*.deb"):
                deb.replace(folder / deb.name)
    packages = []
    for name, path in wanted.items():
        if not path.is_file():
            raise ImageBuildError(f"apt-get download did not produce {path.name}")
        packages.append(Package(name, versions[name], "amd64", path))
    return packages


def _candidates(names: Sequence[str]) -> dict[str, str]:
    proc = subprocess.run(
        ["apt-cache", "policy", *names],
        capture_output=True,
        text=True,
        check=False,
        env=_c_locale(),
    )
    versions: dict[str, str] = {}
    current = ""
    for line in proc.stdout.splitlines():
        if not line.startswith(" "):
            current = line.rstrip(":")
        elif line.strip().startswith("Candidate:"):
            version = line.split(":", 1)[1].strip()
            if version != "(none)":
                versions[current] = version
    missing = [name for name in names if name not in versions]
    if missing:
        raise ImageBuildError(
            f"apt does not know {', '.join(missing)}; the default base needs Debian 12 (bookworm) "
            "package lists (apt-get update), or pass --base IMAGE"
        )
    return versions


def _c_locale() -> dict[str, str]:
    return {**os.environ, "LC_ALL": "C"}


def _quote(version: str) -> str:
    # apt-get download names files with the epoch colon escaped.
    return version.replace(":", "%3a")


def _cached(folder: Path, name: str) -> Package:
    found = sorted(folder.glob(f"{name}_*_amd64.deb"))
    if not found:
        raise ImageBuildError(
            f"no {name} package in {folder} and no apt-get here; "
            "build on Debian/Ubuntu once, or pass --base IMAGE"
        )
    _, version, _ = found[-1].name.split("_")
    return Package(name, version.replace("%3a", ":"), "amd64", found[-1])


# --- reading .deb files ----------------------------------------------------------------------


def deb_members(path: Path) -> Iterator[tuple[tarfile.TarInfo, bytes]]:
    """Every file, link and directory in a .deb's data archive, with file contents."""
    data = path.read_bytes()
    if not data.startswith(b"!<arch>\n"):
        raise ImageBuildError(f"{path}: not a Debian package (no ar header)")
    offset = 8
    while offset + 60 <= len(data):
        header = data[offset : offset + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        body = data[offset + 60 : offset + 60 + size]
        offset += 60 + size + (size & 1)
        if name.startswith("data.tar"):
            yield from _tar_members(path, name, body)
            return
    raise ImageBuildError(f"{path}: no data.tar member")


def _tar_members(path: Path, name: str, body: bytes) -> Iterator[tuple[tarfile.TarInfo, bytes]]:
    if name.endswith(".zst"):
        body = _unzstd(path, body)
    elif name.endswith(".xz"):
        body = lzma.decompress(body)
    try:
        with tarfile.open(fileobj=io.BytesIO(body)) as tar:
            for member in tar:
                content = b""
                if member.isfile():
                    extracted = tar.extractfile(member)
                    content = extracted.read() if extracted else b""
                yield member, content
    except tarfile.TarError as exc:
        raise ImageBuildError(f"{path}: broken {name}: {exc}") from exc


def _unzstd(path: Path, body: bytes) -> bytes:
    # Python 3.11 has no zstd; Ubuntu's .debs use it, bookworm's use xz.
    if shutil.which("zstd") is None:
        raise ImageBuildError(f"{path}: data.tar.zst needs the zstd program")
    proc = subprocess.run(["zstd", "-dc"], input=body, capture_output=True, check=False)
    if proc.returncode != 0:
        raise ImageBuildError(f"{path}: zstd failed: {proc.stderr.decode(errors='replace')}")
    return proc.stdout


# --- choosing files --------------------------------------------------------------------------


def elf_needed(data: bytes) -> list[str]:
    """The DT_NEEDED library names of a 64-bit little-endian ELF file (empty if not ELF)."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return []
    try:
        return _dynamic_needed(data)
    except (struct.error, IndexError, ValueError, UnicodeDecodeError) as exc:
        raise ImageBuildError(f"a broken ELF file in the base packages: {exc}") from exc


def _dynamic_needed(data: bytes) -> list[str]:
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [
        struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)
    ]
    needed = []
    for _name, sh_type, _flags, _addr, offset, size, link, _info, _align, entsize in sections:
        if sh_type != 6:  # SHT_DYNAMIC
            continue
        strtab = sections[link][4]
        for pos in range(offset, offset + size, entsize or 16):
            tag, value = struct.unpack_from("<qQ", data, pos)
            if tag == 0:
                break
            if tag == 1:  # DT_NEEDED
                end = data.index(b"\0", strtab + value)
                needed.append(data[strtab + value : end].decode())
    return needed


def _keep(path: str) -> bool:
    """Whether a file of the packages belongs in the base (before the library closure)."""
    if path.startswith(
        ("usr/share/", "etc/", "usr/lib/binfmt.d/", "sbin/", "usr/sbin/", "usr/libexec/")
    ):
        return False
    if "/gconv/" in path or (path.startswith(("usr/bin/", "bin/")) and path != PYTHON):
        return False
    if path.startswith(STDLIB):
        return not _STDLIB_DROP.match(path) and "/__pycache__/" not in path
    return path.startswith(_LIB_DIRS) or path == PYTHON


def base_entries(packages: Sequence[Package]) -> list[oci.Entry]:
    """The files of the base layer, chosen from `packages`."""
    candidates: dict[str, oci.Entry] = {}
    for package in packages:
        for member, content in deb_members(package.path):
            path = PurePosixPath(member.name.removeprefix("./")).as_posix()
            if path == "." or member.isdir() or not _keep(path):
                continue
            if member.issym():
                candidates[path] = oci.symlink(path, member.linkname)
            elif member.isfile():
                candidates[path] = oci.file(path, content, member.mode & 0o755)
    entries = _library_closure(candidates)
    entries += [
        oci.symlink("usr/bin/python3", "python3.11"),
        oci.file("etc/passwd", PASSWD.encode()),
        oci.file("etc/group", GROUP.encode()),
        oci.directory(f"home/{USER}", 0o755, UID, UID),
        oci.directory("tmp", 0o1777),
        oci.file(SBOM_PATH, sbom(packages)),
    ]
    return entries


def _library_closure(candidates: dict[str, oci.Entry]) -> list[oci.Entry]:
    """Keep Python and its modules, plus exactly the shared libraries they link."""
    candidates = {p: e for p, e in candidates.items() if _resolve(p, candidates) is not None}
    libs: dict[str, str] = {}  # soname -> path
    for path in sorted(candidates):
        if path.startswith(_LIB_DIRS):
            libs.setdefault(PurePosixPath(path).name, path)
    kept: dict[str, oci.Entry] = {}
    todo = ["lib64/ld-linux-x86-64.so.2"]  # the interpreter named in every ELF program
    for path, entry in candidates.items():
        if path.startswith(_LIB_DIRS):
            continue
        if "/lib-dynload/" in path and not all(n in libs for n in elf_needed(entry.data)):
            continue  # e.g. _ssl without libssl3: the module is left out, not left broken
        todo.append(path)
    while todo:
        path = todo.pop()
        if path in kept:
            continue
        entry = kept[path] = candidates[path]
        if entry.kind == "symlink":
            todo.append(_link_target(path, entry))
            continue
        for name in elf_needed(entry.data):
            if name not in libs:
                raise ImageBuildError(f"{path} needs {name}, which no base package provides")
            todo.append(libs[name])
    return list(kept.values())


def _link_target(path: str, entry: oci.Entry) -> str:
    target = PurePosixPath(entry.target)
    if not target.is_absolute():
        target = PurePosixPath("/", path).parent / target
    return os.path.normpath(target).lstrip("/")


def _resolve(path: str, candidates: dict[str, oci.Entry]) -> oci.Entry | None:
    """The file a path leads to through symbolic links, or None when the chain dangles."""
    for _ in range(16):
        entry = candidates.get(path)
        if entry is None or entry.kind != "symlink":
            return entry
        path = _link_target(path, entry)
    return None


def sbom(packages: Sequence[Package]) -> bytes:
    """A small software bill of materials: every package, version and .deb hash."""
    items = [
        {"name": p.name, "version": p.version, "architecture": p.arch, "sha256": p.sha256}
        for p in sorted(packages, key=lambda p: p.name)
    ]
    return (
        json.dumps({"distribution": "debian bookworm", "packages": items}, indent=1).encode()
        + b"\n"
    )


def sbom_label(packages: Sequence[Package]) -> str:
    """The SBOM in one line, for an image label: ``name=version,...``."""
    return ",".join(f"{p.name}={p.version}" for p in sorted(packages, key=lambda p: p.name))
