"""`slidesvc k8s`: Kubernetes (or Knative) manifests that run every deck of a folder.

Past one machine, each deck's image (`slidesvc.image`) runs as its own
workload: a Deployment and a Service per deck plus one Ingress that routes
``/<slug>/`` to each deck (the publisher's URL layout), or with ``--knative``
a Knative Service per deck that scales to zero and starts on the first
request. Images are pinned by digest: the digests come from images already
built (``--images DIR`` holding one OCI layout per slug, as ``slidesvc image
DECK.md -o DIR/<slug>`` writes them) or from building them here, which gives
the same digests since images are reproducible; ``--push`` uploads them.
Every pod runs as non-root on a read-only root filesystem with all
capabilities dropped and the RuntimeDefault seccomp profile, with probes on
``/healthz`` and memory sized from the server's measured footprint.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import struct
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from slidesvc import image as img
from slidesvc import oci
from slidesvc.errors import ImageBuildError
from slidesvc.fsutil import atomic_dir
from slidesvc.slug import slugify

BASE_RSS_MIB = 28
"""Resident memory of the server in its image with a small deck (bench/image_bench.py)."""
RSS_PER_ARTIFACT_BYTE = 3
"""The server holds each artifact in memory, plus compressed copies of the pages."""
APP_LABEL = "app.kubernetes.io/name"
_DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")


@dataclass(frozen=True)
class DeckImage:
    """What the manifests need to know about one deck's image."""

    slug: str
    digest: str
    """``sha256:...`` of the image manifest."""
    deck_bytes: int
    """Unpacked size of the deck layer (the artifacts and serving code)."""

    @property
    def name(self) -> str:
        """The Kubernetes object name: the slug when it is a DNS-1035 label, else made one."""
        if _DNS1035.fullmatch(self.slug) and len(self.slug) <= 52:
            return self.slug
        return ("deck-" + self.slug)[:52].rstrip("-")

    def reference(self, prefix: str) -> str:
        return f"{prefix.rstrip('/')}/{self.slug}@{self.digest}"

    @property
    def memory_request_mib(self) -> int:
        estimate = BASE_RSS_MIB + RSS_PER_ARTIFACT_BYTE * self.deck_bytes / 2**20
        return 16 * math.ceil(estimate * 1.25 / 16)

    @property
    def memory_limit_mib(self) -> int:
        return max(128, 2 * self.memory_request_mib)


# --- manifests -------------------------------------------------------------------------------


def _security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _probe(period: int, failures: int) -> dict[str, Any]:
    # Knative accepts a probe port only when it is the serving port; it is.
    return {
        "httpGet": {"path": "/healthz", "port": img.PORT},
        "periodSeconds": period,
        "failureThreshold": failures,
        "timeoutSeconds": 2,
    }


def _container(deck: DeckImage, prefix: str, public_url: str, *, knative: bool) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "deck",
        "image": deck.reference(prefix),
        "ports": [{"name": "http1" if knative else "http", "containerPort": img.PORT}],
        "env": [
            {"name": "SLIDESVC_PUBLIC_URL", "value": public_url},
            {
                "name": "SLIDESVC_PRESENTER_TOKEN",
                "valueFrom": {
                    "secretKeyRef": {
                        "name": f"{deck.name}-presenter",
                        "key": "token",
                        "optional": True,
                    }
                },
            },
        ],
        "resources": {
            "requests": {"cpu": "10m", "memory": f"{deck.memory_request_mib}Mi"},
            "limits": {"cpu": "500m", "memory": f"{deck.memory_limit_mib}Mi"},
        },
        "readinessProbe": _probe(5, 2),
        "livenessProbe": _probe(15, 3),
        "securityContext": _security_context(),
    }
    if (
        not knative
    ):  # Knative has its own start-up handling and rejects startupProbe in older versions
        container["startupProbe"] = _probe(1, 30)
        container["imagePullPolicy"] = "IfNotPresent"
    return container


def _labels(deck: DeckImage) -> dict[str, str]:
    return {
        APP_LABEL: deck.name,
        "app.kubernetes.io/part-of": "slidesvc",
        "slidesvc.dev/slug": deck.slug,
    }


