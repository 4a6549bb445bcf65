"""The deck image, checked byte by byte in Python: blobs, layers, reproducibility, contents.

The image is built once per session from hand-made artifact folders (no
PDF rendering needed); base packages and wheels come from the cache
(``SLIDESVC_CACHE_DIR`` or ``~/.cache/slidesvc``), fetched on first use.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import json
import subprocess
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import run_cli

from slidesvc import debbase, oci
from slidesvc.errors import ImageBuildError
from slidesvc.image import build_image, dependency_pins, serving_modules, wheel_entries

EPOCH = 1_700_000_000
ENV = {"SOURCE_DATE_EPOCH": str(EPOCH)}

pytestmark = pytest.mark.slow


def make_artifacts(folder: Path, slug: str, title: str) -> Path:
    """A small artifact folder as `slidesvc.build.build_artifacts` writes it."""
    folder.mkdir(parents=True)
    page = (
        '<!doctype html><html lang="en" data-mode="deck" class="no-js"><head>'
        '<meta charset="utf-8"><meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'\"><title>{t}</title><!--slidesvc:head--></head>"
        '<body><main class="deck" data-count="1"><section class="slide" id="1">{t}</section>'
        "</main></body></html>"
    )
    (folder / "index.html").write_text(page.format(t=title))
    (folder / "presenter.html").write_text(page.format(t=title + " (notes)"))
    deck = {
        "slug": slug,
        "title": title,
        "version": hashlib.sha256(title.encode()).hexdigest()[:12],
    }
    (folder / "deck.json").write_text(json.dumps(deck))
    (folder / "deck.pdf").write_bytes(b"%PDF-1.7\n%fake\n")
    return folder


@dataclass
class Layout:
    """An OCI image layout read back from disk."""

    path: Path
    manifest: dict[str, Any]
    config: dict[str, Any]
    digest: str

    def blob(self, digest: str) -> bytes:
        return (self.path / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()

    def layer_tars(self) -> list[tarfile.TarFile]:
        return [
            tarfile.open(fileobj=io.BytesIO(gzip.decompress(self.blob(d["digest"]))))
            for d in self.manifest["layers"]
        ]

    def layer_names(self, index: int) -> list[str]:
        return self.layer_tars()[index].getnames()

    def read(self, index: int, name: str) -> bytes:
        member = self.layer_tars()[index].extractfile(name)
        assert member is not None
        return member.read()


def read_layout(path: Path) -> Layout:
    index = json.loads((path / "index.json").read_bytes())
    assert json.loads((path / "oci-layout").read_bytes()) == {"imageLayoutVersion": "1.0.0"}
    (desc,) = index["manifests"]
    manifest_bytes = (
        path / "blobs" / "sha256" / desc["digest"].removeprefix("sha256:")
    ).read_bytes()
    manifest = json.loads(manifest_bytes)
    layout = Layout(path, manifest, {}, desc["digest"])
    layout.config = json.loads(layout.blob(manifest["config"]["digest"]))
    return layout


@pytest.fixture(scope="session")
def decks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("artifacts")
    return {
        "talk": make_artifacts(root / "talk", "talk", "A Talk"),
        "other": make_artifacts(root / "other", "other", "Another Talk"),
    }


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory, decks: dict[str, Path]) -> Layout:
    out = tmp_path_factory.mktemp("image") / "talk"
    build_image(None, out, artifacts_dir=decks["talk"], env=ENV)
    return read_layout(out)


@pytest.fixture(scope="session")
def built_other(tmp_path_factory: pytest.TempPathFactory, decks: dict[str, Path]) -> Layout:
    out = tmp_path_factory.mktemp("image") / "other"
    build_image(None, out, artifacts_dir=decks["other"], env=ENV)
    return read_layout(out)


def test_every_blob_matches_its_digest_and_size(built: Layout) -> None:
    """Manifest, config and layers are stored under their sha256 with the declared size."""
    descriptors = [built.manifest["config"], *built.manifest["layers"]]
    manifest = built.blob(built.digest)
    assert hashlib.sha256(manifest).hexdigest() == built.digest.removeprefix("sha256:")
    for desc in descriptors:
        data = built.blob(desc["digest"])
        assert "sha256:" + hashlib.sha256(data).hexdigest() == desc["digest"]
        assert len(data) == desc["size"]
    stored = {p.name for p in (built.path / "blobs" / "sha256").iterdir()}
    assert stored == {
        d["digest"].removeprefix("sha256:") for d in [*descriptors, {"digest": built.digest}]
    }
    assert built.manifest["mediaType"] == oci.MEDIA_MANIFEST
    assert {d["mediaType"] for d in built.manifest["layers"]} == {oci.MEDIA_LAYER_GZIP}


def test_diff_ids_are_digests_of_the_uncompressed_layers(built: Layout) -> None:
    """rootfs.diff_ids name each layer's tar, bottom first: base, dependencies, deck."""
    tars = [gzip.decompress(built.blob(d["digest"])) for d in built.manifest["layers"]]
    assert built.config["rootfs"]["diff_ids"] == [
        "sha256:" + hashlib.sha256(t).hexdigest() for t in tars
    ]
    assert [h["created_by"] for h in built.config["history"]] == [
        "slidesvc: base",
        "slidesvc: dependencies",
        "slidesvc: deck",
    ]


