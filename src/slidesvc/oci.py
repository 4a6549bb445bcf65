"""Reproducible OCI image plumbing: layers, blobs, layouts, archives, pushes.

Everything an image is made of is built here from plain data, byte for byte
deterministic: a layer is a tar of `Entry` objects sorted by path, with a
fixed mtime, numeric owners and no user/group names, gzip-compressed with a
fixed header; every JSON document is serialised with sorted keys. The same
entries therefore always give the same digests. An `Image` (config + layers)
is written as an OCI image layout directory, an ``oci-archive`` or
``docker-archive`` tar (both loadable by ``podman load``/``docker load``), or
pushed to a registry with the OCI distribution API. `read_base` reads an
existing image back (OCI layout directory or ``docker save`` archive) so new
layers can be appended to it. Nothing here needs a container daemon.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from slidesvc.errors import ImageBuildError

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"

Kind = Literal["file", "dir", "symlink"]


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(value: Any) -> bytes:
    """JSON with sorted keys and no spaces: the same value, the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Entry:
    """One file, directory or symbolic link inside a layer."""

    path: str
    """Path inside the image, without a leading slash (``usr/bin/python3.11``)."""
    kind: Kind = "file"
    data: bytes = b""
    mode: int = 0o644
    target: str = ""
    """Link target, for symbolic links."""
    uid: int = 0
    gid: int = 0


def file(path: str, data: bytes, mode: int = 0o644) -> Entry:
    return Entry(path.strip("/"), "file", data, mode)


