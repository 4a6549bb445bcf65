"""The viewer in a real Chromium, on built decks opened from file:// URLs."""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from slidesvc.artifacts import set_mode
from slidesvc.parse import load_deck
from slidesvc.render_html import render_html

pytestmark = pytest.mark.browser

DECK = """\
---
title: Browser deck
paginate: true
---

# One

???
Notes for one
---

## Two

* alpha
* beta
* gamma

Note: Notes for two
---

## Three

1) first
2) second
---

## Four

Plain.
"""

Build = Callable[..., str]


@pytest.fixture
def build(tmp_path: Path) -> Build:
    """Compile a deck with the real parser and renderer; return the page's file:// URL."""

    def make(
        text: str = DECK, *, notes: bool = False, mode: str = "deck", name: str = "deck"
    ) -> str:
        source = tmp_path / f"{name}.md"
        source.write_text(text, encoding="utf-8")
        html = render_html(load_deck(source), notes=notes)
        out = tmp_path / f"{name}.html"
        out.write_text(set_mode(html, mode) if mode != "deck" else html, encoding="utf-8")
        return out.as_uri()

    return make


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A browser context that prefers reduced motion, so states apply without transitions."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 720}, reduced_motion="reduce")
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: Any) -> Any:
    return context.new_page()


def current(page: Any) -> int:
    return int(page.eval_on_selector("section.slide.current", "s => s.id"))


def visible_fragments(page: Any) -> int:
    return int(
        page.evaluate(
            "Array.from(document.querySelectorAll('.slide.current .fragments > li'))"
            ".filter(li => getComputedStyle(li).visibility === 'visible').length"
        )
    )


def wait_slide(page: Any, n: int) -> None:
    page.wait_for_function(
        "n => document.querySelector('section.slide.current')?.id === String(n)", arg=n
    )


def test_keyboard_and_hash_navigation(page: Any, build: Build) -> None:
    """Keys move between slides, the URL follows as #N, back/forward and #N work."""
    url = build()
    page.goto(url)
    assert current(page) == 1
    assert page.evaluate("document.documentElement.className") == ""
    page.keyboard.press("ArrowRight")
    assert current(page) == 2
    assert page.url.endswith("#2")
    assert page.eval_on_selector(".progress > span", "s => s.style.width") == "50%"
    page.keyboard.press("End")
    assert current(page) == 4
    page.keyboard.press("Home")
    assert current(page) == 1
    page.keyboard.press("PageDown")
    assert current(page) == 2
    page.go_back()
    wait_slide(page, 1)
    page.go_back()
    wait_slide(page, 4)
    page.go_forward()
    wait_slide(page, 1)
    page.goto(url + "#3")
    wait_slide(page, 3)
    page.goto(url + "#99")
    wait_slide(page, 4)


def test_fragments_step_before_the_next_slide(page: Any, build: Build) -> None:
    """`*` and `1)` items appear one by one; going back shows the slide fully revealed."""
    page.goto(build() + "#2")
    assert visible_fragments(page) == 0
    for shown in (1, 2, 3):
        page.keyboard.press("Space")
        assert (current(page), visible_fragments(page)) == (2, shown)
    page.keyboard.press("ArrowRight")
    assert (current(page), visible_fragments(page)) == (3, 0)
    page.keyboard.press("ArrowLeft")
    assert (current(page), visible_fragments(page)) == (2, 3)
    page.keyboard.press("ArrowLeft")
    assert (current(page), visible_fragments(page)) == (2, 2)


def test_reduced_motion_turns_transitions_off(browser: Any, build: Build) -> None:
    """Fragments fade in normally and appear at once when the reader prefers reduced motion."""
    url = build()
    durations = []
    for motion in ("no-preference", "reduce"):
        ctx = browser.new_context(reduced_motion=motion)
        pg = ctx.new_page()
        pg.goto(url + "#2")
        durations.append(
            pg.eval_on_selector(".fragments > li", "li => getComputedStyle(li).transitionDuration")
        )
        ctx.close()
    assert durations[0].startswith("0.25s")
    assert set(durations[1].split(", ")) == {"0s"}


