"""The drawing page in real Chromium: mouse and touch strokes, streaming, bars (its connection
failing: test_browser_connection.py).

Digits are drawn as strokes through real input events (no injected images), at a size and pen
width like a person's. The page exposes a read-only `window.digitstream` hook so the tests can
wait for "the newest snapshot's answer is on screen" instead of sleeping.

Screenshots go to a temporary folder; with DIGITSTREAM_SCREENSHOTS=1 they are written to
docs/screenshots/ (desktop.png, mobile.png) for the README.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser_support import (
    DESKTOP,
    DIGIT_STROKES,
    PHONE,
    WAIT_MS,
    Point,
    Stroke,
    arc,
    assert_no_page_errors,
    connected_page,
    densify,
    draw_digit,
    meter_values,
    mouse_stroke,
    save_screenshot,
    stats,
    to_screen,
    wait_settled,
)
from tests.support import ServerProcess

pytestmark = pytest.mark.browser


# ---- Browser plumbing -------------------------------------------------------------------


@pytest.fixture(scope="module")
def desktop(browser: Browser, server: ServerProcess) -> Iterator[Page]:
    context = browser.new_context(viewport=DESKTOP, color_scheme="light")
    page = connected_page(context, server.base_url)
    yield page
    assert_no_page_errors(page)
    context.close()


def clear(page: Page) -> None:
    page.keyboard.press("Escape")
    expect(page.locator("#prediction")).to_have_attribute("data-digit", "")


# ---- Desktop ----------------------------------------------------------------------------


def test_page_has_accessible_results(desktop: Page) -> None:
    clear(desktop)
    meters = desktop.locator("#bars [role=meter]")
    expect(meters).to_have_count(10)
    for digit in range(10):
        expect(meters.nth(digit)).to_have_attribute("aria-label", f"digit {digit}")
        expect(meters.nth(digit)).to_have_attribute("aria-valuenow", "0")
    expect(desktop.locator("#prediction-spoken")).to_have_attribute("aria-live", "polite")
    assert desktop.eval_on_selector("#pad", "el => getComputedStyle(el).touchAction") == "none"
    # The connection badge shows the live round-trip time.
    expect(desktop.locator("#status-rtt")).to_have_text(re.compile(r"^\d+ ms$"), timeout=WAIT_MS)


@pytest.mark.parametrize("digit", sorted(DIGIT_STROKES))
def test_mouse_drawn_digit_is_recognised(desktop: Page, digit: int) -> None:
    clear(desktop)
    draw_digit(desktop, digit)
    wait_settled(desktop)
    expect(desktop.locator("#prediction")).to_have_attribute("data-digit", str(digit))
    assert sum(meter_values(desktop)) == pytest.approx(100, abs=1.5)
    expect(desktop.locator("#preview")).to_be_visible()


def test_predictions_stream_during_a_long_stroke(desktop: Page) -> None:
    clear(desktop)
    during_stroke: list[int] = []
    # About a second of drawing, as a slow '0'.
    mouse_stroke(
        desktop,
        arc(0.5, 0.5, 0.19, 0.3, 0.0, -1.08, 72),
        pause_ms=12,
        before_up=lambda: during_stroke.append(stats(desktop)["predictionsThisStroke"]),
    )
    assert during_stroke[0] > 1, "bars should move while the pen is still down"
    wait_settled(desktop)
    expect(desktop.locator("#prediction")).to_have_attribute("data-digit", "0")
    # The pen-up snapshot goes out as soon as it is encoded, not on a deferred idle task.
    assert stats(desktop)["penUpToSendMs"] < 250


def test_undo_and_clear_update_the_bars(desktop: Page) -> None:
    clear(desktop)
    draw_digit(desktop, 4)
    wait_settled(desktop)
    expect(desktop.locator("#prediction")).to_have_attribute("data-digit", "4")
    with_both_strokes = meter_values(desktop)

    desktop.keyboard.press("Control+z")  # removes the vertical stroke
    assert desktop.evaluate("window.digitstream.strokeCount") == 1
    wait_settled(desktop)
    assert meter_values(desktop) != with_both_strokes
    assert sum(meter_values(desktop)) == pytest.approx(100, abs=1.5)

    desktop.click("#undo")  # removes the last stroke: blank again
    assert desktop.evaluate("window.digitstream.strokeCount") == 0
    wait_settled(desktop)
    expect(desktop.locator("#prediction")).to_have_attribute("data-digit", "")
    assert meter_values(desktop) == [0] * 10

    draw_digit(desktop, 7)
    wait_settled(desktop)
    expect(desktop.locator("#prediction")).to_have_attribute("data-digit", "7")
    desktop.click("#clear")
    expect(desktop.locator("#prediction")).to_have_attribute("data-digit", "")
    wait_settled(desktop)  # the blank snapshot's answer keeps it blank
    expect(desktop.locator("#prediction")).to_have_attribute("data-digit", "")
    assert meter_values(desktop) == [0] * 10
    assert desktop.evaluate("window.digitstream.strokeCount") == 0


def test_a_stroke_that_leaves_the_pad_ends_cleanly(desktop: Page) -> None:
    clear(desktop)
    # Into the results panel and released there: pointer capture keeps the stroke on the pad.
    mouse_stroke(desktop, [(0.5, 0.5), (0.9, 0.5), (1.4, 0.6)])
    assert desktop.evaluate("window.digitstream.isDrawing") is False
    assert desktop.evaluate("window.digitstream.strokeCount") == 1
    assert desktop.evaluate("getSelection().toString()") == ""
    wait_settled(desktop)
    # A new stroke starts fresh instead of continuing the old one.
    mouse_stroke(desktop, [(0.3, 0.3), (0.3, 0.6)])
    assert desktop.evaluate("window.digitstream.strokeCount") == 2


def test_a_cancelled_stroke_keeps_the_ink_drawn_and_adds_none(desktop: Page) -> None:
    clear(desktop)
    # A cancelled pointer carries no position (Chromium reports 0, 0): a line to the pad's
    # corner would cross this spot.
    ink_on_the_way_to_the_corner = """() => {
      const pad = document.querySelector('#pad');
      const at = Math.round(pad.width * 0.2);
      return pad.getContext('2d').getImageData(at, at, 1, 1).data[3];
    }"""
    desktop.eval_on_selector("#pad", "pad => pad.addEventListener('pointerdown', (e) => (window.pen = e.pointerId))")
    cancel = "document.querySelector('#pad').dispatchEvent(new PointerEvent('pointercancel', {pointerId: window.pen}))"
    mouse_stroke(desktop, [(0.5, 0.5), (0.6, 0.7)], before_up=lambda: desktop.evaluate(cancel))
    assert desktop.evaluate("window.digitstream.isDrawing") is False
    assert desktop.evaluate("window.digitstream.strokeCount") == 1
    wait_settled(desktop)
    assert desktop.evaluate(ink_on_the_way_to_the_corner) == 0


def test_the_top_digit_is_marked_on_its_bar(desktop: Page, tmp_path: Path) -> None:
    clear(desktop)
    draw_digit(desktop, 7)
    wait_settled(desktop)
    expect(desktop.locator("#bars .bar.is-top")).to_have_count(1)
    expect(desktop.locator("#bars .bar").nth(7)).to_have_class(re.compile(r"\bis-top\b"))
    # The bars glide for 180 ms; the screenshot waits until the top one has finished.
    desktop.wait_for_function(
        "document.querySelectorAll('#bars .bar-fill')[7].getAnimations().length === 0", timeout=WAIT_MS
    )
    save_screenshot(desktop, "desktop.png", tmp_path)


# ---- Phone ------------------------------------------------------------------------------


def touches(page: Page, cdp, kind: str, *fingers: tuple[int, Point]) -> None:
    """The fingers now on the screen, as (id, point); CDP derives each finger's down/move/up."""
    points = [{"id": finger, **dict(zip(("x", "y"), to_screen(page, p)))} for finger, p in fingers]
    cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})