def test_layers_are_sorted_with_fixed_mtimes_and_numeric_owners(built: Layout) -> None:
    """Entries sorted by path, mtime = SOURCE_DATE_EPOCH, no user or group names."""
    for tar in built.layer_tars():
        members = tar.getmembers()
        names = [m.name for m in members]
        assert names == sorted(names)
        assert {m.mtime for m in members} == {EPOCH}
        assert {m.uname for m in members} == {""} and {m.gname for m in members} == {""}
        assert not [m.name for m in members if m.pax_headers]


def test_gzip_headers_carry_no_time_or_name(built: Layout) -> None:
    """Every layer's gzip header has mtime 0 and no file name."""
    for desc in built.manifest["layers"]:
        header = built.blob(desc["digest"])[:10]
        assert header[:3] == b"\x1f\x8b\x08"
        assert header[3] & 0x08 == 0  # FNAME
        assert header[4:8] == b"\0\0\0\0"


def test_rebuild_in_a_new_process_gives_the_same_digest(
    built: Layout, decks: dict[str, Path], tmp_path: Path
) -> None:
    """The CLI, with no cached layers, rebuilds the identical image."""
    cache = tmp_path / "cache"
    cache.mkdir()
    for sub in ("debs", "wheels"):  # downloads are shared; the layers are rebuilt from them
        (cache / sub).symlink_to(debbase.cache_dir() / sub)
    out = tmp_path / "again"
    env = {**ENV, "SLIDESVC_CACHE_DIR": str(cache), "PYTHONHASHSEED": "123"}
    proc = run_image("--artifacts", str(decks["talk"]), "-o", str(out), env=env)
    assert proc.returncode == 0, proc.stderr
    assert read_layout(out).digest == built.digest
    assert built.digest in proc.stdout
    assert (cache / "layers").is_dir()


def test_two_decks_differ_only_in_the_deck_layer(built: Layout, built_other: Layout) -> None:
    """Base and dependency layers are shared across decks; the deck layer is not."""
    mine = [d["digest"] for d in built.manifest["layers"]]
    theirs = [d["digest"] for d in built_other.manifest["layers"]]
    assert mine[:2] == theirs[:2]
    assert mine[2] != theirs[2]
    assert built.digest != built_other.digest