def test_open_on_a_slide_by_hash(page: Any, build: Build) -> None:
    """Opening the file with #3 shows slide 3 with its fragments hidden."""
    page.goto(build() + "#3")
    assert (current(page), visible_fragments(page)) == (3, 0)


def test_aria_live_announces_slide_and_title(page: Any, build: Build) -> None:
    """The live region says 'Slide N of M: title' after each move."""
    page.goto(build())
    page.keyboard.press("End")
    assert page.text_content("[aria-live]") == "Slide 4 of 4: Four"
    page.keyboard.press("Home")
    assert page.text_content("[aria-live]") == "Slide 1 of 4: One"


def test_overview_grid(page: Any, build: Build) -> None:
    """`o` shows every slide as a thumbnail; clicking one opens it."""
    page.goto(build())
    page.keyboard.press("o")
    rects = page.eval_on_selector_all(
        "section.slide", "ss => ss.map(s => s.getBoundingClientRect().toJSON())"
    )
    assert len(rects) == 4
    for r in rects:
        assert 0 < r["width"] < 640
        assert r["width"] / r["height"] == pytest.approx(16 / 9, rel=0.01)
    assert rects[0]["x"] < rects[1]["x"]
    assert (
        page.evaluate("getComputedStyle(document.querySelectorAll('section.slide')[2]).visibility")
        == "visible"
    )
    page.click("section.slide[id='3']")
    assert current(page) == 3
    assert page.evaluate("document.documentElement.classList.contains('overview')") is False


@pytest.mark.parametrize(("width", "height"), [(1280, 720), (800, 900), (1600, 500)])
def test_slide_scales_to_the_window(context: Any, build: Build, width: int, height: int) -> None:
    """The fixed-size slide fits the window, touches two edges and keeps 16:9."""
    page = context.new_page()
    page.set_viewport_size({"width": width, "height": height})
    page.goto(build())
    r = page.eval_on_selector("section.slide.current", "s => s.getBoundingClientRect().toJSON()")
    assert r["width"] / r["height"] == pytest.approx(16 / 9, rel=0.005)
    assert r["x"] >= -0.5 and r["y"] >= -0.5
    assert r["x"] + r["width"] <= width + 0.5 and r["y"] + r["height"] <= height + 0.5
    assert r["width"] == pytest.approx(width, abs=1) or r["height"] == pytest.approx(height, abs=1)
    assert r["x"] == pytest.approx((width - r["width"]) / 2, abs=1)


def test_scaling_follows_resize(page: Any, build: Build) -> None:
    """Resizing the window rescales the slide."""
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(build())
    page.set_viewport_size({"width": 640, "height": 720})
    page.wait_for_function(
        "() => document.querySelector('.slide.current').getBoundingClientRect().width < 641"
    )
    r = page.eval_on_selector("section.slide.current", "s => s.getBoundingClientRect().toJSON()")
    assert r["width"] == pytest.approx(640, abs=1)
    assert r["height"] == pytest.approx(360, abs=1)


def test_without_javascript_the_page_is_a_document(browser: Any, build: Build) -> None:
    """With JavaScript off every slide is visible, in order, as wide as the window allows."""
    ctx = browser.new_context(java_script_enabled=False, viewport={"width": 900, "height": 700})
    try:
        page = ctx.new_page()
        page.goto(build())
        assert page.evaluate("document.documentElement.className") == "no-js"
        rects = page.eval_on_selector_all(
            "section.slide",
            "ss => ss.map(s => ({id: s.id, vis: getComputedStyle(s).visibility,"
            " r: s.getBoundingClientRect().toJSON()}))",
        )
        assert [s["id"] for s in rects] == ["1", "2", "3", "4"]
        tops = [s["r"]["y"] for s in rects]
        assert tops == sorted(tops)
        for s in rects:
            assert s["vis"] == "visible"
            assert 600 < s["r"]["width"] <= 900
            assert s["r"]["width"] / s["r"]["height"] == pytest.approx(16 / 9, rel=0.01)
        for earlier, later in itertools.pairwise(rects):
            assert later["r"]["y"] >= earlier["r"]["y"] + earlier["r"]["height"]
        assert page.evaluate(
            "Array.from(document.querySelectorAll('.fragments > li'))"
            ".every(li => getComputedStyle(li).visibility === 'visible')"
        )
    finally:
        ctx.close()


