"""The publisher with real `slidesvc serve` children, real sockets, real signals."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from process_helpers import alive, free_port
from yarl import URL

from slidesvc.publish import PUBLISHER, PublishSettings, create_app, supervisor
from slidesvc.publish.supervisor import DeckState

DECK = """\
---
title: {title}
author: Ann Author
date: 2026-03-0{n}
---

# {title}

Opening

---

## Second slide

* one
* two

???

Speaker note for {title}.
"""


def write_deck(folder: Path, slug: str, n: int, title: str | None = None) -> Path:
    path = folder / f"{slug}.md"
    path.write_text(DECK.format(title=title or f"Talk {slug}", n=n), encoding="utf-8")
    return path


def three_decks(tmp_path: Path) -> Path:
    """A decks folder with alpha, beta and gamma."""
    folder = tmp_path / "decks"
    folder.mkdir()
    for n, slug in enumerate(("alpha", "beta", "gamma"), start=1):
        write_deck(folder, slug, n)
    return folder


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.1)


@pytest.fixture
def decks(tmp_path: Path) -> Path:
    return three_decks(tmp_path)


@dataclass
class Front:
    """A running publisher and a client session pointed at it."""

    url: str
    app: Any
    http: aiohttp.ClientSession
    announced: list[str] = field(default_factory=list)

    @property
    def publisher(self) -> Any:
        return self.app[PUBLISHER]

    async def get(self, path: str, **kw: Any) -> tuple[int, bytes, Any]:
        async with self.http.get(self.url + path.lstrip("/"), **kw) as resp:
            return resp.status, await resp.read(), resp.headers

    async def status(self) -> dict[str, dict[str, Any]]:
        async with self.http.get(self.url + "_status") as resp:
            assert resp.status == 200
            data = await resp.json()
        return {d["slug"]: d for d in data["decks"]}


StartFront = Callable[..., Awaitable[Front]]


@pytest.fixture
async def start_front(decks: Path, aiohttp_server: Any) -> AsyncIterator[StartFront]:
    sessions: list[aiohttp.ClientSession] = []

    async def start(**overrides: Any) -> Front:
        port = free_port()
        settings = PublishSettings(
            decks_dir=decks, port=port, idle_timeout=0, poll_interval=0.2, stop_timeout=3
        )
        settings = replace(settings, **overrides)
        announced: list[str] = []
        app = create_app(settings, announce=announced.append)
        await aiohttp_server(app, host="127.0.0.1", port=port)
        http = aiohttp.ClientSession()
        sessions.append(http)
        return Front(f"http://127.0.0.1:{port}/", app, http, announced)

    yield start
    for http in sessions:
        await http.close()


class _Cards(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.cards: dict[str, dict[str, Any]] = {}
        self._card: dict[str, Any] | None = None
        self._field = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "li" and a.get("class") == "card":
            self._card = {"links": [], "text": "", "snippet": "", "imgs": []}
            self.cards[str(a["id"]).removeprefix("deck-")] = self._card
        elif self._card is not None:
            if tag == "a":
                self._card["links"].append(a.get("href"))
            elif tag == "img":
                self._card["imgs"].append(a.get("src"))
            elif tag == "textarea":
                self._field = "snippet"

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._field = ""

    def handle_data(self, data: str) -> None:
        if self._card is not None:
            self._card["snippet" if self._field else "text"] += data


async def test_index_lists_every_deck_without_starting_them(start_front: StartFront) -> None:
    """`/` shows title, author, date, slide count and links of each deck; no process starts."""
    front = await start_front()
    await front.publisher.catalog.settle()
    status, body, headers = await front.get("/")
    assert status == 200
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    parser = _Cards()
    parser.feed(body.decode())
    assert sorted(parser.cards) == ["alpha", "beta", "gamma"]
    alpha = parser.cards["alpha"]
    assert "Talk alpha" in alpha["text"] and "Ann Author" in alpha["text"]
    assert "2026-03-01" in alpha["text"] and "2 slides" in alpha["text"]
    assert {"alpha/", "alpha/deck.pdf"} <= set(alpha["links"])
    assert alpha["imgs"] == ["alpha/thumbnail.png"]
    assert f'src="{front.url}alpha/embed"' in alpha["snippet"]
    states = {s["state"] for s in (await front.status()).values()}
    assert states == {"stopped"}


async def test_every_route_of_every_deck_works_through_the_front_door(
    start_front: StartFront,
) -> None:
    """Deck, embed, deck.json, oEmbed and healthz of 3 decks, with public URLs under /<slug>/."""
    front = await start_front()
    for slug in ("alpha", "beta", "gamma"):
        status, body, headers = await front.get(f"/{slug}/")
        assert status == 200 and f"Talk {slug}".encode() in body
        child = front.publisher.supervisor.decks[slug].url
        await same_security_headers(front.http, headers, f"{child}/")
        status, body, headers = await front.get(f"/{slug}/embed")
        assert status == 200 and b'data-mode="embed"' in body
        await same_security_headers(front.http, headers, f"{child}/embed")
        status, body, _ = await front.get(f"/{slug}/deck.json")
        assert status == 200 and json.loads(body)["slides"] == 2
        status, body, _ = await front.get(f"/{slug}/healthz")
        assert status == 200 and json.loads(body)["deck"] == slug
        status, body, _ = await front.get(
            "/" + slug + "/oembed", params={"url": front.url + slug + "/"}
        )
        assert status == 200
        oembed = json.loads(body)
        assert f'src="{front.url}{slug}/embed"' in oembed["html"]
        assert oembed["title"] == f"Talk {slug}"
    running = await front.status()
    assert {d["state"] for d in running.values()} == {"running"}
    assert len({d["pid"] for d in running.values()}) == 3


async def same_security_headers(http: aiohttp.ClientSession, seen: Any, direct: str) -> None:
    """The front door passes the child's security headers on unchanged."""
    async with http.get(direct) as resp:
        for name in ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy"):
            assert seen.get(name) == resp.headers.get(name), name
        assert seen.get("X-Frame-Options") == resp.headers.get("X-Frame-Options")


