"""`slidesvc k8s`: manifests validated against the Kubernetes schemas and a Knative Service schema.

Kubernetes objects go through ``kubernetes-validate --strict`` (the real
CLI, offline schemas). The Knative Service is checked with jsonschema
against tests/data/knative-service-v1.schema.json (see its ``$comment`` for
where it comes from), whose pod-spec parts point into kubernetes-validate's
strict definitions.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from cli_helpers import run_cli
from referencing import Registry, Resource
from test_image import make_artifacts

from slidesvc import k8s
from slidesvc.image import build_image

KNATIVE_SCHEMA = Path(__file__).parent / "data" / "knative-service-v1.schema.json"
PREFIX = "127.0.0.1:5000/decks"
HOST = "decks.example.org"
ENV = {"SOURCE_DATE_EPOCH": "1700000000"}


@pytest.fixture(scope="module")
def deck_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two decks (one whose slug is not a DNS label) and their images as OCI layouts."""
    root = tmp_path_factory.mktemp("k8s")
    decks, images = root / "decks", root / "images"
    decks.mkdir()
    for name, slug, title in (
        ("talk.md", "talk", "A Talk"),
        ("2024 Keynote.md", "2024-keynote", "Keynote"),
    ):
        (decks / name).write_text(f"# {title}\n")
        artifacts = make_artifacts(root / "artifacts" / slug, slug, title)
        build_image(None, images / slug, artifacts_dir=artifacts, env=ENV)
    return decks, images


def run_k8s(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("k8s", *args, env=ENV, timeout=600)


@pytest.fixture(scope="module")
def plain(deck_set: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    decks, images = deck_set
    out = tmp_path_factory.mktemp("manifests") / "k8s"
    proc = run_k8s(
        str(decks),
        "-o",
        str(out),
        "--images",
        str(images),
        "--image-prefix",
        PREFIX,
        "--host",
        HOST,
    )
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="module")
def knative(deck_set: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    decks, images = deck_set
    out = tmp_path_factory.mktemp("manifests") / "kn"
    proc = run_k8s(
        str(decks), "-o", str(out), "--images", str(images), "--knative", "--image-prefix", PREFIX
    )
    assert proc.returncode == 0, proc.stderr
    return out


def documents(folder: Path) -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted(folder.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
    ]


def layout_digest(layout: Path) -> str:
    return str(json.loads((layout / "index.json").read_text())["manifests"][0]["digest"])


def knative_validator() -> jsonschema.Draft202012Validator:
    version = kubernetes_validate.utils.latest_version()
    defs = kubernetes_validate.utils.schema_contents(
        f"kubernetes-json-schema/v{version}-local-strict/_definitions.json", version
    )
    schema = json.loads(KNATIVE_SCHEMA.read_text())
    registry: Registry = Resource.from_contents(defs) @ Registry()
    return jsonschema.Draft202012Validator(schema, registry=registry)


def test_every_manifest_passes_kubernetes_validate_strict(plain: Path) -> None:
    """kubernetes-validate --strict accepts every Deployment, Service and the Ingress."""
    files = sorted(str(p) for p in plain.glob("*.yaml"))
    assert [Path(f).name for f in files] == ["2024-keynote.yaml", "ingress.yaml", "talk.yaml"]
    proc = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", *files],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("passed") == 5  # 2 Deployments, 2 Services, 1 Ingress
    assert "WARN" not in proc.stdout


def test_kubernetes_validate_would_catch_a_mistake(plain: Path, tmp_path: Path) -> None:
    """The strict schemas reject an unknown field: the validation above can fail."""
    doc = documents(plain)[0]
    broken = copy.deepcopy(doc)
    broken["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFS"] = True
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken))
    proc = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", str(path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0


def test_images_are_pinned_by_digest(plain: Path, deck_set: tuple[Path, Path]) -> None:
    """Each Deployment runs PREFIX/<slug>@<the digest of that deck's image>."""
    _, images = deck_set
    deployments = {
        d["metadata"]["labels"]["slidesvc.dev/slug"]: d
        for d in documents(plain)
        if d["kind"] == "Deployment"
    }
    assert set(deployments) == {"talk", "2024-keynote"}
    for slug, deployment in deployments.items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["image"] == f"{PREFIX}/{slug}@{layout_digest(images / slug)}"