def test_zero_network_requests(context: Any, build: Build, tmp_path: Path) -> None:
    """Loading and using a built deck (images, keys, overview) requests nothing but the file."""
    (tmp_path / "dot.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20">'
        '<circle cx="10" cy="10" r="9" fill="red"/></svg>'
    )
    url = build(
        DECK + "\n![dot](dot.svg)\n\n---\n\n![bg](dot.svg)\n\n# Again ![w:40px](dot.svg)\n",
        notes=True,
    )
    page = context.new_page()
    requests: list[str] = []
    failures: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("requestfailed", lambda r: failures.append(r.url))
    page.goto(url)
    for key in ["ArrowRight"] * 8 + ["o", "o", "b", "b", "Home", "End"]:
        page.keyboard.press(key)
    page.mouse.wheel(0, 300)
    page.wait_for_timeout(200)
    external = [u for u in requests if u.split("#")[0] != url and not u.startswith("data:")]
    assert external == []
    assert failures == []
    assert requests[0] == url


def test_repeated_image_displays_at_the_authors_size(
    page: Any, build: Build, tmp_path: Path
) -> None:
    """An image stored once as a CSS variable shows on every slide, sized as written."""
    (tmp_path / "sq.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
        '<rect width="10" height="10" fill="#00f"/></svg>'
    )
    url = build("![logo w:200px](sq.svg)\n\n---\n\n![logo h:50px](sq.svg)\n")
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(url)
    assert page.eval_on_selector("img", "i => i.dataset.im") != ""
    box = page.eval_on_selector(".slide.current img", "i => i.getBoundingClientRect().toJSON()")
    assert (round(box["width"]), round(box["height"])) == (200, 200)
    shot = page.screenshot(clip={"x": box["x"] + 50, "y": box["y"] + 50, "width": 10, "height": 10})
    assert blue_share(shot) > 0.9
    page.keyboard.press("ArrowRight")
    box = page.eval_on_selector(".slide.current img", "i => i.getBoundingClientRect().toJSON()")
    assert (round(box["width"]), round(box["height"])) == (50, 50)


def test_images_fall_back_to_src_without_css_content(
    context: Any, build: Build, tmp_path: Path
) -> None:
    """Where CSS `content` cannot draw a shared image, the viewer copies it into src."""
    (tmp_path / "sq.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
        '<rect width="10" height="10" fill="#00f"/></svg>'
    )
    url = build("![logo w:200px](sq.svg)\n\n---\n\n![logo w:100px](sq.svg)\n")
    # Play a browser without `content` on elements: the override is in place
    # before the viewer script runs.
    context.add_init_script(
        """new MutationObserver((_, obs) => {
          if (!document.head) return;
          const style = document.createElement('style');
          style.textContent = 'img[data-im] { content: normal !important; }';
          document.head.append(style);
          obs.disconnect();
        }).observe(document, {childList: true, subtree: true});"""
    )
    page = context.new_page()
    page.goto(url)
    assert page.eval_on_selector("img", "i => getComputedStyle(i).content") == "normal"
    assert page.eval_on_selector("img", "i => i.src").startswith("data:image/svg+xml;base64,")
    box = page.eval_on_selector(".slide.current img", "i => i.getBoundingClientRect().toJSON()")
    assert (round(box["width"]), round(box["height"])) == (200, 200)
    shot = page.screenshot(clip={"x": box["x"] + 50, "y": box["y"] + 50, "width": 10, "height": 10})
    assert blue_share(shot) > 0.9


def blue_share(png: bytes) -> float:
    """Share of pure-ish blue pixels in a PNG screenshot."""
    from PIL import Image

    data = Image.open(io.BytesIO(png)).convert("RGB").tobytes()
    pixels = [data[i : i + 3] for i in range(0, len(data), 3)]
    return sum(1 for r, g, b in pixels if b > 200 and r < 60 and g < 60) / len(pixels)


RAW_SCRIPT = """\
{front}
# Raw HTML

<div id="target">untouched</div>
<script>document.getElementById("target").textContent = "script ran";</script>
<img alt="" src="data:," onerror="document.title = 'handler ran'">
"""


