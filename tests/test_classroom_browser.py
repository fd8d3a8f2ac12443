"""Classroom mode in real Chromium: a teacher dashboard and two student pages, plus a few
scripted students over plain WebSockets so the grid looks like a class.

The students draw with real mouse strokes; the teacher clicks the dashboard's buttons.
"""

from __future__ import annotations

import re
from contextlib import ExitStack

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser_support import (
    DESKTOP,
    ONE,
    PHONE,
    SEVEN,
    WAIT_MS,
    assert_no_page_errors,
    class_of,
    close_checked,
    draw,
    join_by_link,
    new_page,
    open_page,
    start_class,
)
from tests.support import ServerProcess

pytestmark = pytest.mark.browser

HTML_NAME = "<b>Ann</b><img src=x>"


def tile(dashboard: Page, name: str):
    return dashboard.locator(".tile", has=dashboard.locator(".tile-name", has_text=name))


def test_a_class_with_two_student_pages_and_a_dashboard(browser: Browser, server: ServerProcess) -> None:
    dashboard = new_page(browser, f"{server.base_url}/classroom", DESKTOP)
    code = start_class(dashboard)
    assert len(code) == 8
    assert dashboard.evaluate("location.hash") == f"#{code}"
    assert "secret" not in dashboard.url
    expect(dashboard.locator("#qr")).to_have_js_property("complete", True, timeout=WAIT_MS)
    assert dashboard.eval_on_selector("#qr", "img => img.naturalWidth") > 0
    # Without a prompt the counter is a sentence with a number in it.
    expect(dashboard.locator("#score")).to_have_text(re.compile(r"^\s*0\s+students in the class\s*$"))

    # Ann arrives by the join link and sees the code as the projector shows it; Ben types it,
    # lower case and with a dash.
    ann = new_page(browser, f"{server.base_url}/?room={code}", PHONE)
    expect(ann.locator("#join-dialog")).to_be_visible(timeout=WAIT_MS)
    expect(ann.locator("#join-code")).to_have_value(f"{code[:4]} {code[4:]}", timeout=WAIT_MS)
    ann.fill("#join-name", HTML_NAME)
    ann.click("#join-dialog button[type=submit]")
    expect(ann.locator("#room-banner")).to_be_visible(timeout=WAIT_MS)
    expect(ann.locator("#room-name")).to_have_text(HTML_NAME, timeout=WAIT_MS)
    expect(ann.locator("#room-code")).to_have_text(dashboard.locator("#code").inner_text())
    ben = new_page(browser, f"{server.base_url}/", PHONE)
    ben.click("#join-class")
    ben.fill("#join-code", f"{code[:4].lower()}-{code[4:].lower()}")
    ben.fill("#join-name", "Ben")
    ben.press("#join-name", "Enter")
    expect(ben.locator("#room-banner")).to_be_visible(timeout=WAIT_MS)
    with ExitStack() as scripted:
        class_of(scripted, server, code, 8)
        expect(dashboard.locator(".tile")).to_have_count(10, timeout=WAIT_MS)
        expect(dashboard.locator("#score")).to_have_text(re.compile(r"^\s*10\s+students in the class\s*$"))
        # The HTML in Ann's name is text on every page, never markup.
        expect(tile(dashboard, HTML_NAME).locator(".tile-name")).to_have_text(HTML_NAME, timeout=WAIT_MS)
        assert dashboard.locator(".tile-name b, .tile-name img").count() == 0
        assert ann.locator("#room-name b, #room-name img").count() == 0

        # The teacher asks for a 7: both pages show it, Ann draws one, Ben a 1.
        dashboard.click("#prompts button:text-is('7')")
        expect(ann.locator("#room-prompt")).to_have_text("Draw a 7", timeout=WAIT_MS)
        expect(ben.locator("#room-prompt")).to_have_text("Draw a 7", timeout=WAIT_MS)
        expect(ann.locator("#room-prompt")).to_have_attribute("aria-live", "polite")
        expect(dashboard.locator("#announcer")).to_have_text("Prompt: draw a 7.", timeout=WAIT_MS)
        draw(ann, SEVEN)
        draw(ben, ONE)
        expect(ann.locator("#room-prompt")).to_have_attribute("data-match", "true", timeout=WAIT_MS)
        ann_tile, ben_tile = tile(dashboard, HTML_NAME), tile(dashboard, "Ben")
        expect(ann_tile).to_have_attribute("data-digit", "7", timeout=WAIT_MS)
        expect(ann_tile).to_have_attribute("data-match", "true", timeout=WAIT_MS)
        expect(ben_tile).to_have_attribute("data-digit", "1", timeout=WAIT_MS)
        expect(ben_tile).to_have_attribute("data-match", "false", timeout=WAIT_MS)
        expect(ann_tile.locator(".tile-preview")).to_be_visible(timeout=WAIT_MS)
        expect(dashboard.locator(".tile[data-digit='']")).to_have_count(0, timeout=WAIT_MS)
        matching = dashboard.locator(".tile[data-match=true]").count()
        assert matching >= 1
        expect(dashboard.locator("#score")).to_have_text(
            re.compile(rf"^\s*{matching}\s+of 10 students drew a 7\s*$"), timeout=WAIT_MS
        )

        # Clear everyone's pad.
        dashboard.click("#clear-all")
        ann.wait_for_function("window.digitstream.strokeCount === 0", timeout=WAIT_MS)
        ben.wait_for_function("window.digitstream.strokeCount === 0", timeout=WAIT_MS)
        expect(ann_tile).to_have_attribute("data-digit", "", timeout=WAIT_MS)
        expect(dashboard.locator("#score-count")).to_have_text("0", timeout=WAIT_MS)

        # Remove Ben takes two presses: the first only asks.
        remove = ben_tile.locator(".tile-remove")
        remove.click()
        expect(remove).to_have_text("Remove?")
        expect(remove).to_have_attribute("aria-label", "Press again to remove Ben")
        expect(ben.locator("#room-banner")).to_be_visible()
        remove.click()
        expect(ben.locator("#room-notice")).to_contain_text("removed", timeout=WAIT_MS)
        expect(ben.locator("#join-class")).to_be_visible(timeout=WAIT_MS)
        expect(ben_tile).to_have_count(0, timeout=WAIT_MS)
        # The focus that was on Ben's Remove moves to a neighbour's, not back to the page's top.
        expect(dashboard.locator(".tile-remove:focus")).to_have_count(1)
        expect(dashboard.locator("#announcer")).to_have_text("Ben left.", timeout=WAIT_MS)

        # End the class (two clicks): Ann is told, the dashboard goes back to its start.
        dashboard.click("#close-room")
        dashboard.click("#close-room")
        expect(ann.locator("#room-notice")).to_contain_text("ended", timeout=WAIT_MS)
        expect(dashboard.locator("#start")).to_be_visible(timeout=WAIT_MS)
        for page in (dashboard, ann, ben):
            assert_no_page_errors(page)
    for page in (dashboard, ann, ben):
        page.context.close()


