"""oEmbed: only this deck's URLs, sizes that keep the aspect, a real consumer."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote, urlsplit
from urllib.request import urlopen

import pytest
from server_fixtures import PUBLIC, TOKEN, MemorySource, ServerThread, make_artifacts

from slidesvc.server.app import create_app
from slidesvc.server.config import ServerSettings
from slidesvc.server.oembed import OEmbedError, embed_size, own_slide


@pytest.fixture
async def client(aiohttp_client: Any) -> Any:
    settings = ServerSettings(public_url=PUBLIC, presenter_token=TOKEN)
    return await aiohttp_client(create_app(settings, MemorySource(make_artifacts())))


def q(url: str) -> str:
    return "/oembed?url=" + quote(url, safe="")


# --- recognising our own URLs --------------------------------------------------


@pytest.mark.parametrize(
    ("url", "slide"),
    [
        ("http://deck.test/", None),
        ("http://deck.test", None),
        ("http://DECK.test:80/embed", None),
        ("http://deck.test/embed?slide=3", 3),
        ("http://deck.test/#4", 4),
        ("http://deck.test/embed#2", 2),
        ("http://deck.test/?slide=999999", 5),
        ("http://deck.test/?slide=abc", None),
    ],
)
def test_own_urls_are_recognised(url: str, slide: int | None) -> None:
    """The deck's /, /embed, with #N or ?slide=N (clamped) are this deck."""
    assert own_slide(url, PUBLIC, 5) == slide


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/",
        "https://evil.example/embed",
        "http://169.254.169.254/latest/meta-data/",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "http://deck.test.evil.example/",
        "http://evil.example/deck.test/",
        "http://deck.test@evil.example/",
        "http://user@deck.test/",
        "http://deck.test:8080/",
        "https://deck.test/",
        "http://deck.test/deck.pdf",
        "http://deck.test/embed/../../etc/passwd",
        "http://deck.test/?slide=2&x=1",
        "http://deck.test/\r\nSet-Cookie: x",
        "//deck.test/",
        "",
    ],
)
def test_other_urls_are_not_ours(url: str) -> None:
    """Anything that is not this deck's public URL is refused as 404."""
    with pytest.raises(OEmbedError) as info:
        own_slide(url, PUBLIC, 5)
    assert info.value.status == 404


def test_path_prefix_public_url() -> None:
    """Under a path prefix only that prefix counts."""
    public = "https://example.org/decks/talk/"
    assert own_slide("https://example.org/decks/talk/embed?slide=2", public, 5) == 2
    with pytest.raises(OEmbedError):
        own_slide("https://example.org/decks/other/", public, 5)


def test_embed_size_keeps_aspect_within_limits() -> None:
    """Width and height honour both limits and keep 16:9."""
    assert embed_size(1280, 720, None, None) == (960, 540)
    assert embed_size(1280, 720, 640, None) == (640, 360)
    assert embed_size(1280, 720, 2000, 180) == (320, 180)
    assert embed_size(1024, 768, 500, 500) == (500, 375)
    w, h = embed_size(1280, 720, 333, 333)
    assert w <= 333 and h <= 333 and abs(w / h - 16 / 9) < 0.01


# --- the endpoint -----------------------------------------------------------------


async def test_json_response(client: Any) -> None:
    """format=json is a rich oEmbed 1.0 response with an iframe of /embed."""
    resp = await client.get(q(PUBLIC) + "&format=json")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    data = await resp.json()
    assert data["type"] == "rich" and data["version"] == "1.0"
    assert data["title"] == "Test <Talk> & Co"
    assert data["author_name"] == "Ada Lovelace"
    assert data["provider_name"] == "slidesvc"
    assert data["provider_url"] == PUBLIC
    assert (data["width"], data["height"]) == (960, 540)
    assert data["thumbnail_url"] == PUBLIC + "thumbnail.png"
    assert (data["thumbnail_width"], data["thumbnail_height"]) == (64, 36)
    html = data["html"]
    assert html.startswith('<iframe src="http://deck.test/embed" width="960" height="540"')
    assert 'title="Test &lt;Talk&gt; &amp; Co"' in html
    assert 'loading="lazy"' in html and "allowfullscreen" in html


async def test_slide_in_url_goes_into_iframe(client: Any) -> None:
    """An embed URL pointing at slide 3 embeds slide 3 (a clamped number)."""
    data = await (await client.get(q("http://deck.test/embed?slide=3"))).json()
    assert 'src="http://deck.test/embed?slide=3"' in data["html"]