def test_scripts_in_raw_html_do_not_run(page: Any, build: Build) -> None:
    """The CSP stops an author's inline script and event handlers; the viewer still runs."""
    page.goto(build(RAW_SCRIPT.format(front="")))
    page.wait_for_timeout(200)
    assert page.text_content("#target") == "untouched"
    assert page.title() != "handler ran"
    assert page.evaluate("document.documentElement.className") == ""


def test_scripts_true_lets_them_run(page: Any, build: Build) -> None:
    """`scripts: true` relaxes the CSP for inline scripts, and the viewer keeps working."""
    page.goto(build(RAW_SCRIPT.format(front="---\nscripts: true\n---\n")))
    assert page.text_content("#target") == "script ran"
    page.wait_for_function("() => document.title === 'handler ran'")
    assert page.evaluate("document.documentElement.className") == ""
    assert current(page) == 1


def test_blank_screen_and_click(page: Any, build: Build) -> None:
    """`b` blanks the screen and back; a click on the slide goes forward."""
    page.goto(build())
    page.keyboard.press("b")
    assert page.is_visible(".blank-screen")
    page.keyboard.press("b")
    assert not page.is_visible(".blank-screen")
    page.mouse.click(900, 360)
    assert current(page) == 2
    page.mouse.click(50, 360)
    assert current(page) == 1


def test_touch_swipe(browser: Any, build: Build) -> None:
    """Swiping left goes forward, swiping right goes back; a vertical drag does nothing."""
    ctx = browser.new_context(has_touch=True, reduced_motion="reduce")
    try:
        page = ctx.new_page()
        page.goto(build())

        def swipe(dx: int, dy: int) -> None:
            page.evaluate(
                """([dx, dy]) => {
                  const deck = document.querySelector('main.deck');
                  const touch = (x, y) =>
                    new Touch({identifier: 1, target: deck, clientX: x, clientY: y});
                  const start = touch(600, 300), end = touch(600 + dx, 300 + dy);
                  const fire = (type, touches, changed) => deck.dispatchEvent(
                    new TouchEvent(type, {touches, changedTouches: changed}));
                  fire('touchstart', [start], [start]);
                  fire('touchend', [], [end]);
                }""",
                [dx, dy],
            )

        swipe(-200, 10)
        assert current(page) == 2
        swipe(0, -200)
        assert current(page) == 2
        swipe(200, 0)
        assert current(page) == 1
    finally:
        ctx.close()


def test_fullscreen_key(page: Any, build: Build) -> None:
    """`f` enters full screen and leaves it again."""
    page.goto(build())
    page.keyboard.press("f")
    page.wait_for_function("() => document.fullscreenElement === document.documentElement")
    page.keyboard.press("f")
    page.wait_for_function("() => document.fullscreenElement === null")


def test_wheel_gesture_moves_one_slide(page: Any, build: Build) -> None:
    """A burst of wheel events (one trackpad flick) moves one step, not twenty."""
    page.goto(build())
    page.mouse.move(640, 360)
    for _ in range(20):
        page.mouse.wheel(0, 40)
    page.wait_for_timeout(100)
    assert current(page) == 2
    page.wait_for_timeout(400)
    page.mouse.wheel(0, -40)
    page.wait_for_function("() => document.querySelector('.slide.current').id === '1'")


def test_presenter_window_stays_in_sync_on_file_urls(context: Any, build: Build) -> None:
    """`p` opens the presenter view (notes, next slide, clock); both windows follow each other."""
    audience = context.new_page()
    audience.goto(build(notes=True))
    with audience.expect_popup() as popup_info:
        audience.keyboard.press("p")
    presenter = popup_info.value
    presenter.wait_for_load_state()
    assert presenter.evaluate("document.documentElement.dataset.mode") == "presenter"
    assert presenter.text_content(".pv-notes") == "Notes for one"
    assert presenter.eval_on_selector(".pv-next .slide", "s => s.dataset.title") == "Two"
    assert re.fullmatch(r"\d\d:\d\d", presenter.text_content(".pv-clock") or "")

    presenter.keyboard.press("ArrowRight")
    wait_slide(audience, 2)
    assert presenter.text_content(".pv-notes") == "Notes for two"
    presenter.keyboard.press("ArrowRight")  # first fragment of slide 2
    audience.wait_for_function(
        "() => document.querySelectorAll('.current .fragments > li:not(.future)').length === 1"
    )

    audience.keyboard.press("End")
    wait_slide(presenter, 4)
    assert presenter.text_content(".pv-next") == "NextEnd of the deck"
    assert presenter.text_content(".pv-count") == "4 / 4"

    audience.reload()  # the audience forgets its popup; the popup's next move re-pairs them
    presenter.keyboard.press("Home")
    wait_slide(audience, 1)
    audience.keyboard.press("ArrowRight")
    wait_slide(presenter, 2)


