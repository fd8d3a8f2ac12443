"""A student's phone in a class, in real Chromium: the whole answer on one screen at phone
sizes, controls big enough to tap, the dialog's Esc, keyboard focus, bar contrast, and what a
server restart looks like from the phone and the projector."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

from tests.browser_support import (
    DESKTOP,
    SEVEN,
    WAIT_MS,
    assert_no_page_errors,
    axe_violations,
    box,
    close_checked,
    draw,
    inside_viewport,
    join_by_link,
    mouse_stroke,
    new_page,
    page_scrolls,
    save_screenshot,
    start_class,
    wait_connected,
    wait_settled,
)
from tests.support import ServerProcess

pytestmark = pytest.mark.browser

# A small Android phone, an iPhone with Safari's toolbars showing, and both on their side.
PHONE_SIZES = [(360, 640), (390, 664), (640, 360), (844, 390)]
ANSWER = ["#pad", "#room-prompt", "#prediction", "#bars", "#undo", "#clear", "#room-leave"]
MIN_TARGET_PX = 44
MIN_CONTRAST = 3.0


@pytest.fixture(scope="module")
def classroom(server: ServerProcess) -> Iterator[str]:
    """An open class asking for a 7, held by a teacher's socket; yields its code."""
    created = httpx.post(f"{server.base_url}/api/rooms", headers={"origin": server.base_url}).json()
    with connect(server.ws_url + "/teacher", origin=Origin(server.base_url)) as teacher:
        teacher.send(json.dumps({"type": "auth", "room": created["room"], "secret": created["secret"]}))
        assert json.loads(teacher.recv(timeout=WAIT_MS / 1000))["type"] == "snapshot"
        teacher.send(json.dumps({"type": "prompt", "digit": 7}))
        wait_for_prompt(teacher)
        yield created["room"]


def wait_for_prompt(teacher: ClientConnection) -> None:
    while json.loads(teacher.recv(timeout=WAIT_MS / 1000)).get("prompt") != 7:
        pass


def phone(browser: Browser, url: str, width: int, height: int, **options) -> Page:
    return new_page(browser, url, {"width": width, "height": height}, is_mobile=True, has_touch=True, **options)


@pytest.mark.parametrize(("width", "height"), PHONE_SIZES, ids=[f"{w}x{h}" for w, h in PHONE_SIZES])
def test_in_a_class_the_whole_answer_fits_the_screen(
    browser: Browser, server: ServerProcess, classroom: str, width: int, height: int, tmp_path: Path
) -> None:
    page = phone(browser, f"{server.base_url}/", width, height)
    join_by_link(page, server.base_url, classroom, "Ana")
    expect(page.locator("#room-prompt")).to_have_text("Draw a 7", timeout=WAIT_MS)
    draw(page, SEVEN)
    expect(page.locator("#prediction")).to_have_attribute("data-digit", "7")
    for selector in ANSWER:
        assert inside_viewport(page, selector), selector
    assert page_scrolls(page) == {"x": False, "y": False}
    if (width, height) == (390, 664):
        save_screenshot(page, "mobile-class.png", tmp_path)
    assert_no_page_errors(page)
    page.context.close()


def test_a_320_px_phone_does_not_scroll_sideways(browser: Browser, server: ServerProcess, classroom: str) -> None:
    page = phone(browser, f"{server.base_url}/", 320, 568)
    wait_connected(page)
    assert page_scrolls(page)["x"] is False
    join_by_link(page, server.base_url, classroom, "Ana")
    assert page_scrolls(page)["x"] is False
    page.context.close()


def test_every_control_is_big_enough_to_tap(browser: Browser, server: ServerProcess, classroom: str) -> None:
    page = phone(browser, f"{server.base_url}/", 390, 664)
    wait_connected(page)
    page.click("#join-class")
    controls = [
        "#undo",
        "#clear",
        "#join-code",
        "#join-name",
        "#join-dialog button >> nth=0",
        "#join-dialog button >> nth=1",
    ]
    sizes = {selector: box(page, selector) for selector in controls}
    page.keyboard.press("Escape")
    sizes["#join-class"] = box(page, "#join-class")
    join_by_link(page, server.base_url, classroom, "Ana")
    sizes["#room-leave"] = box(page, "#room-leave")
    small = {s: (b["width"], b["height"]) for s, b in sizes.items() if min(b["width"], b["height"]) < MIN_TARGET_PX}
    assert small == {}
    page.context.close()