def test_config_runs_the_server_as_non_root_with_labels(built: Layout) -> None:
    """Non-root user, the server entry point on $PORT, OCI labels with the deck's identity."""
    config = built.config["config"]
    assert config["User"] == "65532:65532"
    assert config["Entrypoint"][:3] == ["python3", "-m", "slidesvc.server"]
    assert "PORT=8080" in config["Env"]
    assert config["ExposedPorts"] == {"8080/tcp": {}}
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == "A Talk"
    assert labels["org.opencontainers.image.created"] == "2023-11-14T22:13:20Z"
    assert labels["org.opencontainers.image.source"].startswith("https://")
    assert (
        labels["org.opencontainers.image.version"]
        == json.loads(built.read(2, "deck/deck.json"))["version"]
    )
    assert labels["dev.slidesvc.deck.slug"] == "talk"
    assert labels["dev.slidesvc.deck.title"] == "A Talk"
    assert "python3.11-minimal=3.11" in labels["dev.slidesvc.base.packages"]
    assert built.config["created"] == "2023-11-14T22:13:20Z"
    assert (built.config["os"], built.config["architecture"]) == ("linux", "amd64")


def test_base_has_python_and_a_user_but_no_shell_or_package_manager(built: Layout) -> None:
    """The base layer: the interpreter and its libraries; no sh, no apt/dpkg, no tests."""
    names = set(built.layer_names(0))
    assert {"usr/bin/python3.11", "usr/bin/python3", "lib64/ld-linux-x86-64.so.2"} <= names
    assert "usr/lib/python3.11/asyncio/__init__.py" in names
    assert not {"bin/sh", "bin/bash", "usr/bin/dpkg", "usr/bin/apt", "bin/dash"} & names
    dropped = (
        "test/",
        "idlelib/",
        "tkinter/",
        "ensurepip/",
        "lib2to3/",
        "pydoc_data/",
        "unittest/",
    )
    assert not [n for n in names if n.startswith(tuple("usr/lib/python3.11/" + d for d in dropped))]
    assert not [n for n in names if n.startswith(("usr/share/doc", "usr/share/man"))]
    passwd = built.read(0, "etc/passwd").decode()
    assert "slidesvc:x:65532:65532:" in passwd
    assert all(line.endswith(":/sbin/nologin") for line in passwd.splitlines())
    sbom = json.loads(built.read(0, debbase.SBOM_PATH))
    assert {p["name"] for p in sbom["packages"]} == set(debbase.PACKAGES)
    assert all(p["version"] and len(p["sha256"]) == 64 for p in sbom["packages"])


def test_extension_modules_are_kept_only_with_their_libraries(built: Layout) -> None:
    """_asyncio and _json stay; _ssl and _sqlite3 (libraries not in the base) are left out."""
    dynload = [
        n.rsplit("/", 1)[-1].split(".")[0] for n in built.layer_names(0) if "/lib-dynload/" in n
    ]
    assert {"_asyncio", "_json", "_contextvars"} <= set(dynload)
    assert not {"_ssl", "_sqlite3", "readline", "_testcapi", "_xxtestfuzz"} & set(dynload)


