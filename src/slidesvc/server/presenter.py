"""Presenter authentication without the token ever appearing in a logged URL.

The start-up banner prints ``…/presenter#token=TOKEN``; a fragment is never
sent to a server. `login_page` is what ``GET /presenter`` answers without a
session: its one script (allowed by CSP hash) reads the fragment, POSTs the
token in the request body, clears the fragment and reloads; a form works
without the fragment too. A valid POST sets ``slidesvc_presenter``, an
HttpOnly, SameSite=Strict cookie scoped to the deck's path that holds an
HMAC derived from the token, not the token. Every comparison is constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html

COOKIE = "slidesvc_presenter"
_SESSION_MESSAGE = b"slidesvc presenter session v1"

_LOGIN_SCRIPT = """
(function () {
  var m = /^#token=([^&]+)$/.exec(location.hash), token;
  if (!m) return;
  try { token = decodeURIComponent(m[1]); } catch (e) { return; }
  history.replaceState(null, "", location.pathname + location.search);
  fetch("presenter", {method: "POST", credentials: "same-origin",
    headers: {"Content-Type": "application/x-www-form-urlencoded"},
    body: "token=" + encodeURIComponent(token)}).then(function (r) {
      if (r.ok || r.redirected) location.reload();
      else document.getElementById("msg").textContent = "That token is not valid.";
    });
})();
"""
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_LOGIN_SCRIPT.encode()).digest()).decode()
LOGIN_CSP = (
    f"default-src 'none'; script-src 'sha256-{_SCRIPT_HASH}'; style-src 'unsafe-inline'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'"
)


def session_value(token: str) -> str:
    """The cookie value proving knowledge of `token` (not the token itself)."""
    return hmac.new(token.encode(), _SESSION_MESSAGE, hashlib.sha256).hexdigest()


def token_ok(candidate: str, token: str) -> bool:
    """Constant-time check of a submitted token."""
    return hmac.compare_digest(candidate.encode(), token.encode())


def cookie_ok(cookie: str | None, token: str) -> bool:
    """Constant-time check of a session cookie."""
    expected = session_value(token).encode()
    return cookie is not None and hmac.compare_digest(cookie.encode(), expected)


def login_page(title: str, *, failed: bool = False) -> bytes:
    """The small page that turns ``#token=…`` (or a pasted token) into a session."""
    message = "That token is not valid." if failed else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>Presenter · {html.escape(title)}</title>"
        "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:30em;margin:4em auto;"
        "padding:0 1em}input{font:inherit;width:100%;margin:.5em 0}</style></head><body>"
        f"<h1>Presenter view</h1><p>{html.escape(title)}</p>"
        '<form method="post" action="presenter"><label>Presenter token '
        '<input name="token" type="password" autocomplete="current-password" required>'
        '</label><button type="submit">Open the presenter view</button></form>'
        f'<p id="msg" role="alert">{message}</p>'
        f"<script>{_LOGIN_SCRIPT}</script></body></html>"
    ).encode()