def test_esc_in_the_join_dialog_keeps_the_drawing(browser: Browser, server: ServerProcess) -> None:
    page = phone(browser, f"{server.base_url}/", 390, 664)
    wait_connected(page)
    draw(page, SEVEN)
    for focus in ("#join-dialog button >> nth=0", "#join-code"):
        page.click("#join-class")
        page.focus(focus)
        page.keyboard.press("Escape")
        expect(page.locator("#join-dialog")).to_be_hidden()
        assert page.evaluate("window.digitstream.strokeCount") == 1
        expect(page.locator("#prediction")).to_have_attribute("data-digit", "7")
    page.context.close()


@pytest.mark.parametrize("button", ["#undo", "#clear"])
def test_focus_stays_on_undo_and_clear_when_they_have_nothing_left_to_do(
    browser: Browser, server: ServerProcess, button: str
) -> None:
    page = new_page(browser, f"{server.base_url}/", DESKTOP)
    wait_connected(page)
    mouse_stroke(page, SEVEN)
    page.focus(button)
    page.keyboard.press("Enter")
    assert page.evaluate("window.digitstream.strokeCount") == 0
    expect(page.locator(button)).to_have_attribute("aria-disabled", "true")
    expect(page.locator(button)).to_be_focused()
    page.context.close()


def contrast(page: Page, a: str, b: str) -> float:
    """WCAG contrast between two computed colours (rgb() strings) of the page."""
    return page.evaluate(
        """([a, b]) => {
          const lum = (css) => {
            const [r, g, b] = css.match(/[\\d.]+/g).slice(0, 3).map(Number).map((v) => {
              v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
            return 0.2126 * r + 0.7152 * g + 0.0722 * b;
          };
          const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x);
          return (hi + 0.05) / (lo + 0.05);
        }""",
        [a, b],
    )


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_bars_and_the_pad_edge_have_3_to_1_contrast(browser: Browser, server: ServerProcess, scheme: str) -> None:
    page = new_page(browser, f"{server.base_url}/", DESKTOP, color_scheme=scheme)

    def style(selector, prop):
        return page.eval_on_selector(selector, f"el => getComputedStyle(el).{prop}")

    fill = style("#bars .bar:not(.is-top) .bar-fill", "backgroundColor")
    track = style("#bars .bar:not(.is-top) .bar-track", "backgroundColor")
    assert contrast(page, fill, track) >= MIN_CONTRAST
    edge = style(".pad-frame", "borderTopColor")
    assert contrast(page, edge, style("body", "backgroundColor")) >= MIN_CONTRAST
    assert contrast(page, edge, style(".pad-frame", "backgroundColor")) >= MIN_CONTRAST
    page.context.close()


@pytest.fixture()
def own_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server this test may stop and start again (the shared one serves other tests)."""
    process = ServerProcess(log_path=tmp_path / "server.log").start()
    yield process
    process.stop()


def test_a_server_restart_is_explained_without_a_modal(browser: Browser, own_server: ServerProcess) -> None:
    dashboard = new_page(browser, f"{own_server.base_url}/classroom", DESKTOP)
    code = start_class(dashboard)
    student = phone(browser, f"{own_server.base_url}/", 390, 664)
    join_by_link(student, own_server.base_url, code, "Ana")
    draw(student, SEVEN)

    own_server.stop()
    expect(student.locator("#connection-notice")).to_contain_text("server cannot be reached", timeout=WAIT_MS)
    assert axe_violations(student) == []  # dimmed, the answer's text keeps its contrast
    own_server.start()  # the embedded server starts with no classes

    # The automatic rejoin finds no class: a notice beside the drawing, not the dialog.
    expect(student.locator("#room-notice")).to_contain_text(
        "The class was closed when the server restarted: ask your teacher for the new code", timeout=WAIT_MS
    )
    expect(student.locator("#join-dialog")).to_be_hidden()
    expect(student.locator("#join-class")).to_be_visible()
    assert student.evaluate("window.digitstream.strokeCount") == 1
    wait_settled(student)
    expect(student.locator("#prediction")).to_have_attribute("data-digit", "7")
    expect(student.locator("#connection-notice")).to_be_hidden()
    # The teacher is told the same, and how to go on.
    expect(dashboard.locator("#start-message")).to_contain_text("the server restarted", timeout=WAIT_MS)
    close_checked(dashboard, student)
