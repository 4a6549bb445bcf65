"""Settings: arguments over environment over defaults; origins checked strictly."""

from __future__ import annotations

from argparse import Namespace
from typing import Any

import pytest

from slidesvc.errors import ServeError
from slidesvc.server.config import (
    frame_ancestors,
    normalize_public_url,
    settings_from_args,
    validate_origin,
)


def args(**kw: Any) -> Namespace:
    base: dict[str, Any] = dict(
        host=None, port=None, public_url=None, embed_origin=[], presenter_token=None, watch=False
    )
    return Namespace(**{**base, **kw})


@pytest.mark.parametrize(
    ("origin", "normal"),
    [
        ("https://wiki.example.org", "https://wiki.example.org"),
        ("https://Wiki.Example.org/", "https://wiki.example.org"),
        ("http://127.0.0.2:8080", "http://127.0.0.2:8080"),
        ("https://*.example.org", "https://*.example.org"),
        ("http://[::1]:9000", "http://[::1]:9000"),
        ("*", "*"),
    ],
)
def test_good_origins(origin: str, normal: str) -> None:
    """Well-formed origins are accepted and normalised."""
    assert validate_origin(origin, source="--embed-origin") == normal


@pytest.mark.parametrize(
    "origin",
    [
        "https://wiki.example.org/path",
        "https://wiki.*.org",
        "https://*",
        "*.example.org",
        "https://wiki.example.org extra",
        "https://a.org;script-src *",
        "https://a.org\r\nX-Evil: 1",
        "'unsafe-inline'",
        "'self'",
        "wiki.example.org",
        "ftp://wiki.example.org",
        "javascript:alert(1)",
        "https://user@wiki.example.org",
        "https://wiki.example.org:99999",
        "https://-bad-.org",
        "",
    ],
)
def test_bad_origins_are_start_up_errors(origin: str) -> None:
    """Malformed origins raise a ServeError naming the option and the value."""
    with pytest.raises(ServeError, match="--embed-origin") as info:
        validate_origin(origin, source="--embed-origin")
    assert "\n" not in str(info.value).replace("\\n", "")


def test_frame_ancestors_default_is_any() -> None:
    """No allowlist means any origin may frame /embed."""
    assert frame_ancestors(()) == "*"
    assert frame_ancestors(("https://a.org", "http://b.org:81")) == "https://a.org http://b.org:81"
    assert frame_ancestors(("https://a.org", "*")) == "*"


def test_arguments_win_over_environment() -> None:
    """--port beats SLIDESVC_PORT beats PORT; env origins add to arguments."""
    env = {
        "SLIDESVC_PORT": "9001",
        "PORT": "9002",
        "SLIDESVC_EMBED_ORIGINS": "https://a.org, https://b.org",
        "SLIDESVC_PRESENTER_TOKEN": "env-token-123",
        "SLIDESVC_PUBLIC_URL": "https://decks.example.org/talk",
    }
    s = settings_from_args(args(port=9000, embed_origin=["https://c.org"]), env)
    assert s.port == 9000
    assert s.embed_origins == ("https://c.org", "https://a.org", "https://b.org")
    assert s.presenter_token == "env-token-123" and not s.token_generated
    assert s.public_url == "https://decks.example.org/talk/"
    assert settings_from_args(args(), env).port == 9001
    assert settings_from_args(args(), {"PORT": "9002"}).port == 9002
    assert settings_from_args(args(), {}).port == 8000


def test_random_token_when_none_given() -> None:
    """Without a token a random one is made (and flagged for the banner)."""
    a, b = settings_from_args(args(), {}), settings_from_args(args(), {})
    assert a.token_generated and len(a.presenter_token) >= 24
    assert a.presenter_token != b.presenter_token


@pytest.mark.parametrize(
    ("kw", "env", "match"),
    [
        ({}, {"PORT": "http"}, "PORT: 'http'"),
        ({}, {"SLIDESVC_PORT": "70000"}, "SLIDESVC_PORT"),
        ({"public_url": "ftp://x.org/"}, {}, "--public-url"),
        ({"public_url": "http://x.org/?a=1"}, {}, "--public-url"),
        ({"public_url": 'http://x.org/"><script>'}, {}, "--public-url"),
        ({"presenter_token": "short"}, {}, "--presenter-token"),
        ({}, {"SLIDESVC_EMBED_ORIGINS": "https://a.org/x"}, "--embed-origin"),
    ],
)
def test_bad_settings_name_the_option(kw: dict[str, Any], env: dict[str, str], match: str) -> None:
    """Each bad value is a ServeError naming the option."""
    with pytest.raises(ServeError, match=match):
        settings_from_args(args(**kw), env)


def test_default_public_url_uses_bound_port() -> None:
    """The default public URL is http://HOST:PORT/ with the real port."""
    s = settings_from_args(args(port=0), {}).with_bound_port(43210)
    assert s.public_url == "http://127.0.0.1:43210/"
    assert (
        settings_from_args(args(host="::1"), {}).with_bound_port(1).public_url == "http://[::1]:1/"
    )
    assert normalize_public_url("HTTPS://Example.org/decks") == "https://example.org/decks/"
