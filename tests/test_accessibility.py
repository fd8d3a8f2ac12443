"""axe-core (the engine browsers' own audits use) on every screen a class sees: the drawing
page, its join dialog, a joined phone that has drawn, and the dashboard before and after a
class starts and with 30 students, in light, dark and forced-colours (Windows High Contrast)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Literal, TypedDict

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.browser_support import (
    DESKTOP,
    PHONE,
    SEVEN,
    WAIT_MS,
    axe_violations,
    class_of,
    draw,
    join_by_link,
    new_page,
    start_class,
    wait_connected,
)
from tests.support import ServerProcess

pytestmark = pytest.mark.browser


class Scheme(TypedDict, total=False):
    """Browser-context options that set how the page's colours are asked for."""

    color_scheme: Literal["light", "dark"]
    forced_colors: Literal["active", "none"]


SCHEMES: dict[str, Scheme] = {
    "light": {"color_scheme": "light"},
    "dark": {"color_scheme": "dark"},
    "forced-colors": {"color_scheme": "light", "forced_colors": "active"},
}


@pytest.fixture(scope="module")
def full_class(server: ServerProcess) -> Iterator[dict]:
    """A class of 29 scripted students (Ana makes 30); yields the class's code and teacher secret."""
    keys = httpx.post(f"{server.base_url}/api/rooms", headers={"origin": server.base_url}).json()
    with ExitStack() as students:
        class_of(students, server, keys["room"], 29)
        yield keys


@pytest.mark.parametrize("scheme", SCHEMES)
def test_no_axe_violations_on_any_screen(
    browser: Browser, server: ServerProcess, full_class: dict, scheme: str
) -> None:
    options = SCHEMES[scheme]
    found: dict[str, list[str]] = {}

    page = new_page(browser, f"{server.base_url}/", PHONE, **options)
    wait_connected(page)
    found["/"] = axe_violations(page)
    page.click("#join-class")
    expect(page.locator("#join-dialog")).to_be_visible()
    found["join dialog"] = axe_violations(page)
    page.keyboard.press("Escape")
    join_by_link(page, server.base_url, full_class["room"], "Ana")
    draw(page, SEVEN)
    found["joined phone"] = axe_violations(page)

    dashboard = new_page(browser, f"{server.base_url}/classroom", DESKTOP, **options)
    found["/classroom"] = axe_violations(dashboard)
    start_class(dashboard)
    found["/classroom, new class"] = axe_violations(dashboard)

    # The class of 30's dashboard, opened as the tab that started it (its secret in this tab).
    context = browser.new_context(viewport=DESKTOP, **options)
    keys = json.dumps({"room": full_class["room"], "secret": full_class["secret"]})
    context.add_init_script(f"sessionStorage.setItem('digitstream.classroom', {json.dumps(keys)})")
    projector = context.new_page()
    projector.goto(f"{server.base_url}/classroom#{full_class['room']}")
    expect(projector.locator(".tile")).to_have_count(30, timeout=WAIT_MS)
    projector.click("#prompts button:text-is('7')")
    expect(projector.locator(".tile[data-match=true]").first).to_be_visible(timeout=WAIT_MS)
    found["/classroom, 30 students"] = axe_violations(projector)

    assert {screen: v for screen, v in found.items() if v} == {}
    page.click("#room-leave")  # a seat is otherwise held for a while after its page closes
    expect(projector.locator(".tile")).to_have_count(29, timeout=WAIT_MS)
    for each in (page, dashboard, projector):
        each.context.close()


# Counts changes inside every live region (aria-live, status, alert) of the page, and every
# change of the round-trip badge, which is not one.
COUNT_LIVE_CHANGES = """
window.liveChanges = 0;
const observer = new MutationObserver((records) => {
  for (const record of records) {
    const node = record.target.nodeType === 1 ? record.target : record.target.parentElement;
    if (node.closest('[aria-live], [role=status], [role=alert]')) window.liveChanges++;
  }
});
observer.observe(document.body, { subtree: true, childList: true, characterData: true });
"""


TWO_MORE_ROUND_TRIPS = """() => {
  const latest = window.digitstream.rttMs;
  if (latest !== window.roundTrips.at(-1)) window.roundTrips.push(latest);
  return window.roundTrips.length >= 3;
}"""


def test_live_regions_speak_once_per_change(browser: Browser, server: ServerProcess) -> None:
    dashboard = new_page(browser, f"{server.base_url}/classroom", DESKTOP)
    code = start_class(dashboard)
    student = new_page(browser, "about:blank", PHONE)
    join_by_link(student, server.base_url, code, "Ana")
    draw(student, SEVEN)
    for page in (dashboard, student):
        page.evaluate(COUNT_LIVE_CHANGES)

    # Idle in a class: two more pongs arrive (the badge shows each round trip, though its text
    # changes only when the rounded figure does), and nothing is announced.
    student.evaluate("window.roundTrips = [window.digitstream.rttMs]")
    student.wait_for_function(TWO_MORE_ROUND_TRIPS, timeout=WAIT_MS)
    assert student.evaluate("window.liveChanges") == 0
    # More drawing: the phone speaks the settled answer once, not every frame's; tiles and
    # counts move on the dashboard, none of it announced.
    draw(student, [(0.2, 0.9), (0.8, 0.9)])
    assert student.evaluate("window.liveChanges") <= 1
    expect(dashboard.locator(".tile")).to_have_attribute("data-digit", re.compile(r"^\d$"), timeout=WAIT_MS)
    assert dashboard.evaluate("window.liveChanges") == 0
    # A new prompt: said once on each side.
    student.evaluate("window.liveChanges = 0")
    dashboard.click("#prompts button:text-is('3')")
    expect(student.locator("#room-prompt")).to_have_text("Draw a 3", timeout=WAIT_MS)
    expect(dashboard.locator("#announcer")).to_have_text("Prompt: draw a 3.", timeout=WAIT_MS)
    assert student.evaluate("window.liveChanges") == 1
    assert dashboard.evaluate("window.liveChanges") == 1
    for page in (dashboard, student):
        page.context.close()