async def test_pdf_streams_through_the_front_door(start_front: StartFront) -> None:
    """`/<slug>/deck.pdf` is the deck's PDF, one page per slide."""
    import io

    from pypdf import PdfReader

    front = await start_front()
    status, body, headers = await front.get("/beta/deck.pdf")
    assert status == 200, body[:300]
    assert headers["Content-Type"] == "application/pdf"
    assert 'filename="beta.pdf"' in headers["Content-Disposition"]
    assert len(PdfReader(io.BytesIO(body)).pages) == 2


async def test_first_requests_are_held_until_the_deck_is_healthy(start_front: StartFront) -> None:
    """Concurrent first requests all succeed and share one new process."""
    front = await start_front()
    results = await asyncio.gather(*(front.get("/alpha/deck.json") for _ in range(8)))
    assert [r[0] for r in results] == [200] * 8
    alpha = (await front.status())["alpha"]
    assert alpha["state"] == "running" and alpha["restarts"] == 0
    assert front.publisher.supervisor.decks["alpha"].requests >= 8


async def test_live_follow_through_the_front_door(start_front: StartFront) -> None:
    """A presenter's move over /<slug>/live reaches a follower connected through the door."""
    front = await start_front()
    token = front.publisher.supervisor.decks["gamma"].token
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as presenter:
        async with presenter.post(
            front.url + "gamma/presenter", data={"token": token}, allow_redirects=False
        ) as resp:
            assert resp.status == 303
            cookie = resp.cookies["slidesvc_presenter"]
            assert cookie["path"] == "/gamma/"
        async with presenter.get(front.url + "gamma/presenter") as resp:
            assert resp.status == 200 and b'data-mode="presenter"' in await resp.read()
        async with front.http.get(front.url + "gamma/presenter") as resp:
            assert b'data-mode="presenter"' not in await resp.read()  # others stay out
        async with (
            front.http.ws_connect(front.url + "gamma/live") as follower,
            presenter.ws_connect(front.url + "gamma/live") as lead,
        ):
            await lead.send_json({"slide": 2, "fragment": 1})
            while (msg := await follower.receive_json(timeout=5))["type"] != "position":
                pass  # e.g. {"type": "presenter", "connected": true}
            assert msg == {"type": "position", "slide": 2, "fragment": 1}
            # A follower without the cookie cannot move the deck.
            await follower.send_json({"slide": 1, "fragment": 0})
            while (reply := await follower.receive_json(timeout=5))["type"] != "rejected":
                pass
            assert reply["type"] == "rejected"


