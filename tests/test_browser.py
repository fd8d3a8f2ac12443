"""The drawing page in real Chromium: mouse and touch strokes, streaming, bars, reconnects.

Digits are drawn as strokes through real input events (no injected images), at a size and pen
width like a person's. The page exposes a read-only `window.digitstream` hook so the tests can
wait for "the newest snapshot's answer is on screen" instead of sleeping.

Screenshots go to a temporary folder; with DIGITSTREAM_SCREENSHOTS=1 they are written to
docs/screenshots/ (desktop.png, mobile.png) for the README.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser_support import (
    DESKTOP,
    DIGIT_STROKES,
    PHONE,
    WAIT_MS,
    Point,
    Stroke,
    arc,
    assert_no_page_errors,
    densify,
    mouse_stroke,
    open_page,
    save_screenshot,
    to_screen,
    wait_connected,
    wait_settled,
)
from tests.support import ServerProcess

pytestmark = pytest.mark.browser


# ---- Browser plumbing -------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def restartable_server(
    server: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Future[ServerProcess]]:
    """A server of its own for the restart test (stopping the shared one would break other
    tests), started in the background once the shared one is up (not competing with its
    startup), so its own startup overlaps the drawing tests instead of adding to them."""
    own = ServerProcess(log_path=tmp_path_factory.mktemp("restartable") / "server.log")
    with ThreadPoolExecutor(max_workers=1) as pool:
        starting = pool.submit(own.start)
        yield starting
        starting.exception()  # wait for the start to finish before stopping
        own.stop()


def connected_page(context: BrowserContext, base_url: str) -> Page:
    page = open_page(context, base_url + "/")
    wait_connected(page)
    return page


@pytest.fixture(scope="module")
def desktop(browser: Browser, server: ServerProcess) -> Iterator[Page]:
    context = browser.new_context(viewport=DESKTOP, color_scheme="light")
    page = connected_page(context, server.base_url)
    yield page
    assert_no_page_errors(page)
    context.close()


def draw_digit(page: Page, digit: int) -> None:
    for stroke in DIGIT_STROKES[digit]:
        mouse_stroke(page, stroke)


def meter_values(page: Page) -> list[float]:
    return page.eval_on_selector_all(
        "#bars [role=meter]", "meters => meters.map(m => Number(m.getAttribute('aria-valuenow')))"
    )


def stats(page: Page) -> dict:
    return page.evaluate("window.digitstream.stats")


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


# ---- Failure modes ----------------------------------------------------------------------


# A stand-in for the server's socket, so a test can answer out of order on purpose.
FAKE_WEBSOCKET = """
window.fakeSockets = [];
window.WebSocket = class FakeWebSocket extends EventTarget {
  constructor(url) {
    super();
    Object.assign(this, { url, readyState: 0, bufferedAmount: 0, binaryType: 'blob', sent: [] });
    fakeSockets.push(this);
    setTimeout(() => { this.readyState = 1; this.dispatchEvent(new Event('open')); });
  }
  send(data) { this.sent.push(typeof data === 'string' ? JSON.parse(data) : 'snapshot'); }
  close() { this.readyState = 3; this.dispatchEvent(new Event('close')); }
  answer(message) { this.dispatchEvent(new MessageEvent('message', { data: JSON.stringify(message) })); }
};
"""


def wait_sent(page: Page) -> None:
    """Until every snapshot the page rendered is encoded and sent."""
    page.wait_for_function("!window.digitstream.sending", timeout=WAIT_MS)


def fake_prediction(seq: int, digit: int | None) -> dict:
    probabilities = [0.0] * 10
    if digit is not None:
        probabilities[digit] = 1.0
    return {
        "type": "prediction",
        "seq": seq,
        "empty": digit is None,
        "digit": digit,
        "confidence": 0.0 if digit is None else 1.0,
        "probabilities": probabilities,
        "preview": None,
        "timing": {"queue_ms": 0, "inference_ms": 0, "total_ms": 0},
    }


def test_late_answers_never_replace_newer_ones(browser: Browser, server: ServerProcess) -> None:
    context = browser.new_context(viewport=DESKTOP)
    context.add_init_script(FAKE_WEBSOCKET)
    page = connected_page(context, server.base_url)

    def answer(seq, digit):
        return page.evaluate("message => fakeSockets[0].answer(message)", fake_prediction(seq, digit))

    prediction = page.locator("#prediction")

    draw_digit(page, 7)
    wait_sent(page)
    sent = page.evaluate("window.digitstream.sentSeq")
    assert sent == page.evaluate("fakeSockets[0].sent.filter(m => m === 'snapshot').length") > 2
    answer(sent - 1, 7)
    expect(prediction).to_have_attribute("data-digit", "7")
    answer(sent - 2, 1)  # older than the one shown: ignored
    expect(prediction).to_have_attribute("data-digit", "7")

    page.keyboard.press("Escape")  # clear: a control message and a blank snapshot
    wait_sent(page)
    assert {"type": "clear"} in page.evaluate("fakeSockets[0].sent")
    assert page.evaluate("window.digitstream.sentSeq") == sent + 1
    answer(sent, 4)  # newer, but about the cleared drawing: ignored
    expect(prediction).to_have_attribute("data-digit", "")
    assert page.evaluate("window.digitstream.lastSeq") == sent - 1
    answer(sent + 1, None)
    expect(prediction).to_have_attribute("data-digit", "")
    assert page.evaluate("window.digitstream.settled")
    assert_no_page_errors(page)
    context.close()


def test_without_websockets_the_page_classifies_over_http(browser: Browser, server: ServerProcess) -> None:
    context = browser.new_context(viewport=DESKTOP)
    context.add_init_script("delete window.WebSocket")
    page = context.new_page()
    page.goto(server.base_url + "/")
    expect(page.locator("#status")).to_have_attribute("data-state", "fallback")
    draw_digit(page, 7)
    wait_settled(page)
    expect(page.locator("#prediction")).to_have_attribute("data-digit", "7")
    expect(page.locator("#status")).to_have_attribute("data-state", "fallback")
    assert sum(meter_values(page)) == pytest.approx(100, abs=1.5)
    expect(page.locator("#preview")).to_be_visible()
    context.close()


def test_page_reconnects_and_resends_after_a_server_restart(
    browser: Browser, restartable_server: Future[ServerProcess]
) -> None:
    server = restartable_server.result(timeout=180)
    context = browser.new_context(viewport=DESKTOP)
    try:
        page = connected_page(context, server.base_url)
        draw_digit(page, 7)
        wait_settled(page)
        expect(page.locator("#prediction")).to_have_attribute("data-digit", "7")

        server.stop()
        expect(page.locator("#status")).to_have_attribute(
            "data-state", re.compile("reconnecting|offline"), timeout=WAIT_MS
        )
        # The old answer stays, dimmed, and the page says plainly why.
        expect(page.locator("#connection-notice")).to_contain_text("server cannot be reached", timeout=WAIT_MS)
        expect(page.locator("#connection-notice")).to_be_visible()
        assert page.eval_on_selector(".results", "el => getComputedStyle(el).filter") == "grayscale(1)"
        assert float(page.eval_on_selector(".bar.is-top .bar-fill", "el => getComputedStyle(el).opacity")) < 0.5
        expect(page.locator("#prediction")).to_have_attribute("data-digit", "7")
        # Mark the shown answer, so only a fresh answer from the new server can replace it.
        page.evaluate("document.querySelector('#prediction').dataset.digit = 'stale'")
        server.start()  # a fresh process on the same port

        expect(page.locator("#status")).to_have_attribute("data-state", "connected", timeout=WAIT_MS)
        wait_settled(page)
        expect(page.locator("#prediction")).to_have_attribute("data-digit", "7")
        expect(page.locator("#connection-notice")).to_be_hidden()
        assert stats(page)["connections"] == 2
        assert stats(page)["resends"] == 1
        assert_no_page_errors(page)
    finally:
        context.close()
