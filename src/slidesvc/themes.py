"""Theme lookup: a theme name or a deck-local ``.css`` path -> final CSS text.

Named themes are ``themes/<name>.css`` shipped with slidesvc (inside the
installed package, or at the repository root in a checkout). Marp's
built-in names map to slidesvc themes. A deck-local theme is confined to the
deck's folder and its ``url()`` references are inlined as data URIs, so the
result needs no file at view time. A theme's first line may carry settings
(``/* slidesvc-theme: pygments=github-dark */``). Every theme, bundled or
local, is applied on top of the base rules (``themes/_base.css``), so a theme
only sets custom properties and adds what makes it different.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from slidesvc.assets import AssetError, AssetStore, is_inline, is_remote
from slidesvc.errors import DeckError, Diagnostic

DEFAULT_THEME = "default"
BASE_CSS = "_base.css"
MARP_THEMES = {"gaia": "dark", "uncover": "default"}
"""Marp's built-in theme names that have no slidesvc theme of the same name."""

_SETTINGS = re.compile(r"/\*\s*slidesvc-theme:(?P<body>[^*]*)\*/")
_URL = re.compile(r"""url\(\s*(?P<q>['"]?)(?P<ref>[^'")]+?)(?P=q)\s*\)""")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Theme:
    """A resolved theme."""

    name: str
    """The theme's name, or the deck-relative path of a local ``.css`` file."""
    css: str
    pygments_style: str = "default"
    diagnostics: tuple[Diagnostic, ...] = field(default=())


@cache
def themes_dir() -> Path:
    """The folder of named themes: in the package when installed, else the checkout's."""
    package = Path(__file__).resolve().parent
    installed = package / "themes"
    if installed.is_dir():
        return installed
    return package.parents[1] / "themes"


def available_themes() -> list[str]:
    """Names of the themes shipped with slidesvc."""
    return sorted(p.stem for p in themes_dir().glob("*.css") if not p.name.startswith("_"))


def theme_settings(css: str) -> dict[str, str]:
    """``key=value`` settings from the theme's first-line comment."""
    first = css.lstrip("\ufeff").split("\n", 1)[0]
    match = _SETTINGS.search(first)
    if match is None:
        return {}
    pairs = (item.split("=", 1) for item in match.group("body").split() if "=" in item)
    return {key.strip(): value.strip() for key, value in pairs}


def load_theme(spec: str, deck: Path, line: int, store: AssetStore) -> Theme:
    """Resolve ``spec`` (the ``theme:`` value, written at ``line`` of ``deck``)."""
    if spec.lower().endswith(".css"):
        return _load_local(spec, deck, line, store)
    warnings: list[Diagnostic] = []
    name = spec
    folder = themes_dir()
    if not _NAME.match(name) or not (folder / f"{name}.css").is_file():
        mapped = MARP_THEMES.get(name.lower())
        if mapped is not None and (folder / f"{mapped}.css").is_file():
            name = mapped
        else:
            if name != DEFAULT_THEME:
                known = ", ".join(available_themes()) or "none installed"
                warnings.append(
                    Diagnostic(
                        deck,
                        line,
                        f"unknown theme {spec!r}, using {DEFAULT_THEME!r} "
                        f"(available: {known}; or a path ending in .css)",
                    )
                )
            name = DEFAULT_THEME
    css = _read_named(name)
    if css is None:
        warnings.append(Diagnostic(deck, 0, f"theme file {folder / name}.css is missing"))
        css = ""
    return _theme(name, css, warnings)


def _read_named(name: str) -> str | None:
    try:
        return (themes_dir() / f"{name}.css").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def base_css() -> str:
    """The rules every theme builds on ("" when a themes folder has none)."""
    return _read_named(BASE_CSS.removesuffix(".css")) or ""


def _theme(name: str, css: str, warnings: list[Diagnostic]) -> Theme:
    style = theme_settings(css).get("pygments", "default")
    return Theme(name, base_css() + "\n" + css, style, tuple(warnings))


def _load_local(spec: str, deck: Path, line: int, store: AssetStore) -> Theme:
    try:
        target = store.resolve(spec, deck.parent)
    except AssetError as exc:
        raise DeckError(deck, line, f"theme: {exc}") from None
    if not target.is_file():
        raise DeckError(deck, line, f"theme file not found: {spec} (relative to the deck)")
    try:
        css = target.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DeckError(deck, line, f"cannot read theme {spec}: {exc}") from None

    try:
        return _theme(spec, inline_urls(css, target.parent, store), [])
    except AssetError as exc:
        raise DeckError(deck, line, f"theme {spec}: {exc}") from None


def inline_urls(css: str, base: Path, store: AssetStore) -> str:
    """Local ``url()`` references (relative to folder ``base``) as data URIs.

    Raises `AssetError` for a missing file or one outside the deck's folder;
    remote and ``data:`` URLs are left alone.
    """
    if "url(" not in css:
        return css

    def inline(match: re.Match[str]) -> str:
        ref = match.group("ref")
        if is_remote(ref) or is_inline(ref):
            return match.group(0)
        return f'url("{store.load(ref, base, image=False).data_uri()}")'

    return _URL.sub(inline, css)