async def test_edit_rebuilds_and_followers_reload(start_front: StartFront, decks: Path) -> None:
    """Editing a deck file reloads its followers and refreshes the index."""
    front = await start_front()
    async with front.http.ws_connect(front.url + "alpha/live") as follower:
        await asyncio.sleep(0.2)  # connected before the edit lands
        time.sleep(0.01)  # a distinct mtime
        write_deck(decks, "alpha", 1, title="Alpha, revised")
        while (await follower.receive_json(timeout=20))["type"] != "reload":
            pass
    status, body, _ = await front.get("/alpha/")
    assert status == 200 and b"Alpha, revised" in body

    async def index_updated() -> bool:
        return b"Alpha, revised" in (await front.get("/"))[1]

    await eventually(index_updated)


async def test_kill_9_child_restarts_while_other_decks_keep_answering(
    start_front: StartFront,
) -> None:
    """After SIGKILL of one child, its next request succeeds on a new process; others never fail."""
    front = await start_front()
    for slug in ("alpha", "beta", "gamma"):
        assert (await front.get(f"/{slug}/healthz"))[0] == 200
    before = await front.status()
    os.kill(before["alpha"]["pid"], signal.SIGKILL)

    others: list[int] = []
    stop = asyncio.Event()

    async def hammer() -> None:
        while not stop.is_set():
            for slug in ("beta", "gamma"):
                others.append((await front.get(f"/{slug}/deck.json"))[0])

    task = asyncio.create_task(hammer())
    status, body, _ = await front.get("/alpha/deck.json")
    await asyncio.sleep(0.3)
    stop.set()
    await task
    assert status == 200 and json.loads(body)["slides"] == 2, body
    after = await front.status()
    assert after["alpha"]["pid"] != before["alpha"]["pid"] and after["alpha"]["restarts"] == 1
    assert not alive(before["alpha"]["pid"])
    assert others and set(others) == {200}
    assert after["beta"]["pid"] == before["beta"]["pid"]


def test_is_dead_tells_running_zombie_and_reaped_processes_apart() -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert not supervisor._is_dead(child.pid)
        assert not supervisor._is_dead(os.getpid())
        child.kill()
        deadline = time.monotonic() + 10
        while not supervisor._is_dead(child.pid):  # a zombie until reaped
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        child.wait()
    assert supervisor._is_dead(child.pid)