def test_python_files_come_with_unchecked_hash_bytecode(built: Layout) -> None:
    """Every compiled .py has an unchecked-hash .pyc whose hash matches the source."""
    for index in range(3):
        tar = built.layer_tars()[index]
        files = {m.name: m for m in tar.getmembers() if m.isfile()}
        pycs = [n for n in files if n.endswith(".cpython-311.pyc")]
        assert pycs
        for name in pycs[:: max(1, len(pycs) // 40)]:
            folder, pyc = name.rsplit("/__pycache__/", 1)
            source = f"{folder}/{pyc.removesuffix('.cpython-311.pyc')}.py"
            data = tar.extractfile(files[name]).read()  # type: ignore[union-attr]
            assert data[:4] == importlib.util.MAGIC_NUMBER
            assert int.from_bytes(data[4:8], "little") == 0b01  # hash-based, unchecked
            assert data[8:16] == importlib.util.source_hash(tar.extractfile(files[source]).read())  # type: ignore[union-attr]


def test_deck_layer_holds_only_serving_code_and_artifacts(built: Layout) -> None:
    """The deck layer: slidesvc's serving modules and the artifacts, nothing of the build side."""
    files = [n for n in built.layer_names(2) if not n.endswith("/") and "." in n.rsplit("/", 1)[-1]]
    code = {n.removeprefix("opt/slidesvc/app/") for n in files if n.endswith(".py")}
    assert {"slidesvc/__init__.py", "slidesvc/artifacts.py", "slidesvc/errors.py"} <= code
    assert "slidesvc/server/__main__.py" in code
    assert (
        not {"slidesvc/build.py", "slidesvc/render_pdf.py", "slidesvc/parse.py", "slidesvc/cli.py"}
        & code
    )
    assert {n for n in files if n.startswith("deck/")} == {
        "deck/deck.json",
        "deck/deck.pdf",
        "deck/index.html",
        "deck/presenter.html",
    }
    root = Path(serving_modules()[0]).parent.parent
    assert code == {p.relative_to(root).as_posix() for p in serving_modules()}


def test_public_images_leave_the_private_artifacts_out(
    decks: dict[str, Path], tmp_path: Path
) -> None:
    """--public: no presenter view and no notes in the deck layer."""
    proc = run_image("--artifacts", str(decks["talk"]), "-o", str(tmp_path / "out"), "--public")
    assert proc.returncode == 0, proc.stderr
    names = read_layout(tmp_path / "out").layer_names(2)
    assert "deck/index.html" in names and "deck/presenter.html" not in names


def test_dependency_layer_holds_aiohttp_and_its_requirements_only(built: Layout) -> None:
    """The dependency layer: the pinned wheels, unpacked; no pip, no build-side packages."""
    names = built.layer_names(1)
    tops = {n.split("/")[3] for n in names if n.count("/") >= 3}
    versions = [d.removesuffix(".dist-info").split("-") for d in tops if d.endswith(".dist-info")]
    installed = {name.lower(): version for name, version in versions}
    assert installed == dependency_pins()
    assert "aiohttp" in installed
    assert not {"pip", "weasyprint", "markdown", "pygments"} & set(installed)


def test_image_is_small(built: Layout) -> None:
    """Under 25 MB compressed and 70 MB unpacked."""
    compressed = sum(d["size"] for d in built.manifest["layers"])
    unpacked = sum(m.size for tar in built.layer_tars() for m in tar.getmembers())
    assert compressed < 25_000_000
    assert unpacked < 70_000_000


def test_archives_hold_the_same_image(
    built: Layout, decks: dict[str, Path], tmp_path: Path
) -> None:
    """oci-archive holds the layout, docker-archive the layers by diff_id; both reproducible."""
    oci_tar, docker_tar = tmp_path / "talk.oci.tar", tmp_path / "talk.docker.tar"
    build_image(None, oci_tar, fmt="oci-archive", artifacts_dir=decks["talk"], env=ENV)
    build_image(
        None, docker_tar, fmt="docker-archive", artifacts_dir=decks["talk"], env=ENV, tag="talk:1"
    )
    with tarfile.open(oci_tar) as tar:
        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
        assert index["manifests"][0]["digest"] == built.digest
    with tarfile.open(docker_tar) as tar:
        (entry,) = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        assert entry["RepoTags"] == ["talk:1"]
        digests = [
            "sha256:" + hashlib.sha256(tar.extractfile(n).read()).hexdigest()  # type: ignore[union-attr]
            for n in entry["Layers"]
        ]
        assert digests == built.config["rootfs"]["diff_ids"]
    again = tmp_path / "again.tar"
    build_image(
        None, again, fmt="docker-archive", artifacts_dir=decks["talk"], env=ENV, tag="talk:1"
    )
    assert again.read_bytes() == docker_tar.read_bytes()


@pytest.mark.parametrize("fmt", ["oci", "docker-archive"])
def test_base_image_gets_the_dependency_and_deck_layers_appended(
    built: Layout, decks: dict[str, Path], tmp_path: Path, fmt: str
) -> None:
    """--base accepts an OCI layout or a docker-save archive and keeps its layers, history, env."""
    base = tmp_path / "base"
    build_image(None, base, fmt=fmt, artifacts_dir=decks["other"], env=ENV)  # type: ignore[arg-type]
    out = tmp_path / "out"
    build_image(None, out, base=base, artifacts_dir=decks["talk"], env=ENV)
    image = read_layout(out)
    base_diff_ids = built.config["rootfs"]["diff_ids"]
    diff_ids = image.config["rootfs"]["diff_ids"]
    assert len(diff_ids) == len(image.manifest["layers"]) == len(image.config["history"]) == 5
    assert diff_ids[:2] == base_diff_ids[:2] and diff_ids[3:] == base_diff_ids[1:]
    if fmt == "oci":  # an OCI layout's compressed blobs are reused as they are
        assert image.manifest["layers"][:2] == built.manifest["layers"][:2]
    assert image.config["config"]["Labels"]["dev.slidesvc.deck.slug"] == "talk"
    path = [e for e in built.config["config"]["Env"] if e.startswith("PATH=")]
    assert [e for e in image.config["config"]["Env"] if e.startswith("PATH=")] == path


def test_base_without_python_is_refused(decks: dict[str, Path], tmp_path: Path) -> None:
    """A base image without Python 3.11 is named as the problem; nothing is written."""
    layer = oci.Layer.from_entries([oci.file("etc/motd", b"hi\n")], 0, "base")
    config = oci.image_config(layers=(layer,), created="1970-01-01T00:00:00Z", config={})
    oci.write_layout(oci.Image(config, (layer,)), tmp_path / "busybox-ish")
    with pytest.raises(ImageBuildError, match=r"no Python 3\.11 in this base image"):
        build_image(
            None, tmp_path / "out", base=tmp_path / "busybox-ish", artifacts_dir=decks["talk"]
        )
    assert not (tmp_path / "out").exists()


def test_elf_reader_finds_the_libraries_python_links() -> None:
    """DT_NEEDED of the Debian python3.11 binary names libc, libm, libz and libexpat."""
    (package,) = debbase.fetch_packages(["python3.11-minimal"])
    binary = next(
        data for m, data in debbase.deb_members(package.path) if m.name.endswith("bin/python3.11")
    )
    assert {"libc.so.6", "libm.so.6", "libz.so.1", "libexpat.so.1"} <= set(
        debbase.elf_needed(binary)
    )
    assert debbase.elf_needed(b"#!/bin/sh\n") == []


# --- errors ---------------------------------------------------------------------------------


def run_image(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli("image", *args, env=env, timeout=900)


def test_not_an_artifact_folder_is_a_clear_error(tmp_path: Path) -> None:
    """A folder without index.html/deck.json: exit 1, one line, no traceback, no output."""
    proc = run_image("--artifacts", str(tmp_path), "-o", str(tmp_path / "out"))
    assert proc.returncode == 1
    assert "not a deck artifact folder" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_bad_base_is_a_clear_error(decks: dict[str, Path], tmp_path: Path) -> None:
    """--base pointing at something that is not an image: exit 1, no output left behind."""
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar at all")
    proc = run_image(
        "--artifacts", str(decks["talk"]), "--base", str(junk), "-o", str(tmp_path / "out")
    )
    assert proc.returncode == 1, proc.stderr
    assert "cannot read the base image" in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.tar"]


def test_bad_source_date_epoch_is_a_clear_error(decks: dict[str, Path], tmp_path: Path) -> None:
    """SOURCE_DATE_EPOCH must be a number of seconds."""
    with pytest.raises(ImageBuildError, match="SOURCE_DATE_EPOCH"):
        build_image(
            None,
            tmp_path / "out",
            artifacts_dir=decks["talk"],
            env={"SOURCE_DATE_EPOCH": "yesterday"},
        )


def test_output_over_a_foreign_folder_is_refused(decks: dict[str, Path], tmp_path: Path) -> None:
    """-o naming a non-empty folder that is not an image layout is not replaced."""
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    with pytest.raises(ImageBuildError, match="not an OCI layout"):
        build_image(None, out, artifacts_dir=decks["talk"], env=ENV)
    assert (out / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious"]


def test_output_kinds_do_not_replace_each_other(decks: dict[str, Path], tmp_path: Path) -> None:
    """A layout over a file, or an archive over a folder, is refused before any work."""
    (tmp_path / "notes.txt").write_text("keep me")
    (tmp_path / "folder").mkdir()
    proc = run_image("--artifacts", str(decks["talk"]), "-o", str(tmp_path / "notes.txt"))
    assert proc.returncode == 1 and "not an OCI layout folder" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run_image(
        "--artifacts", str(decks["talk"]), "-o", str(tmp_path / "folder"), "--format", "oci-archive"
    )
    assert proc.returncode == 1 and "an archive needs a file name" in proc.stderr
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "notes.txt"]


def test_rebuilding_over_an_earlier_layout_replaces_it(
    decks: dict[str, Path], tmp_path: Path
) -> None:
    """-o naming an earlier image layout replaces it whole, leaving no temporary folders."""
    out = tmp_path / "talk"
    build_image(None, out, artifacts_dir=decks["other"], env=ENV)
    build_image(None, out, artifacts_dir=decks["talk"], env=ENV)
    layout = read_layout(out)
    assert layout.config["config"]["Labels"]["dev.slidesvc.deck.slug"] == "talk"
    assert len(list((out / "blobs" / "sha256").iterdir())) == 5
    assert [p.name for p in tmp_path.iterdir()] == ["talk"]


@pytest.mark.parametrize("ref", ["talk:1", "noregistry/talk:1", "127.0.0.1:5000/"])
def test_push_reference_needs_a_registry(ref: str) -> None:
    """--push needs REGISTRY/NAME:TAG."""
    with pytest.raises(ImageBuildError, match="REGISTRY/NAME:TAG"):
        oci.Reference.parse(ref)


def test_push_reference_parts() -> None:
    """Registry with a port, nested names, default tag; plain HTTP only on loopback."""
    ref = oci.Reference.parse("127.0.0.1:5000/decks/talk:v1")
    assert (ref.registry, ref.name, ref.tag) == ("127.0.0.1:5000", "decks/talk", "v1")
    assert ref.base_url == "http://127.0.0.1:5000/v2/decks/talk"
    assert oci.Reference.parse("ghcr.io/me/talk").tag == "latest"
    assert oci.Reference.parse("ghcr.io/me/talk").base_url.startswith("https://")


def test_duplicate_paths_in_a_layer_are_refused() -> None:
    """Two different entries for one path is a builder bug caught early."""
    with pytest.raises(ImageBuildError, match="two different entries"):
        oci.layer_tar([oci.file("a", b"1"), oci.file("a", b"2")], 0)
    with pytest.raises(ImageBuildError, match="bad path"):
        oci.layer_tar([oci.file("../etc/passwd", b"x")], 0)


def test_wheel_escaping_its_folder_is_refused(tmp_path: Path) -> None:
    """A wheel member like ../../etc/passwd never lands in a layer."""
    wheel = tmp_path / "evil-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("evil/__init__.py", "")
        zf.writestr("../../etc/passwd", "root::0:0::/:/bin/sh\n")
    with pytest.raises(ImageBuildError, match="unsafe path"):
        wheel_entries([wheel])


def test_broken_elf_is_a_clear_error() -> None:
    """A truncated ELF header is reported, not a struct.error traceback."""
    with pytest.raises(ImageBuildError, match="broken ELF"):
        debbase.elf_needed(b"\x7fELF\x02\x01" + b"\0" * 20)


def test_not_a_deb_is_a_clear_error(tmp_path: Path) -> None:
    """A file that is not an ar archive is reported by name."""
    fake = tmp_path / "fake.deb"
    fake.write_bytes(b"PK\3\4 zip, not ar")
    with pytest.raises(ImageBuildError, match="not a Debian package"):
        list(debbase.deb_members(fake))


def test_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """SLIDESVC_CACHE_DIR moves the download cache."""
    monkeypatch.setenv("SLIDESVC_CACHE_DIR", str(tmp_path))
    assert debbase.cache_dir() == tmp_path