# As Chromium with every cookie blocked: each touch of Web Storage throws.
BLOCKED_STORAGE = """
for (const area of ['localStorage', 'sessionStorage']) {
  Object.defineProperty(window, area, {
    get() { throw new DOMException('The operation is insecure.', 'SecurityError'); },
  });
}
"""


def test_a_browser_that_blocks_storage_still_teaches_joins_and_draws(browser: Browser, server: ServerProcess) -> None:
    pages = []
    for url, viewport in ((f"{server.base_url}/classroom", DESKTOP), ("about:blank", PHONE)):
        context = browser.new_context(viewport=viewport)
        context.add_init_script(BLOCKED_STORAGE)
        pages.append(open_page(context, url))
    dashboard, student = pages
    code = start_class(dashboard)
    join_by_link(student, server.base_url, code, "Lou")
    draw(student, SEVEN)
    expect(tile(dashboard, "Lou")).to_have_attribute("data-digit", "7", timeout=WAIT_MS)
    close_checked(*pages)


def test_keyboard_focus_moves_to_leave_once_joined_and_back_once_left(browser: Browser, server: ServerProcess) -> None:
    dashboard = new_page(browser, f"{server.base_url}/classroom", DESKTOP)
    code = start_class(dashboard)
    student = new_page(browser, f"{server.base_url}/", PHONE)
    student.click("#join-class")
    student.fill("#join-code", code)
    student.fill("#join-name", "Kim")
    student.press("#join-name", "Enter")
    expect(student.locator("#room-leave")).to_be_focused(timeout=WAIT_MS)
    student.keyboard.press("Enter")
    expect(student.locator("#join-class")).to_be_focused(timeout=WAIT_MS)
    expect(student.locator("#room-banner")).to_be_hidden()
    close_checked(dashboard, student)


def test_starting_a_class_adds_no_history_entry_that_would_forget_it(browser: Browser, server: ServerProcess) -> None:
    """With an entry, Back showed the same page without the class's code, and a reload there
    dropped the teacher's secret while the class ran on."""
    dashboard = new_page(browser, f"{server.base_url}/classroom", DESKTOP)
    entries = dashboard.evaluate("history.length")
    code = start_class(dashboard)
    assert dashboard.evaluate("history.length") == entries
    dashboard.reload()
    expect(dashboard.locator("#status")).to_have_attribute("data-state", "connected", timeout=WAIT_MS)
    assert dashboard.locator("#code").inner_text().replace(" ", "") == code
    assert_no_page_errors(dashboard)
    dashboard.context.close()


def test_end_class_armed_in_one_class_is_not_armed_in_the_next(browser: Browser, server: ServerProcess) -> None:
    dashboard = new_page(browser, f"{server.base_url}/classroom", DESKTOP)
    start_class(dashboard)
    dashboard.click("#close-room")
    dashboard.click("#close-room")
    expect(dashboard.locator("#start")).to_be_visible(timeout=WAIT_MS)
    start_class(dashboard)
    dashboard.click("#close-room")  # a first click only asks for a second
    expect(dashboard.locator("#close-room")).to_have_text("Click again to end")
    # A command after it comes back from the server only if the class is still open.
    dashboard.click("#prompts button:text-is('4')")
    expect(dashboard.locator("#prompts button:text-is('4')")).to_have_attribute("aria-pressed", "true")
    expect(dashboard.locator("#start")).to_be_hidden()
    close_checked(dashboard)


def test_a_wrong_code_is_explained_in_the_dialog(browser: Browser, server: ServerProcess) -> None:
    page = new_page(browser, f"{server.base_url}/?room=ZZZZZZZZ", PHONE)
    page.fill("#join-name", "Zoe")
    page.click("#join-dialog button[type=submit]")
    expect(page.locator("#join-error")).to_have_text("No open class has that code.", timeout=WAIT_MS)
    expect(page.locator("#room-banner")).to_be_hidden(timeout=WAIT_MS)
    page.context.close()