def directory(path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> Entry:
    return Entry(path.strip("/"), "dir", mode=mode, uid=uid, gid=gid)


def symlink(path: str, target: str) -> Entry:
    return Entry(path.strip("/"), "symlink", mode=0o777, target=target)


def layer_tar(entries: Iterable[Entry], mtime: int) -> bytes:
    """A deterministic tar: parents added, sorted by path, fixed mtime, numeric owners.

    Two entries for the same path are an error rather than a silent overwrite,
    so a mistake in assembling a layer cannot hide a file.
    """
    by_path: dict[str, Entry] = {}
    for entry in entries:
        if not entry.path or entry.path.startswith("/") or ".." in entry.path.split("/"):
            raise ImageBuildError(f"bad path in image layer: {entry.path!r}")
        if entry.path in by_path and by_path[entry.path] != entry:
            raise ImageBuildError(f"two different entries for {entry.path!r} in one layer")
        by_path[entry.path] = entry
    for path in list(by_path):
        parts = path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            by_path.setdefault(parent, directory(parent))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(by_path):
            entry = by_path[path]
            info = tarfile.TarInfo(path + "/" if entry.kind == "dir" else path)
            info.mtime = mtime
            info.mode = entry.mode
            info.uid, info.gid = entry.uid, entry.gid
            info.uname = info.gname = ""
            if entry.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif entry.kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = entry.target
                tar.addfile(info)
            else:
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
    return buf.getvalue()


def gzip_bytes(data: bytes, level: int = 9) -> bytes:
    """Gzip with a fixed header (no file name, mtime 0), so equal input gives equal bytes."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=level) as gz:
        gz.write(data)
    return buf.getvalue()


@dataclass(frozen=True)
class Blob:
    """Content-addressed bytes with their media type."""

    media_type: str
    data: bytes = field(repr=False)
    digest: str = ""
    annotations: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not self.digest:
            object.__setattr__(self, "digest", sha256_digest(self.data))

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self) -> dict[str, Any]:
        desc: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.annotations:
            desc["annotations"] = dict(self.annotations)
        return desc


@dataclass(frozen=True)
class Layer:
    """A compressed layer blob and the digest of its uncompressed tar (the diff_id)."""

    blob: Blob
    diff_id: str
    comment: str = ""
    """Recorded in the image history (``base``, ``dependencies``, ``deck``)."""

    @classmethod
    def from_entries(cls, entries: Iterable[Entry], mtime: int, comment: str = "") -> Layer:
        return cls.from_tar(layer_tar(entries, mtime), comment)

    @classmethod
    def from_tar(cls, tar: bytes, comment: str = "", level: int = 9) -> Layer:
        return cls(Blob(MEDIA_LAYER_GZIP, gzip_bytes(tar, level)), sha256_digest(tar), comment)

    def uncompressed(self) -> bytes:
        if self.blob.media_type in (MEDIA_LAYER_TAR, DOCKER_LAYER_TAR):
            return self.blob.data
        return zlib.decompress(self.blob.data, wbits=31)


@dataclass(frozen=True)
class Image:
    """An image: a config JSON and its layers, bottom first."""

    config: dict[str, Any]
    layers: tuple[Layer, ...]

    @property
    def config_blob(self) -> Blob:
        return Blob(MEDIA_CONFIG, canonical_json(self.config))

    @property
    def manifest_blob(self) -> Blob:
        manifest = {
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": self.config_blob.descriptor(),
            "layers": [layer.blob.descriptor() for layer in self.layers],
        }
        return Blob(MEDIA_MANIFEST, canonical_json(manifest))

    @property
    def digest(self) -> str:
        """The image's identity: the digest of its manifest."""
        return self.manifest_blob.digest

    def blobs(self) -> list[Blob]:
        return [self.config_blob, *(layer.blob for layer in self.layers), self.manifest_blob]


def image_config(
    *,
    layers: Iterable[Layer],
    created: str,
    config: dict[str, Any],
    base: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An OCI image config for `layers` on top of `base`'s config (if any)."""
    layers = tuple(layers)
    base = base or {}
    history = list(base.get("history", []))
    history += [
        {"created": created, "created_by": f"slidesvc: {layer.comment}"} for layer in layers
    ]
    diff_ids = list(base.get("rootfs", {}).get("diff_ids", [])) + [
        layer.diff_id for layer in layers
    ]
    return {
        "architecture": base.get("architecture", "amd64"),
        "os": base.get("os", "linux"),
        "created": created,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }


# --- writing ---------------------------------------------------------------------------------


def layout_files(image: Image, ref: str | None) -> Iterator[tuple[str, bytes]]:
    """The files of an OCI image layout holding `image`, tagged `ref`."""
    yield "oci-layout", canonical_json({"imageLayoutVersion": "1.0.0"})
    manifest = image.manifest_blob
    desc = manifest.descriptor()
    if ref:
        desc["annotations"] = {REF_NAME_ANNOTATION: ref}
    yield (
        "index.json",
        canonical_json({"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": [desc]}),
    )
    seen: set[str] = set()
    for blob in image.blobs():
        if blob.digest not in seen:
            seen.add(blob.digest)
            yield "blobs/sha256/" + blob.digest.removeprefix("sha256:"), blob.data


def docker_archive_files(image: Image, ref: str | None) -> Iterator[tuple[str, bytes]]:
    """The files of a ``docker save`` archive: uncompressed layers, config, manifest.json."""
    config = image.config_blob
    config_name = config.digest.removeprefix("sha256:") + ".json"
    layer_names = []
    yield config_name, config.data
    for layer in image.layers:
        name = layer.diff_id.removeprefix("sha256:") + "/layer.tar"
        layer_names.append(name)
        yield name, layer.uncompressed()
    entry = {"Config": config_name, "RepoTags": [ref] if ref else [], "Layers": layer_names}
    yield "manifest.json", canonical_json([entry])


def _files_tar(files: Iterable[tuple[str, bytes]]) -> Iterator[Entry]:
    for name, data in files:
        yield file(name, data)


def check_output(out: Path, *, folder: bool) -> None:
    """Refuse an output path that would replace something that is not ours to replace.

    A layout may replace an empty folder or an earlier layout; an archive may
    replace a file. Called before the (slow) build, and again when writing.
    """
    if out.is_dir() and not out.is_symlink():
        if not folder:
            raise ImageBuildError(f"{out}: is a folder; an archive needs a file name (-o talk.tar)")
        if any(out.iterdir()) and not (out / "oci-layout").is_file():
            raise ImageBuildError(f"{out}: exists and is not an OCI layout; refusing to replace it")
    elif folder and (out.exists() or out.is_symlink()):
        raise ImageBuildError(f"{out}: exists and is not an OCI layout folder")


def write_atomic(out: Path, writer: Callable[[Path], None], *, folder: bool) -> None:
    """Run `writer` on a temporary path next to `out`, then rename it into place."""
    out = out.absolute()
    check_output(out, folder=folder)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as exc:
        raise ImageBuildError(f"{out}: cannot write here: {exc}") from exc
    try:
        target = tmp / "out"
        writer(target)
        if out.is_dir():
            out.rename(tmp / "old")  # an earlier layout, removed with tmp
        target.replace(out)
    except OSError as exc:
        raise ImageBuildError(f"{out}: cannot write: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_layout(image: Image, out: Path, ref: str | None = None) -> None:
    """Write `image` as an OCI image layout directory at `out` (atomically)."""

    def write(target: Path) -> None:
        for name, data in layout_files(image, ref):
            path = target / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    write_atomic(out, write, folder=True)


def write_archive(
    image: Image,
    out: Path,
    fmt: Literal["oci-archive", "docker-archive"],
    ref: str | None,
    mtime: int,
) -> None:
    """Write `image` as one tar (``oci-archive`` or ``docker-archive``) at `out` (atomically)."""
    files = layout_files(image, ref) if fmt == "oci-archive" else docker_archive_files(image, ref)
    tar = layer_tar(_files_tar(files), mtime)
    write_atomic(out, lambda target: _write(target, tar), folder=False)


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)


# --- reading a base image --------------------------------------------------------------------


def read_base(path: Path) -> Image:
    """Read an image from an OCI layout directory or a ``docker save``/oci-archive tar."""
    try:
        if path.is_dir():
            return _read_oci(lambda name: (path / name).read_bytes(), str(path))
        if path.is_file():
            with tarfile.open(path) as tar:
                members = {m.name.removeprefix("./"): m for m in tar.getmembers() if m.isfile()}

                def read(name: str) -> bytes:
                    member = members.get(name)
                    extracted = tar.extractfile(member) if member else None
                    if extracted is None:
                        raise FileNotFoundError(f"{path}: no {name} in the archive")
                    return extracted.read()

                if "index.json" in members:
                    return _read_oci(read, str(path))
                if "manifest.json" in members:
                    return _read_docker(read, str(path))
            raise ImageBuildError(f"{path}: neither an OCI layout nor a docker-save archive")
    except (OSError, tarfile.TarError, KeyError, ValueError, TypeError, zlib.error) as exc:
        raise ImageBuildError(f"{path}: cannot read the base image: {exc}") from exc
    raise ImageBuildError(f"{path}: base image not found (an OCI layout dir or a docker-save tar)")


def _read_oci(read: Callable[[str], bytes], where: str) -> Image:
    def blob(digest: str) -> bytes:
        algo, _, hexdigest = digest.partition(":")
        data = read(f"blobs/{algo}/{hexdigest}")
        if algo != "sha256" or sha256_digest(data) != digest:
            raise ImageBuildError(f"{where}: blob {digest} does not match its digest")
        return data

    desc: dict[str, Any] = json.loads(read("index.json"))
    # An index may nest indexes (multi-platform images); take the linux/amd64 manifest.
    while True:
        manifests = desc.get("manifests")
        if manifests is None:
            break
        if not manifests:
            raise ImageBuildError(f"{where}: the image index is empty")
        chosen = next(
            (
                m
                for m in manifests
                if m.get("platform", {}).get("architecture", "amd64") == "amd64"
                and m.get("platform", {}).get("os", "linux") == "linux"
            ),
            None,
        )
        if chosen is None:
            raise ImageBuildError(f"{where}: no linux/amd64 image in the index")
        desc = json.loads(blob(chosen["digest"]))
    config = json.loads(blob(desc["config"]["digest"]))
    layers = []
    for layer_desc, diff_id in zip(desc["layers"], config["rootfs"]["diff_ids"], strict=True):
        media_type = str(layer_desc["mediaType"])
        if media_type in (DOCKER_LAYER_GZIP, DOCKER_LAYER_TAR):
            media_type = MEDIA_LAYER_GZIP if media_type == DOCKER_LAYER_GZIP else MEDIA_LAYER_TAR
        elif media_type not in (MEDIA_LAYER_GZIP, MEDIA_LAYER_TAR):
            raise ImageBuildError(f"{where}: unsupported layer type {media_type}")
        layers.append(Layer(Blob(media_type, blob(layer_desc["digest"])), diff_id, "base"))
    return Image(config, tuple(layers))


def _read_docker(read: Callable[[str], bytes], where: str) -> Image:
    manifest = json.loads(read("manifest.json"))
    if len(manifest) != 1:
        raise ImageBuildError(f"{where}: the archive holds {len(manifest)} images; save just one")
    config = json.loads(read(manifest[0]["Config"]))
    layers = []
    for name, diff_id in zip(manifest[0]["Layers"], config["rootfs"]["diff_ids"], strict=True):
        data = read(name)
        # Recent Docker versions save layers compressed; keep them that way.
        if data[:2] == b"\x1f\x8b":
            layer = Layer(Blob(MEDIA_LAYER_GZIP, data), diff_id, "base")
            actual = sha256_digest(layer.uncompressed())
        else:  # level 6: a large base layer compresses several times faster than at 9
            layer = Layer.from_tar(data, "base", level=6)
            actual = layer.diff_id
        if actual != diff_id:
            raise ImageBuildError(f"{where}: layer {name} does not match its diff_id")
        layers.append(layer)
    return Image(config, tuple(layers))


# --- pushing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """``registry/name:tag`` split into its parts."""

    registry: str
    name: str
    tag: str

    @classmethod
    def parse(cls, ref: str) -> Reference:
        head, _, rest = ref.partition("/")
        if not rest or not ("." in head or ":" in head or head == "localhost"):
            raise ImageBuildError(
                f"{ref!r}: push needs REGISTRY/NAME:TAG (e.g. 127.0.0.1:5000/talk:1)"
            )
        name, _, tag = (
            rest.rpartition(":") if ":" in rest.rsplit("/", 1)[-1] else (rest, "", "latest")
        )
        if not name or not tag:
            raise ImageBuildError(f"{ref!r}: push needs REGISTRY/NAME:TAG")
        return cls(head, name, tag)

    @property
    def base_url(self) -> str:
        host = self.registry.rsplit(":", 1)[0].strip("[]")
        scheme = "http" if host in ("localhost", "::1") or host.startswith("127.") else "https"
        return f"{scheme}://{self.registry}/v2/{self.name}"


@dataclass(frozen=True)
class Pushed:
    """What a push did."""

    location: str
    """``registry/name@digest``."""
    uploaded: tuple[str, ...]
    """Digests of the blobs sent; blobs the registry had or could mount were not."""


def push(image: Image, ref: str, *, mount_from: str = "", timeout: float = 60.0) -> Pushed:
    """Push `image` to `ref` with the OCI distribution API.

    Blobs the repository already has are skipped (a HEAD request each), and
    with `mount_from` (another repository name on the same registry, such
    as an earlier deck) shared blobs are mounted from there instead of sent,
    so each further deck uploads only its deck layer and config. Plain HTTP
    is used only for loopback registries.
    """
    target = Reference.parse(ref)
    opener = urllib.request.build_opener(_NoRedirect)

    def request(
        method: str, url: str, data: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str]]:
        req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
        try:
            with opener.open(req, timeout=timeout) as response:
                response.read()
                return response.status, dict(response.headers)
        except urllib.error.HTTPError as exc:
            if method == "HEAD" and exc.code == 404:
                return 404, {}
            detail = exc.read(2000).decode("utf-8", "replace").strip()
            raise ImageBuildError(
                f"push to {ref}: {method} {url}: HTTP {exc.code} {detail}"
            ) from exc
        except OSError as exc:
            raise ImageBuildError(f"push to {ref}: cannot reach {target.registry}: {exc}") from exc

    uploaded = []
    for blob in image.blobs()[:-1]:
        if request("HEAD", f"{target.base_url}/blobs/{blob.digest}")[0] == 200:
            continue
        start = f"{target.base_url}/blobs/uploads/"
        if mount_from:
            query = urllib.parse.urlencode({"mount": blob.digest, "from": mount_from})
            start += "?" + query
        status, started = request("POST", start, b"")
        if status == 201:
            continue  # mounted from the other repository
        upload = urllib.parse.urljoin(target.base_url + "/", started["Location"])
        sep = "&" if "?" in upload else "?"
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(blob.size)}
        request("PUT", f"{upload}{sep}digest={urllib.parse.quote(blob.digest)}", blob.data, headers)
        uploaded.append(blob.digest)
    manifest = image.manifest_blob
    url = f"{target.base_url}/manifests/{target.tag}"
    request("PUT", url, manifest.data, {"Content-Type": MEDIA_MANIFEST})
    return Pushed(f"{target.registry}/{target.name}@{manifest.digest}", tuple(uploaded))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Registries answer uploads with 202 + Location; never follow redirects with a body."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None