def test_presenter_timer_pauses_and_resets(context: Any, build: Build) -> None:
    """The elapsed timer runs, stands still when paused and goes back to 0:00 on reset."""
    page = context.new_page()
    page.goto(build(notes=True, mode="presenter"))
    page.wait_for_function(
        "() => document.querySelector('.pv-timer').textContent === '0:01'", timeout=3000
    )
    page.click(".pv-pause")
    frozen = page.text_content(".pv-timer")
    page.wait_for_timeout(1300)
    assert page.text_content(".pv-timer") == frozen
    page.click(".pv-reset")
    assert page.text_content(".pv-timer") == "0:00"
    page.wait_for_timeout(1100)
    assert page.text_content(".pv-timer") == "0:00"


def test_public_page_has_no_presenter(context: Any, build: Build) -> None:
    """Without notes in the file, `p` opens nothing."""
    page = context.new_page()
    page.goto(build())
    page.keyboard.press("p")
    page.wait_for_timeout(300)
    assert len(context.pages) == 1


def test_embed_mode_reads_its_query_and_never_takes_focus(
    context: Any, build: Build, tmp_path: Path
) -> None:
    """/embed: ?slide=N (clamped), ?controls=0, an 'open full deck' link; the host keeps focus."""
    embed = build(mode="embed")
    page = context.new_page()
    page.goto(embed + "?slide=3")
    assert current(page) == 3
    assert page.get_attribute(".open-full", "href") == "./#3"
    assert page.is_visible(".controls")
    assert not page.is_visible(".progress")
    page.goto(embed + "?slide=42")
    assert current(page) == 4
    page.goto(embed + "?slide=two")
    assert current(page) == 1
    page.goto(embed + "?controls=0")
    assert not page.is_visible(".controls")

    host = tmp_path / "host.html"
    host.write_text(
        f'<!doctype html><input id="q" autofocus>'
        f'<iframe src="{embed}?slide=2" width="640" height="360"></iframe>'
    )
    page.goto(host.as_uri())
    frame = page.frames[1]
    frame.wait_for_selector("section.slide.current")
    assert frame.eval_on_selector("section.slide.current", "s => s.id") == "2"
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.press("ArrowRight")  # typed into the host page, not the deck
    assert frame.eval_on_selector("section.slide.current", "s => s.id") == "2"
    assert page.input_value("#q") == ""
    frame.click(".controls .prev")
    assert frame.eval_on_selector("section.slide.current", "s => s.id") == "1"


def test_print_shows_every_slide_with_all_fragments(page: Any, build: Build) -> None:
    """The print stylesheet lays out one slide per page, fragments visible, no chrome."""
    page.goto(build() + "#2")
    page.emulate_media(media="print")
    info = page.evaluate(
        """() => {
          const all = (sel) => Array.from(document.querySelectorAll(sel)).map(getComputedStyle);
          return {
            visible: all('section.slide').map(s => s.visibility),
            breaks: all('section.slide').map(s => s.breakAfter),
            frags: all('.fragments > li').every(li => li.visibility === 'visible'),
            chrome: getComputedStyle(document.querySelector('.progress')).display,
          };
        }"""
    )
    assert info["visible"] == ["visible"] * 4
    assert info["breaks"] == ["page", "page", "page", "auto"]
    assert info["frags"] is True
    assert info["chrome"] == "none"
    pdf = PdfReader(io.BytesIO(page.pdf(prefer_css_page_size=True)))
    assert len(pdf.pages) == 4
    box = pdf.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (960, 540)  # 1280x720 px in pt
