"""`slidesvc image`: one deck as its own minimal, reproducible container image.

No daemon and no Dockerfile: the deck is compiled on the host and the image
is assembled from three layers, the way ko, jib and apko do it. The
**base** (a Python runtime from Debian packages, see `slidesvc.debbase`, or
an image the user passes with ``--base``) and the **dependencies** (aiohttp
and its requirements, unpacked from manylinux wheels pinned to the versions
installed here) are the same for every deck, so a cluster stores them once;
the **deck** layer holds the serving modules of slidesvc and the deck's
artifacts. All Python files come with unchecked-hash ``.pyc`` files, so the
container starts fast on a read-only root filesystem. With the same inputs
and ``SOURCE_DATE_EPOCH`` the image digest is the same on every build.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import marshal
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import slidesvc
from slidesvc import artifacts, debbase, oci
from slidesvc.errors import ImageBuildError

Format = Literal["oci", "oci-archive", "docker-archive"]

APP_DIR = "opt/slidesvc/app"
DEPS_DIR = "opt/slidesvc/deps"
DECK_DIR = "deck"
PORT = 8080
USER = f"{debbase.UID}:{debbase.UID}"
SOURCE_URL = "https://github.com/slidesvc/slidesvc"
LAYER_FORMAT = "2"
"""Bump when the way a cached base or dependency layer is made changes."""

WHEEL_TARGET = (
    "--only-binary=:all:",
    "--implementation=cp",
    "--python-version=3.11",
    "--abi=cp311",
    # glibc 2.36 is bookworm's; pip does not expand a custom platform to older
    # manylinux tags for py3-none wheels, so the common ones are listed.
    "--platform=manylinux_2_36_x86_64",
    "--platform=manylinux_2_28_x86_64",
    "--platform=manylinux_2_17_x86_64",
)
"""pip options that select wheels for the image's CPython 3.11 on glibc x86_64."""

SERVING_ROOTS = ("slidesvc/server/*.py", "slidesvc/healthcheck.py")
"""The serving code of the deck layer; the slidesvc modules it imports at module level come along
(imports inside functions, such as the watch mode's build, are not followed)."""


@dataclass(frozen=True)
class ImageResult:
    """What `build_image` made."""

    image: oci.Image
    output: Path
    ref: str
    pushed: oci.Pushed | None = None
    """Where the image went and which blobs were sent, when it was pushed."""

    @property
    def digest(self) -> str:
        return self.image.digest


# --- the dependency layer --------------------------------------------------------------------


def dependency_pins(root: str = "aiohttp") -> dict[str, str]:
    """aiohttp and everything it needs, at the versions installed here.

    The image's interpreter is CPython 3.11 on Linux, like the one running
    this (`with_bytecode` insists on it), so a requirement whose environment
    marker holds for the image is installed here; extras are never wanted.
    That makes the installed set the answer without evaluating markers.
    """
    pins: dict[str, str] = {}
    todo = [root]
    while todo:
        name = todo.pop()
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError as exc:
            if name == root:
                raise ImageBuildError(f"{name} is not installed here; pip install {name}") from exc
            continue  # its marker excludes it on this Python (e.g. async-timeout before 3.11)
        pins[_normalise(dist.metadata["Name"])] = dist.version
        for spec in dist.requires or []:
            requirement, _, marker = spec.partition(";")
            match = _REQUIREMENT_NAME.match(requirement.strip())
            if match and "extra" not in marker and _normalise(match.group()) not in pins:
                todo.append(match.group())
    return dict(sorted(pins.items()))


_REQUIREMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _normalise(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")


def fetch_wheels(pins: dict[str, str], cache: Path) -> list[Path]:
    """Wheels for `pins` for CPython 3.11 on manylinux x86_64; downloads only what is missing."""
    folder = cache / "wheels"
    folder.mkdir(parents=True, exist_ok=True)

    def cached(name: str, version: str) -> Path | None:
        found = sorted(folder.glob(f"{name}-{version}-*.whl"))
        return found[0] if found else None

    missing = [
        f"{name}=={version}" for name, version in pins.items() if cached(name, version) is None
    ]
    if missing:
        with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as tmp:
            command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
            command += [*WHEEL_TARGET, "-d", tmp, *missing]
            proc = subprocess.run(command, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise ImageBuildError(
                    f"pip download {' '.join(missing)} failed:\n{proc.stderr.strip()}"
                )
            for downloaded in Path(tmp).glob("*.whl"):
                downloaded.replace(folder / downloaded.name)  # whole files only: concurrency
    wheels = []
    for name, version in pins.items():
        wheel = cached(name, version)
        if wheel is None:
            raise ImageBuildError(f"no wheel for {name}=={version} in {folder}")
        wheels.append(wheel)
    return wheels


def wheel_entries(wheels: Iterable[Path], prefix: str = DEPS_DIR) -> list[oci.Entry]:
    """The wheels' files, installed (unpacked) under `prefix` as pip would, without scripts."""
    entries = []
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                path = PurePosixPath(info.filename)
                if path.parts[0].endswith(".data"):
                    if len(path.parts) < 3 or path.parts[1] not in ("purelib", "platlib"):
                        continue  # scripts, headers, data: nothing a server imports
                    path = PurePosixPath(*path.parts[2:])
                if ".." in path.parts or path.is_absolute():
                    raise ImageBuildError(f"{wheel.name}: unsafe path {info.filename}")
                executable = (info.external_attr >> 16) & 0o111
                entries.append(
                    oci.file(f"{prefix}/{path}", zf.read(info), 0o755 if executable else 0o644)
                )
    return entries


# --- the deck layer --------------------------------------------------------------------------


def serving_modules(package_dir: Path | None = None) -> list[Path]:
    """The slidesvc source files the server needs: entry points plus their module-level imports."""
    package_dir = package_dir or Path(slidesvc.__file__).parent
    root = package_dir.parent
    found: set[Path] = set()
    todo = [path for pattern in SERVING_ROOTS for path in sorted(root.glob(pattern))]
    if not any(path.name == "__main__.py" for path in todo):
        raise ImageBuildError(f"{package_dir}: slidesvc.server is missing from this installation")
    while todo:
        path = todo.pop()
        if path in found:
            continue
        found.add(path)
        parts = path.relative_to(root).with_suffix("").parts
        for i in range(1, len(parts)):  # parent packages
            todo.append(root.joinpath(*parts[:i], "__init__.py"))
        tree = ast.parse(path.read_bytes(), str(path))
        package = parts[:-1]
        for node in tree.body:
            for name in _imported(node, package):
                if name.split(".")[0] == "slidesvc":
                    module = _module_file(root, name)
                    if module is not None:
                        todo.append(module)
    return sorted(found)


def _imported(node: ast.stmt, package: tuple[str, ...]) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = list(package[: len(package) - node.level + 1]) if node.level else []
        module = ".".join([*base, *(node.module.split(".") if node.module else [])])
        return [module] + [f"{module}.{alias.name}" for alias in node.names]
    if isinstance(node, ast.If | ast.Try):  # `if TYPE_CHECKING:` blocks and try/except imports
        return [n for child in node.body for n in _imported(child, package)]
    return []


def _module_file(root: Path, name: str) -> Path | None:
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None  # a name imported from a module, not a module itself


def export_serving_code(dest: Path) -> list[Path]:
    """Copy the serving modules into `dest` (a ``PYTHONPATH`` folder); used by the Dockerfile."""
    root = Path(slidesvc.__file__).parent.parent
    written = []
    for path in serving_modules():
        target = dest / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
        written.append(target)
    return written


def dockerfile_stage(deck: str, out: str) -> int:
    """The Dockerfile's build step: artifacts in OUT/deck, serving code in OUT/app, pins in
    OUT/requirements.txt (aiohttp and its requirements at the versions installed here)."""
    from slidesvc.build import build_artifacts
    from slidesvc.errors import SlidesvcError

    folder = Path(out)
    try:
        build_artifacts(Path(deck), folder / DECK_DIR, private=True)
    except SlidesvcError as exc:
        print(exc, file=sys.stderr)
        return 1
    export_serving_code(folder / "app")
    pins = "".join(f"{name}=={version}\n" for name, version in dependency_pins().items())
    (folder / "requirements.txt").write_text(pins)
    return 0


def deck_entries(
    artifacts_dir: Path, modules: Sequence[Path] | None = None, *, public: bool = False
) -> list[oci.Entry]:
    """The deck layer: the serving modules of slidesvc and the deck's artifact files.

    With `public`, the private artifacts (presenter view, notes PDF) stay out,
    for images pushed where anyone may pull them.
    """
    modules = modules if modules is not None else serving_modules()
    root = Path(slidesvc.__file__).parent.parent
    entries = [
        oci.file(f"{APP_DIR}/{path.relative_to(root).as_posix()}", path.read_bytes())
        for path in modules
    ]
    for path in sorted(artifacts_dir.iterdir()):
        private = public and path.name in artifacts.PRIVATE_FILES
        if path.is_file() and not path.name.startswith(".") and not private:
            entries.append(oci.file(f"{DECK_DIR}/{path.name}", path.read_bytes()))
    return entries


# --- bytecode --------------------------------------------------------------------------------


_COMPILER = """
import importlib.util, marshal, sys
header = importlib.util.MAGIC_NUMBER + (0b01).to_bytes(4, "little")
out = []
for path, source in marshal.loads(sys.stdin.buffer.read()):
    try:
        code = compile(source, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        out.append(b"")
        continue
    out.append(header + importlib.util.source_hash(source) + marshal.dumps(code))
    del code
sys.stdout.buffer.write(marshal.dumps(out))
"""
_COMPILE_JOBS = 4
"""Fixed, so that the split of files between compiler processes never depends on the machine."""


def with_bytecode(entries: Sequence[oci.Entry]) -> list[oci.Entry]:
    """`entries` plus an unchecked-hash ``.pyc`` for every ``.py`` file.

    Unchecked-hash pycs are valid whatever the file mtimes, and Python never
    tries to rewrite them, which a read-only root filesystem could not allow.
    A file that does not compile (a test fixture with bad syntax) keeps only
    its source.

    `marshal` output depends on the compiling process: references are
    flagged by reference count, and set constants follow string hashing.
    So compilation runs in fresh interpreters without site packages and
    with a fixed hash seed, each handed the same files in the same order;
    the bytes are then the same on every build.
    """
    if sys.version_info[:2] != (3, 11):
        raise ImageBuildError("slidesvc image must run on Python 3.11 (the image's Python)")
    sources = [e for e in entries if e.kind == "file" and e.path.endswith(".py")]
    chunks = [sources[i::_COMPILE_JOBS] for i in range(_COMPILE_JOBS)]
    env = {"PYTHONHASHSEED": "0", "PATH": os.environ.get("PATH", "")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-S", "-s", "-B", "-c", _COMPILER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for _ in chunks
    ]
    out = list(entries)
    for proc, chunk in zip(procs, chunks, strict=True):
        stdout, stderr = proc.communicate(marshal.dumps([("/" + e.path, e.data) for e in chunk]))
        if proc.returncode != 0:
            raise ImageBuildError(f"compiling bytecode failed: {stderr.decode(errors='replace')}")
        for entry, pyc in zip(chunk, marshal.loads(stdout), strict=True):
            if pyc:
                path = PurePosixPath(entry.path)
                name = path.parent / "__pycache__" / f"{path.stem}.cpython-311.pyc"
                out.append(oci.file(str(name), pyc))
    return out


# --- layers, with a cache for the shared ones ------------------------------------------------


def _cached_layer(
    cache: Path, key: str, comment: str, make: Callable[[], list[oci.Entry]], mtime: int
) -> oci.Layer:
    """A base or dependency layer, from the cache when the same inputs made it before."""
    digest = hashlib.sha256(f"{LAYER_FORMAT}\0{comment}\0{mtime}\0{key}".encode()).hexdigest()
    folder = cache / "layers"
    blob_path, meta_path = folder / f"{digest}.tar.gz", folder / f"{digest}.json"
    if blob_path.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        blob = oci.Blob(oci.MEDIA_LAYER_GZIP, blob_path.read_bytes())
        if blob.digest == meta["digest"]:
            return oci.Layer(blob, meta["diff_id"], comment)
    layer = oci.Layer.from_entries(make(), mtime, comment)
    folder.mkdir(parents=True, exist_ok=True)
    for path, data in (
        (blob_path, layer.blob.data),
        (meta_path, oci.canonical_json({"digest": layer.blob.digest, "diff_id": layer.diff_id})),
    ):
        fd, tmp = tempfile.mkstemp(dir=folder)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    return layer


def base_image(base: Path | None, cache: Path, mtime: int) -> tuple[oci.Image, dict[str, str]]:
    """The base image and the labels describing it (the SBOM of a Debian base)."""
    if base is not None:
        image = oci.read_base(base)
        if not any(_has_python311(layer) for layer in image.layers):
            raise ImageBuildError(
                f"{base}: no Python 3.11 in this base image (no bin/python3.11); "
                "the dependency layer and the bytecode are made for CPython 3.11"
            )
        return image, {}
    packages = debbase.fetch_packages(cache=cache)
    key = "\0".join(f"{p.name}={p.version}:{p.sha256}" for p in packages)
    layer = _cached_layer(
        cache, key, "base", lambda: with_bytecode(debbase.base_entries(packages)), mtime
    )
    config = oci.image_config(layers=(layer,), created=_timestamp(mtime), config={})
    return oci.Image(config, (layer,)), {"dev.slidesvc.base.packages": debbase.sbom_label(packages)}


def _has_python311(layer: oci.Layer) -> bool:
    try:
        with tarfile.open(fileobj=io.BytesIO(layer.uncompressed())) as tar:
            return any(name.endswith("bin/python3.11") for name in tar.getnames())
    except (tarfile.TarError, zlib.error, EOFError) as exc:
        raise ImageBuildError(f"base image layer {layer.blob.digest} is not a tar: {exc}") from exc


def dependency_layer(cache: Path, mtime: int) -> oci.Layer:
    """aiohttp and its requirements, unpacked from wheels, with bytecode."""
    wheels = fetch_wheels(dependency_pins(), cache)
    key = "\0".join(f"{w.name}:{hashlib.sha256(w.read_bytes()).hexdigest()}" for w in wheels)
    return _cached_layer(
        cache, key, "dependencies", lambda: with_bytecode(wheel_entries(wheels)), mtime
    )


def deck_layer(artifacts_dir: Path, mtime: int, *, public: bool = False) -> oci.Layer:
    entries = with_bytecode(deck_entries(artifacts_dir, public=public))
    return oci.Layer.from_entries(entries, mtime, "deck")


# --- the image -------------------------------------------------------------------------------


def _timestamp(mtime: int) -> str:
    return datetime.fromtimestamp(mtime, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def source_date_epoch(env: dict[str, str] | None = None) -> int:
    """``SOURCE_DATE_EPOCH`` (reproducible-builds.org), or 0 as ko and jib do."""
    value = (env if env is not None else os.environ).get("SOURCE_DATE_EPOCH", "0")
    try:
        epoch = int(value)
    except ValueError:
        raise ImageBuildError(f"SOURCE_DATE_EPOCH={value!r}: expected seconds since 1970") from None
    if epoch < 0:
        raise ImageBuildError(f"SOURCE_DATE_EPOCH={value!r}: expected seconds since 1970")
    return epoch


def runtime_config(
    base: dict[str, Any], deck: dict[str, Any], labels: dict[str, str]
) -> dict[str, Any]:
    """The container config: non-root user, entry point, port, environment, labels, health check."""
    env = {k: v for k, _, v in (e.partition("=") for e in base.get("config", {}).get("Env", []))}
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    env.update(
        {
            "PYTHONPATH": f"/{APP_DIR}:/{DEPS_DIR}",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "PYTHONSAFEPATH": "1",
            "PORT": str(PORT),
        }
    )
    return {
        "User": USER,
        "Env": [f"{k}={v}" for k, v in sorted(env.items())],
        "Entrypoint": [
            "python3",
            "-m",
            "slidesvc.server",
            "--artifacts",
            f"/{DECK_DIR}",
            "--host",
            "0.0.0.0",
        ],
        "WorkingDir": "/",
        "ExposedPorts": {f"{PORT}/tcp": {}},
        "StopSignal": "SIGTERM",
        "Labels": labels,
        # Docker and Podman (docker format) honour this; OCI runtimes ignore it.
        "Healthcheck": {
            "Test": ["CMD", "python3", "-m", "slidesvc.healthcheck"],
            "Interval": 30_000_000_000,
            "Timeout": 5_000_000_000,
            "StartPeriod": 5_000_000_000,
            "Retries": 3,
        },
    }


def assemble(
    artifacts_dir: Path,
    *,
    base: Path | None = None,
    cache: Path | None = None,
    mtime: int = 0,
    public: bool = False,
) -> oci.Image:
    """The deck's image (not yet written anywhere) from a built artifact folder."""
    deck_json = artifacts_dir / "deck.json"
    if not (artifacts_dir / "index.html").is_file() or not deck_json.is_file():
        raise ImageBuildError(
            f"{artifacts_dir}: not a deck artifact folder (needs index.html and deck.json)"
        )
    try:
        deck = json.loads(deck_json.read_bytes())
    except ValueError as exc:
        raise ImageBuildError(f"{deck_json}: not valid JSON: {exc}") from exc
    if not isinstance(deck, dict) or not deck.get("slug"):
        raise ImageBuildError(f"{deck_json}: no deck slug; rebuild the artifacts")
    cache = cache or debbase.cache_dir()
    base_img, labels = base_image(base, cache, mtime)
    layers = (dependency_layer(cache, mtime), deck_layer(artifacts_dir, mtime, public=public))
    created = _timestamp(mtime)
    labels |= {
        "org.opencontainers.image.title": str(deck.get("title") or deck.get("slug")),
        "org.opencontainers.image.description": str(deck.get("description") or "")[:500],
        "org.opencontainers.image.version": str(deck.get("version", "")),
        "org.opencontainers.image.created": created,
        "org.opencontainers.image.source": SOURCE_URL,
        "org.opencontainers.image.vendor": f"slidesvc {slidesvc.__version__}",
        "dev.slidesvc.deck.slug": str(deck.get("slug", "")),
        "dev.slidesvc.deck.title": str(deck.get("title", "")),
    }
    if not labels["org.opencontainers.image.description"]:
        del labels["org.opencontainers.image.description"]
    config = oci.image_config(
        layers=layers,
        created=created,
        config=runtime_config(base_img.config, deck, labels),
        base=base_img.config,
    )
    return oci.Image(config, base_img.layers + layers)


def build_image(
    deck_path: Path | None,
    out: Path,
    *,
    fmt: Format = "oci",
    base: Path | None = None,
    push: str | None = None,
    tag: str | None = None,
    artifacts_dir: Path | None = None,
    cache: Path | None = None,
    env: dict[str, str] | None = None,
    public: bool = False,
    mount_from: str = "",
) -> ImageResult:
    """`slidesvc image`: compile the deck (unless `artifacts_dir` is given), assemble, write, push.

    The image is written to `out` only when it is complete, and pushed only
    after it was written.
    """
    mtime = source_date_epoch(env)
    oci.check_output(out, folder=fmt == "oci")
    if push:
        oci.Reference.parse(push)
    with tempfile.TemporaryDirectory(prefix="slidesvc-image-") as tmp:
        if artifacts_dir is None:
            from slidesvc.build import build_artifacts

            if deck_path is None:
                raise ImageBuildError("slidesvc image needs a deck or an artifact folder")
            artifacts_dir = Path(tmp) / "artifacts"
            build_artifacts(deck_path, artifacts_dir, private=not public)
        image = assemble(artifacts_dir, base=base, cache=cache, mtime=mtime, public=public)
    labels = image.config["config"]["Labels"]
    version = labels["org.opencontainers.image.version"] or "latest"
    ref = tag or f"localhost/slidesvc/{labels['dev.slidesvc.deck.slug']}:{version}"
    if fmt == "oci":
        oci.write_layout(image, out, ref)
    else:
        oci.write_archive(image, out, fmt, ref, mtime)
    pushed = oci.push(image, push, mount_from=mount_from) if push else None
    return ImageResult(image, out, ref, pushed)


def image_from_args(args: argparse.Namespace) -> int:
    """The ``image`` subcommand."""
    result = build_image(
        Path(args.source) if args.source else None,
        Path(args.output),
        fmt=args.format,
        base=Path(args.base) if args.base else None,
        push=args.push,
        tag=args.tag,
        artifacts_dir=Path(args.artifacts) if getattr(args, "artifacts", None) else None,
        public=bool(getattr(args, "public", False)),
    )
    size = sum(layer.blob.size for layer in result.image.layers)
    print(f"wrote {result.output} ({fmt_size(size)} compressed) {result.ref} {result.digest}")
    if result.pushed:
        sent, blobs = len(result.pushed.uploaded), len(result.image.blobs()) - 1
        print(f"pushed {result.pushed.location} ({sent} of {blobs} blobs sent)")
    return 0


def fmt_size(size: int) -> str:
    return f"{size / 1e6:.1f} MB"