async def test_refused_connection_waits_for_the_death_proc_does_not_show_yet(
    start_front: StartFront, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A killed child closes its port before /proc shows it exited; the retry still
    waits for the death and reaches a new process."""
    front = await start_front()
    assert (await front.get("/alpha/healthz"))[0] == 200
    before = await front.status()
    monkeypatch.setattr(supervisor, "_is_dead", lambda pid: False)  # the kernel's window
    os.kill(before["alpha"]["pid"], signal.SIGKILL)
    status, body, _ = await front.get("/alpha/deck.json")
    assert status == 200 and json.loads(body)["slides"] == 2, body
    after = await front.status()
    assert after["alpha"]["pid"] != before["alpha"]["pid"] and after["alpha"]["restarts"] == 1


async def test_crash_loop_answers_503_with_retry_after(
    start_front: StartFront, decks: Path, tmp_path: Path
) -> None:
    """A child that keeps dying gets a back-off; meanwhile 503 + Retry-After, others unaffected."""
    crasher = tmp_path / "crash.py"
    crasher.write_text(
        textwrap.dedent(
            """
            import sys, runpy
            if "alpha.md" in sys.argv[1]:
                print("boom: cannot start", flush=True)
                sys.exit(3)
            sys.argv[1:1] = ["serve"]
            from slidesvc.cli import main
            sys.exit(main(sys.argv[1:]))
            """
        )
    )
    import sys

    front = await start_front(child_command=(sys.executable, str(crasher)))
    statuses = []
    for _ in range(3):
        status, body, headers = await front.get("/alpha/")
        statuses.append(status)
        assert status == 503
        assert b"not available" in body
        assert int(headers["Retry-After"]) >= 1
    alpha = (await front.status())["alpha"]
    assert alpha["state"] == "crashed" and "boom: cannot start" in alpha["last_error"]
    assert alpha["restarts"] == 2  # the third request came during the back-off
    assert (await front.get("/beta/"))[0] == 200


async def test_added_deck_is_served_and_removed_deck_stops(
    start_front: StartFront, decks: Path
) -> None:
    """A new .md file becomes a deck without restart; deleting it stops it and answers 404."""
    front = await start_front()
    write_deck(decks, "delta", 4)

    async def listed() -> bool:
        return "delta" in front.publisher.supervisor.decks

    await eventually(listed)
    status, body, _ = await front.get("/delta/")
    assert status == 200 and b"Talk delta" in body
    pid = (await front.status())["delta"]["pid"]
    (decks / "delta.md").unlink()

    async def gone() -> bool:
        return (await front.get("/delta/"))[0] == 404

    await eventually(gone)
    await eventually(lambda: asyncio.sleep(0, not alive(pid)))
    assert "delta" not in (await front.status())


async def test_idle_process_is_stopped_and_started_again(start_front: StartFront) -> None:
    """With --idle-timeout 1 an unused deck process stops; the next request starts it again."""
    front = await start_front(idle_timeout=1.0)
    assert (await front.get("/beta/"))[0] == 200
    pid = (await front.status())["beta"]["pid"]

    async def stopped() -> bool:
        return (await front.status())["beta"]["state"] == "stopped"

    await eventually(stopped, timeout=10)
    assert not alive(pid)
    assert (await front.get("/beta/"))[0] == 200
    assert (await front.status())["beta"]["pid"] != pid


async def test_open_live_connection_keeps_a_deck_from_idling(start_front: StartFront) -> None:
    """A follower connected to /live counts as activity."""
    front = await start_front(idle_timeout=0.5)
    async with front.http.ws_connect(front.url + "beta/live"):
        await asyncio.sleep(2)
        assert (await front.status())["beta"]["state"] == "running"


async def test_cap_stops_the_least_recently_used_deck(start_front: StartFront) -> None:
    """With --max-running 2, starting a third deck stops the least recently used one."""
    front = await start_front(max_running=2)
    assert (await front.get("/alpha/"))[0] == 200
    assert (await front.get("/beta/"))[0] == 200
    assert (await front.get("/alpha/deck.json"))[0] == 200  # beta is now the LRU
    assert (await front.get("/gamma/"))[0] == 200
    states = {slug: d["state"] for slug, d in (await front.status()).items()}
    assert states == {"alpha": "running", "beta": "stopped", "gamma": "running"}


async def test_preload_starts_every_deck(start_front: StartFront) -> None:
    """--preload starts every deck before the first request."""
    front = await start_front(preload=True)

    async def all_running() -> bool:
        return {d["state"] for d in (await front.status()).values()} == {"running"}

    await eventually(all_running)
    assert all(d.requests == 0 for d in front.publisher.supervisor.decks.values())


async def test_shutdown_leaves_no_child_behind(start_front: StartFront) -> None:
    """Stopping the front door stops every deck process (checked by PID)."""
    front = await start_front()
    for slug in ("alpha", "beta", "gamma"):
        assert (await front.get(f"/{slug}/healthz"))[0] == 200
    pids = [d["pid"] for d in (await front.status()).values()]
    assert len(pids) == 3 and all(alive(p) for p in pids)
    await front.app.shutdown()
    await front.app.cleanup()
    assert not any(alive(p) for p in pids)
    assert {d.state for d in front.publisher.supervisor.decks.values()} == {DeckState.STOPPED}


async def test_unknown_routes_and_bad_requests_get_clear_answers(start_front: StartFront) -> None:
    """Unknown deck: 404 page; /<slug> redirects to /<slug>/; the deck's own 405 passes through."""
    front = await start_front()
    status, body, headers = await front.get("/nope/")
    assert status == 404 and b"no such deck" in body
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    status, _, headers = await front.get("/alpha", allow_redirects=False)
    assert status == 308 and headers["Location"] == "/alpha/"
    async with front.http.delete(front.url + "alpha/") as resp:
        assert resp.status == 405
    status, _, _ = await front.get("/alpha/no-such-page")
    assert status == 404
    # An encoded `..` stays inside the deck: the deck process answers, not /_status.
    sneaky = URL(front.url + "alpha/%2e%2e/_status", encoded=True)
    async with front.http.get(sneaky) as resp:
        assert resp.status == 404 and "publisher" not in await resp.text()


async def test_thumbnail_is_rendered_once_per_version_without_starting_the_deck(
    decks: Path, aiohttp_server: Any
) -> None:
    """`/<slug>/thumbnail.png` comes from the front door's cache, keyed by content hash."""
    calls: list[Path] = []

    async def render(path: Path) -> bytes:
        calls.append(path)
        return b"\x89PNG fake " + path.name.encode()

    port = free_port()
    settings = PublishSettings(decks_dir=decks, port=port, idle_timeout=0)
    app = create_app(settings, render_thumbnail=render, announce=lambda _: None)
    await aiohttp_server(app, host="127.0.0.1", port=port)
    await app[PUBLISHER].catalog.settle()
    async with aiohttp.ClientSession() as http:
        for _ in range(3):
            async with http.get(f"http://127.0.0.1:{port}/alpha/thumbnail.png") as resp:
                assert resp.status == 200 and resp.content_type == "image/png"
                assert await resp.read() == b"\x89PNG fake alpha.md"
                etag = resp.headers["ETag"]
        async with http.get(
            f"http://127.0.0.1:{port}/alpha/thumbnail.png", headers={"If-None-Match": etag}
        ) as resp:
            assert resp.status == 304
    assert calls == [decks / "alpha.md"]
    assert app[PUBLISHER].supervisor.decks["alpha"].state is DeckState.STOPPED


async def test_broken_deck_is_listed_with_its_error(start_front: StartFront, decks: Path) -> None:
    """A deck that does not compile shows `file:line: message` on the index."""
    (decks / "broken.md").write_text("---\npaginate: maybe\n---\n\n# Hi\n", encoding="utf-8")
    front = await start_front()
    await front.publisher.catalog.settle()
    status, body, _ = await front.get("/")
    assert status == 200
    parser = _Cards()
    parser.feed(body.decode())
    assert "broken.md:2:" in parser.cards["broken"]["text"]
    assert str(decks) not in body.decode()  # no server paths on a public page
    assert "Talk alpha" in parser.cards["alpha"]["text"]


async def test_children_output_is_prefixed_and_token_free(
    start_front: StartFront, caplog: pytest.LogCaptureFixture
) -> None:
    """Each child line reaches the log as `[slug] ...`, with its presenter token masked."""
    caplog.set_level("INFO", logger="slidesvc.publish")
    front = await start_front()
    assert (await front.get("/alpha/"))[0] == 200
    token = front.publisher.supervisor.decks["alpha"].token
    lines = [
        line
        for r in caplog.records
        if r.name == "slidesvc.publish.child"
        for line in r.getMessage().splitlines()
    ]
    assert lines and all(line.startswith("[alpha] ") for line in lines)
    assert any("listening  127.0.0.1:" in line for line in lines)
    assert all(token not in r.getMessage() for r in caplog.records)
    assert any(f"alpha/presenter#token={token}" in line for line in front.announced)


async def test_real_thumbnail_comes_from_the_build_worker(start_front: StartFront) -> None:
    """`/<slug>/thumbnail.png` is slide 1 as a PNG, made without starting the deck's process."""
    import struct

    front = await start_front()
    await front.publisher.catalog.settle()
    status, body, headers = await front.get("/gamma/thumbnail.png")
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert body.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", body[16:24])
    assert abs(width / height - 16 / 9) < 0.02
    assert (await front.status())["gamma"]["state"] == "stopped"


async def test_shutdown_tells_live_followers_going_away(start_front: StartFront) -> None:
    """On shutdown, followers connected through the front door get close code 1001 at once."""
    front = await start_front()
    async with front.http.ws_connect(front.url + "alpha/live") as follower:
        await eventually(lambda: asyncio.sleep(0, bool(front.publisher.sockets)))
        started = time.monotonic()
        await front.app.shutdown()
        while (msg := await follower.receive(timeout=5)).type is aiohttp.WSMsgType.TEXT:
            pass
        assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == 1001
        assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    ("peer", "local", "allowed"),
    [
        ("127.0.0.1", "127.0.0.1", True),
        ("::1", "::1", True),
        ("192.0.2.2", "192.0.2.2", True),  # this machine, through its own LAN address
        ("203.0.113.9", "192.0.2.2", False),
    ],
)
def test_status_is_for_clients_on_this_machine_only(peer: str, local: str, allowed: bool) -> None:
    """`/_status` answers loopback (or same-address) clients only."""
    from unittest import mock

    from aiohttp.test_utils import make_mocked_request

    from slidesvc.publish.app import _is_local

    transport = mock.Mock()
    transport.get_extra_info.side_effect = {"peername": (peer, 5555), "sockname": (local, 8000)}.get
    request = make_mocked_request("GET", "/_status", transport=transport)
    assert _is_local(request) is allowed