async def test_maxwidth_maxheight(client: Any) -> None:
    """maxwidth/maxheight shrink the iframe keeping the deck's aspect ratio."""
    data = await (await client.get(q(PUBLIC) + "&maxwidth=400&maxheight=400")).json()
    assert (data["width"], data["height"]) == (400, 225)
    assert 'width="400" height="225"' in data["html"]


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1e9", "1.5", "%00", "%0d%0a"])
async def test_bad_sizes_are_400(client: Any, value: str) -> None:
    """A size that is not a positive integer is a 400 with a message."""
    resp = await client.get(q(PUBLIC) + f"&maxwidth={value}")
    assert resp.status == 400
    assert "maxwidth" in await resp.text()
    assert (await client.get(q(PUBLIC) + f"&maxheight={value}")).status == 400


@pytest.mark.parametrize("value", ["1" + "0" * 29, "999999999"])
async def test_huge_sizes_are_clamped(client: Any, value: str) -> None:
    """A 30-digit maxwidth is clamped, never a 500."""
    resp = await client.get(q(PUBLIC) + f"&maxwidth={value}&maxheight={value}")
    assert resp.status == 200
    assert (await resp.json())["width"] == 960


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/talk",
        "http://169.254.169.254/",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "http://deck.test.evil.example/",
        "http://deck.test@evil.example/",
        "http://user:pw@deck.test/",
    ],
)
async def test_foreign_urls_are_404(client: Any, url: str) -> None:
    """URLs that are not this deck answer 404 and nothing is fetched."""
    resp = await client.get(q(url))
    assert resp.status == 404
    assert "evil" not in await resp.text()


async def test_missing_url_is_400(client: Any) -> None:
    """url is required."""
    assert (await client.get("/oembed")).status == 400


async def test_xml_format(client: Any) -> None:
    """format=xml is the XML form with the same fields, escaped."""
    resp = await client.get(q(PUBLIC) + "&format=xml")
    assert resp.status == 200
    assert resp.content_type == "text/xml"
    root = ET.fromstring(await resp.read())
    assert root.tag == "oembed"
    assert root.findtext("type") == "rich"
    assert root.findtext("title") == "Test <Talk> & Co"
    assert root.findtext("html", "").startswith("<iframe ")


async def test_unknown_format_is_501(client: Any) -> None:
    """Formats other than json and xml are 501."""
    resp = await client.get(q(PUBLIC) + "&format=yaml")
    assert resp.status == 501


async def test_oembed_allows_cross_origin_reads(client: Any) -> None:
    """oEmbed JSON is public and credential-free: any origin's script may read it."""
    resp = await client.get(q(PUBLIC))
    assert resp.headers["Access-Control-Allow-Origin"] == "*"


async def test_svg_title_card_without_png(aiohttp_client: Any) -> None:
    """Without a PNG thumbnail oEmbed points at an SVG title card of the right aspect."""
    from dataclasses import replace

    artifacts = replace(make_artifacts(), thumbnail_png=None)
    settings = ServerSettings(public_url=PUBLIC, presenter_token=TOKEN)
    client = await aiohttp_client(create_app(settings, MemorySource(artifacts)))
    data = await (await client.get(q(PUBLIC))).json()
    assert data["thumbnail_url"] == PUBLIC + "thumbnail.svg"
    assert (data["thumbnail_width"], data["thumbnail_height"]) == (480, 270)
    svg = await client.get("/thumbnail.svg")
    assert svg.content_type == "image/svg+xml"
    assert b"Test &lt;Talk&gt;" in await svg.read()
    assert (await client.get("/thumbnail.png")).status == 404


# --- a real consumer ----------------------------------------------------------------


class _Discovery(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.endpoint: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "link" and a.get("type") == "application/json+oembed":
            self.endpoint = a.get("href")


def test_micawber_discovers_and_embeds_the_deck() -> None:
    """micawber, given the endpoint discovered from the page, embeds the deck."""
    import micawber

    settings = ServerSettings(presenter_token=TOKEN)
    with ServerThread(settings, MemorySource(make_artifacts())) as server:
        with urlopen(server.url, timeout=5) as page:
            finder = _Discovery()
            finder.feed(page.read().decode())
        assert finder.endpoint is not None
        parts = urlsplit(finder.endpoint)
        endpoint = f"{parts.scheme}://{parts.netloc}{parts.path}"
        assert endpoint == server.url + "oembed"

        registry = micawber.ProviderRegistry()
        registry.register(server.url.replace(".", r"\.") + ".*", micawber.Provider(endpoint))
        data = registry.request(server.url + "embed#2", maxwidth=480)
        assert data["type"] == "rich"
        assert data["width"] == 480
        html = registry.parse_text(f"See the talk:\n{server.url}\n", maxwidth=480)
        assert f'<iframe src="{server.url}embed" width="480" height="270"' in html
        with urlopen(finder.endpoint, timeout=5) as resp:
            assert json.loads(resp.read())["provider_url"] == server.url