def touch_stroke(page: Page, cdp, stroke: Stroke) -> None:
    points = densify(stroke)
    touches(page, cdp, "touchStart", (1, points[0]))
    for point in points[1:]:
        touches(page, cdp, "touchMove", (1, point))
        page.wait_for_timeout(8)
    touches(page, cdp, "touchEnd")


def test_touch_drawing_on_a_phone_streams_and_never_scrolls(
    browser: Browser, server: ServerProcess, tmp_path: Path
) -> None:
    context = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, color_scheme="dark"
    )
    page = connected_page(context, server.base_url)
    # The pad fits the screen, drawn at device pixels.
    box = page.locator("#pad").bounding_box()
    assert box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert box["y"] + box["height"] <= PHONE["height"]
    assert page.evaluate("(pad => pad.width === pad.clientWidth * 2)(document.querySelector('#pad'))")
    cdp = context.new_cdp_session(page)

    for stroke in DIGIT_STROKES[7]:
        touch_stroke(page, cdp, stroke)
    wait_settled(page)
    expect(page.locator("#prediction")).to_have_attribute("data-digit", "7")
    assert stats(page)["predictionsReceived"] > 1
    page.wait_for_function(
        "document.querySelectorAll('#bars .bar-fill')[7].getAnimations().length === 0", timeout=WAIT_MS
    )
    save_screenshot(page, "mobile.png", tmp_path)

    # Make the page scrollable, so a stroke that scrolled it would show up in scrollY:
    # an upward swipe on the pad draws, it does not scroll the page down.
    page.evaluate("document.body.style.minHeight = '300vh'")
    touch_stroke(page, cdp, [(0.85, 0.9), (0.85, 0.1)])
    assert page.evaluate("window.digitstream.strokeCount") == 2
    assert page.evaluate("window.scrollY") == 0
    # Control: the same swipe on the results below the pad does scroll.
    touch_stroke(page, cdp, [(0.5, 1.6), (0.5, 1.1)])
    assert page.evaluate("window.scrollY") > 0

    # A second finger landing mid-stroke (a palm, a pinch) neither draws nor ends the stroke.
    page.evaluate("scrollTo(0, 0)")
    page.keyboard.press("Escape")
    touches(page, cdp, "touchStart", (1, (0.3, 0.3)))
    touches(page, cdp, "touchStart", (1, (0.3, 0.3)), (2, (0.7, 0.7)))
    for y in (0.35, 0.4, 0.45, 0.5):
        touches(page, cdp, "touchMove", (1, (0.3, y)), (2, (0.75, y)))
    touches(page, cdp, "touchMove", (1, (0.3, 0.5)))  # lifts the second finger only
    assert page.evaluate("window.digitstream.isDrawing") is True
    touches(page, cdp, "touchEnd")
    assert page.evaluate("window.digitstream.strokeCount") == 1
    assert page.evaluate("window.digitstream.isDrawing") is False
    assert_no_page_errors(page)
    context.close()