async def test_editing_a_crashing_deck_lifts_the_back_off(
    start_front: StartFront, decks: Path
) -> None:
    """A broken deck answers 503; once its file is fixed, the next request serves it."""
    broken = decks / "broken.md"
    broken.write_text("---\npaginate: maybe\n---\n\n# Hi\n", encoding="utf-8")
    front = await start_front()
    for _ in range(3):
        status, _, headers = await front.get("/broken/")
        assert status == 503 and "Retry-After" in headers
    assert "paginate" in (await front.status())["broken"]["last_error"]
    # As if it had crashed many times in a row: the longest back-off.
    process = front.publisher.supervisor.decks["broken"]
    process.crashes, process.retry_at = 8, time.monotonic() + 30
    assert (await front.get("/broken/"))[2]["Retry-After"] in {"29", "30"}
    broken.write_text("---\ntitle: Fixed now\n---\n\n# Hi\n", encoding="utf-8")

    async def served() -> bool:
        status, body, _ = await front.get("/broken/")
        return status == 200 and b"Fixed now" in body

    await eventually(served, timeout=8)


async def test_two_files_with_one_slug_are_reported_not_mixed_up(
    start_front: StartFront, decks: Path
) -> None:
    """`Alpha.md` next to `alpha.md`: the first keeps /alpha/, the other is listed as an error."""
    write_deck(decks, "Alpha", 9, title="Shadow")
    front = await start_front()
    await front.publisher.catalog.settle()
    assert front.publisher.supervisor.decks["alpha"].path == decks / "Alpha.md"
    body = (await front.get("/"))[1].decode()
    assert "alpha.md: same URL /alpha/ as Alpha.md; rename one" in body