def test_pods_are_locked_down(plain: Path) -> None:
    """Non-root, read-only root, no capabilities, RuntimeDefault seccomp, no API token."""
    for doc in documents(plain):
        if doc["kind"] != "Deployment":
            continue
        pod = doc["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"] == {
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        security = pod["containers"][0]["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] == 65532
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}


def test_probes_and_resources(plain: Path) -> None:
    """Startup, readiness and liveness on /healthz; memory sized from the measured RSS."""
    for doc in documents(plain):
        if doc["kind"] != "Deployment":
            continue
        container = doc["spec"]["template"]["spec"]["containers"][0]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"] == {"path": "/healthz", "port": 8080}
        resources = container["resources"]
        request = int(resources["requests"]["memory"].removesuffix("Mi"))
        limit = int(resources["limits"]["memory"].removesuffix("Mi"))
        assert k8s.BASE_RSS_MIB < request < limit
        assert {"cpu", "memory"} <= set(resources["limits"])


def test_one_ingress_routes_each_slug_to_its_service(plain: Path) -> None:
    """/<slug>/... goes to the deck's Service, rewritten to the deck's own /...; public URL set."""
    (ingress,) = [d for d in documents(plain) if d["kind"] == "Ingress"]
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == HOST
    routes = {p["path"]: p["backend"]["service"]["name"] for p in rule["http"]["paths"]}
    assert routes == {"/talk/(.*)": "talk", "/2024-keynote/(.*)": "deck-2024-keynote"}
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/rewrite-target"] == "/$1"
    services = {d["metadata"]["name"] for d in documents(plain) if d["kind"] == "Service"}
    assert services == set(routes.values())
    (talk,) = [
        d for d in documents(plain) if d["kind"] == "Deployment" and d["metadata"]["name"] == "talk"
    ]
    env = {e["name"]: e for e in talk["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["SLIDESVC_PUBLIC_URL"]["value"] == f"https://{HOST}/talk/"
    assert env["SLIDESVC_PRESENTER_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "talk-presenter"


def test_knative_services_match_the_knative_schema(
    knative: Path, deck_set: tuple[Path, Path]
) -> None:
    """One Knative Service per deck, valid, scaling to zero, pinned by digest, locked down."""
    _, images = deck_set
    validator = knative_validator()
    docs = documents(knative)
    assert len(docs) == 2 and not (knative / "ingress.yaml").exists()
    for doc in docs:
        validator.validate(doc)
        template = doc["spec"]["template"]
        assert template["metadata"]["annotations"]["autoscaling.knative.dev/min-scale"] == "0"
        container = template["spec"]["containers"][0]
        slug = doc["metadata"]["labels"]["slidesvc.dev/slug"]
        assert container["image"] == f"{PREFIX}/{slug}@{layout_digest(images / slug)}"
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": 8080}
        assert container["ports"] == [{"name": "http1", "containerPort": 8080}]


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c: c.update(startupProbe={"httpGet": {"path": "/healthz"}}),
        lambda c: c["ports"].append({"containerPort": 9090}),
        lambda c: c["securityContext"].update(privileged=True),
        lambda c: c["readinessProbe"].update(exec={"command": ["true"]}),
    ],
    ids=["startup-probe", "second-port", "privileged", "exec-probe"],
)
def test_knative_schema_rejects_what_knative_rejects(knative: Path, mutate: Any) -> None:
    """The schema is not a rubber stamp: fields Knative refuses fail validation."""
    doc = copy.deepcopy(documents(knative)[0])
    mutate(doc["spec"]["template"]["spec"]["containers"][0])
    with pytest.raises(jsonschema.ValidationError):
        knative_validator().validate(doc)


def test_manifests_are_reproducible(
    deck_set: tuple[Path, Path], plain: Path, tmp_path: Path
) -> None:
    """The same decks and images give byte-identical files."""
    decks, images = deck_set
    out = tmp_path / "again"
    k8s.write_manifests(decks, out, prefix=PREFIX, host=HOST, images=images)
    for path in plain.glob("*.yaml"):
        assert (out / path.name).read_bytes() == path.read_bytes()


def test_empty_folder_is_a_clear_error(tmp_path: Path) -> None:
    """No decks: exit 1, one message, nothing written."""
    proc = run_k8s(str(tmp_path), "-o", str(tmp_path / "out"))
    assert proc.returncode == 1
    assert "no decks" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_missing_image_is_a_clear_error(deck_set: tuple[Path, Path], tmp_path: Path) -> None:
    """--images without a deck's layout names the folder it looked in; nothing written."""
    decks, _ = deck_set
    proc = run_k8s(str(decks), "-o", str(tmp_path / "out"), "--images", str(tmp_path))
    assert proc.returncode == 1
    assert (
        "not an image written by `slidesvc image`" in proc.stderr and "Traceback" not in proc.stderr
    )
    assert not (tmp_path / "out").exists()


def test_clashing_slugs_are_refused(tmp_path: Path) -> None:
    """Two files with one slug would fight over one Deployment."""
    (tmp_path / "My Talk.md").write_text("# a\n")
    (tmp_path / "my-talk.md").write_text("# b\n")
    proc = run_k8s(str(tmp_path), "-o", str(tmp_path / "out"))
    assert proc.returncode == 1 and "same slug 'my-talk'" in proc.stderr


def test_without_images_the_digests_are_those_of_slidesvc_image(tmp_path: Path) -> None:
    """Built here, a deck's image has the digest `slidesvc image` gives it (reproducible builds)."""
    decks = tmp_path / "decks"
    decks.mkdir()
    (decks / "short.md").write_text("# Short\n\nOne slide.\n")
    proc = run_k8s(str(decks), "-o", str(tmp_path / "k8s"), "--image-prefix", PREFIX)
    assert proc.returncode == 0, proc.stderr
    image = run_cli("image", decks / "short.md", "-o", tmp_path / "img", env=ENV, timeout=600)
    assert image.returncode == 0, image.stderr
    (deployment, _) = yaml.safe_load_all((tmp_path / "k8s" / "short.yaml").read_text())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"{PREFIX}/short@{layout_digest(tmp_path / 'img')}"