def deployment(deck: DeckImage, prefix: str, public_url: str) -> dict[str, Any]:
    """One replica: the live channel (presenter position) lives in the process."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": deck.name, "labels": _labels(deck)},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {APP_LABEL: deck.name}},
            "template": {
                "metadata": {"labels": _labels(deck)},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "terminationGracePeriodSeconds": 10,
                    "containers": [_container(deck, prefix, public_url, knative=False)],
                },
            },
        },
    }


def service(deck: DeckImage) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": deck.name, "labels": _labels(deck)},
        "spec": {
            "selector": {APP_LABEL: deck.name},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }


def ingress(decks: Sequence[DeckImage], host: str) -> dict[str, Any]:
    """``https://host/<slug>/...`` to each deck's ``/...``, as the publisher lays URLs out.

    Written for ingress-nginx (the regex path and the rewrite are its
    annotations; no configuration snippets, which it disables by default).
    A deck's address ends with a slash, so the viewer's relative URLs stay
    under the deck.
    """
    paths = [
        {
            "path": f"/{deck.slug}/(.*)",
            "pathType": "ImplementationSpecific",
            "backend": {"service": {"name": deck.name, "port": {"name": "http"}}},
        }
        for deck in decks
    ]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "slidesvc-decks",
            "labels": {"app.kubernetes.io/part-of": "slidesvc"},
            "annotations": {
                "nginx.ingress.kubernetes.io/use-regex": "true",
                "nginx.ingress.kubernetes.io/rewrite-target": "/$1",
            },
        },
        "spec": {
            "ingressClassName": "nginx",
            "rules": [{"host": host, "http": {"paths": paths}}],
        },
    }


def knative_service(deck: DeckImage, prefix: str, public_url: str) -> dict[str, Any]:
    """A Knative Service: zero pods while nobody watches, one started by the first request."""
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": deck.name, "labels": _labels(deck)},
        "spec": {
            "template": {
                "metadata": {
                    "labels": _labels(deck),
                    "annotations": {
                        "autoscaling.knative.dev/min-scale": "0",
                        # One pod: followers and the presenter must share the live channel.
                        "autoscaling.knative.dev/max-scale": "1",
                        "autoscaling.knative.dev/scale-to-zero-pod-retention-period": "10m",
                    },
                },
                "spec": {
                    "containerConcurrency": 0,
                    "timeoutSeconds": 3600,  # live-follow WebSockets stay open for a talk
                    "containers": [_container(deck, prefix, public_url, knative=True)],
                },
            }
        },
    }


def manifests(
    decks: Sequence[DeckImage], *, prefix: str, host: str, knative: bool = False
) -> dict[str, list[dict[str, Any]]]:
    """File name -> the documents it holds, for every deck (and the shared Ingress)."""
    files: dict[str, list[dict[str, Any]]] = {}
    for deck in decks:
        if knative:
            url = f"https://{deck.name}.{host}/"
            files[f"{deck.slug}.yaml"] = [knative_service(deck, prefix, url)]
        else:
            url = f"https://{host}/{deck.slug}/"
            files[f"{deck.slug}.yaml"] = [deployment(deck, prefix, url), service(deck)]
    if decks and not knative:
        files["ingress.yaml"] = [ingress(decks, host)]
    return files


def to_yaml(documents: Iterable[dict[str, Any]]) -> str:
    return "".join("---\n" + yaml.safe_dump(doc, sort_keys=False) for doc in documents)


# --- where the digests come from -------------------------------------------------------------


def image_from_layout(slug: str, layout: Path) -> DeckImage:
    """A deck's digest and deck-layer size from an OCI layout written by `slidesvc image`."""
    try:
        index = json.loads((layout / "index.json").read_bytes())
        digest = index["manifests"][0]["digest"]
        manifest = json.loads(
            (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()
        )
        deck_layer = (
            layout / "blobs" / "sha256" / manifest["layers"][-1]["digest"].removeprefix("sha256:")
        )
        with deck_layer.open("rb") as f:
            f.seek(-4, 2)
            (unpacked,) = struct.unpack("<I", f.read(4))  # gzip ISIZE: the size mod 2**32
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise ImageBuildError(
            f"{layout}: not an image written by `slidesvc image` ({exc})"
        ) from exc
    return DeckImage(slug, str(digest), int(unpacked))


def deck_files(decks_dir: Path) -> list[Path]:
    if not decks_dir.is_dir():
        raise ImageBuildError(f"{decks_dir}: not a folder of decks")
    decks = sorted(p for p in decks_dir.glob("*.md") if p.is_file())
    if not decks:
        raise ImageBuildError(f"{decks_dir}: no decks (*.md) in this folder")
    slugs: dict[str, Path] = {}
    for deck in decks:
        other = slugs.setdefault(slugify(deck), deck)
        if other != deck:
            raise ImageBuildError(f"{deck}: same slug {slugify(deck)!r} as {other.name}")
    return decks


def deck_images(
    decks: Sequence[Path], *, images: Path | None, prefix: str, push: bool
) -> list[DeckImage]:
    """Each deck's image: read from `images`, or built (and pushed) here."""
    found = []
    first_repository = ""  # later decks mount the shared layers from the first one
    for deck in decks:
        slug = slugify(deck)
        if images is not None:
            found.append(image_from_layout(slug, images / slug))
            continue
        with tempfile.TemporaryDirectory(prefix="slidesvc-k8s-") as tmp:
            layout = Path(tmp) / slug
            ref = f"{prefix.rstrip('/')}/{slug}:latest"
            push_to = ref if push else None
            img.build_image(deck, layout, push=push_to, tag=ref, mount_from=first_repository)
            found.append(image_from_layout(slug, layout))
            if push and not first_repository:
                first_repository = oci.Reference.parse(ref).name
    return found


def write_manifests(
    decks_dir: Path,
    out_dir: Path,
    *,
    prefix: str,
    host: str,
    knative: bool = False,
    images: Path | None = None,
    push: bool = False,
) -> list[Path]:
    """`slidesvc k8s`: one YAML file per deck (plus ingress.yaml) in `out_dir`, atomically."""
    decks = deck_images(deck_files(decks_dir), images=images, prefix=prefix, push=push)
    files = manifests(decks, prefix=prefix, host=host, knative=knative)
    with atomic_dir(out_dir) as tmp:
        for name, documents in files.items():
            (tmp / name).write_text(to_yaml(documents), encoding="utf-8")
    return [out_dir / name for name in files]


def k8s_from_args(args: argparse.Namespace) -> int:
    """The ``k8s`` subcommand."""
    written = write_manifests(
        Path(args.source),
        Path(args.output),
        prefix=args.image_prefix,
        host=args.host,
        knative=args.knative,
        images=Path(args.images) if getattr(args, "images", None) else None,
        push=bool(getattr(args, "push", False)),
    )
    for path in written:
        print(f"wrote {path}")
    return 0
