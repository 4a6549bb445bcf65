"""Local files a deck uses: confined path resolution, type sniffing, storage.

Every image (and every file a deck-local theme points at with ``url()``) is
resolved relative to the file that mentions it, with symlinks resolved, and
must stay inside the deck's folder. The bytes are read once and stored under
a short content hash, so an image used on fifty slides is inlined once.
Problems raise `AssetError` with a message; the caller adds file and line.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from slidesvc.model import ASSET_SCHEME, Asset

MAX_ASSET_BYTES = 64 * 1024 * 1024
"""A generous cap so a stray video renamed ``.png`` cannot exhaust memory."""

_EXTENSION_MIME = {
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".css": "text/css",
}


class AssetError(Exception):
    """A local file cannot be used; the message says why and what to do."""


def is_remote(ref: str) -> bool:
    """True for ``http(s)://`` and protocol-relative URLs (never fetched)."""
    low = ref[:8].lower()
    return low.startswith(("http://", "https://", "//"))


def is_inline(ref: str) -> bool:
    """True for references that need no file: ``data:`` URIs, fragments, assets."""
    return ref.startswith(("data:", "#", ASSET_SCHEME))


def sniff_image_mime(data: bytes) -> str | None:
    """The image type from the first bytes, or None when it is no supported image."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    head = data[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<svg", b"<?xml", b"<!--", b"<!doctype svg")) and b"<svg" in head:
        return "image/svg+xml"
    return None


class AssetStore:
    """The deck's local files, each stored once under its content hash."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.assets: dict[str, Asset] = {}
        self._by_path: dict[Path, Asset] = {}
        self._resolved: dict[tuple[str, Path], Path] = {}

    def resolve(self, ref: str, base: Path) -> Path:
        """The absolute path of ``ref`` (relative to folder ``base``), confined to the root."""
        known = self._resolved.get((ref, base))
        if known is None:
            known = self._resolved[(ref, base)] = self._resolve(ref, base)
        return known

    def _resolve(self, ref: str, base: Path) -> Path:
        clean = ref.split("#", 1)[0].split("?", 1)[0]
        if "%" in clean:
            from urllib.parse import unquote

            clean = unquote(clean)
        clean = clean.strip()
        if not clean:
            raise AssetError(f"empty file reference {ref!r}")
        if ":" in clean.split("/", 1)[0] and not Path(clean).is_absolute():
            raise AssetError(f"unsupported URL {ref!r}: use a path relative to the deck")
        candidate = Path(clean)
        if candidate.is_absolute():
            raise AssetError(f"absolute path {ref!r}: use a path relative to the deck's folder")
        target = (base / candidate).resolve()
        if not target.is_relative_to(self.root):
            raise AssetError(
                f"{ref!r} is outside the deck's folder {self.root}: move the file next to the deck"
            )
        return target

    def add(self, ref: str, base: Path) -> Asset:
        """Read image ``ref`` once, store it in `assets` and return it (raises `AssetError`)."""
        asset = self.load(ref, base)
        self.assets[asset.id] = self.assets.get(asset.id, asset)
        return asset

    def load(self, ref: str, base: Path, *, image: bool = True) -> Asset:
        """Read ``ref`` once without storing it as a deck image (theme fonts, CSS images)."""
        target = self.resolve(ref, base)
        known = self._by_path.get(target)
        if known is not None:
            return known
        if not target.is_file():
            raise AssetError(f"{'image' if image else 'file'} not found: {ref}")
        try:
            if target.stat().st_size > MAX_ASSET_BYTES:
                raise AssetError(f"{ref} is larger than {MAX_ASSET_BYTES // 2**20} MiB")
            data = target.read_bytes()
        except OSError as exc:
            raise AssetError(f"cannot read {ref}: {exc.strerror}") from exc
        mime = sniff_image_mime(data)
        if mime is None:
            mime = None if image else _EXTENSION_MIME.get(target.suffix.lower())
            if mime is None:
                raise AssetError(f"{ref} is not a PNG, JPEG, GIF, WebP or SVG image")
        asset_id = hashlib.sha256(data).hexdigest()[:12]
        asset = Asset(asset_id, target, mime, data)
        self._by_path[target] = asset
        return asset
