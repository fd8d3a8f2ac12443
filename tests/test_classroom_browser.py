"""Classroom mode in real Chromium: a teacher dashboard and two student pages, plus a few
scripted students over plain WebSockets so the grid looks like a class.

The students draw with real mouse strokes. With DIGITSTREAM_SCREENSHOTS=1 the dashboard's
screenshot is written to docs/screenshots/classroom.png.
"""

from __future__ import annotations

import json
import os
from contextlib import ExitStack
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from websockets.sync.client import connect

from tests.support import REPO, ServerProcess, canvas_png, holdout

pytestmark = pytest.mark.browser

PROJECTOR = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
WAIT_MS = 20_000          # generous: two busy cores
# Name and the digit each scripted student sends (a hold-out sample of that digit).
SCRIPTED_STUDENTS = [("Chloé", 3), ("Dev", 7), ("Emil", 2), ("Fatima", 8), ("Gus", 7), ("Hana", 5), ("Ivo", 4), ("Jun", 9)]
HTML_NAME = "<b>Ann</b><img src=x>"
SEVEN = [(0.3, 0.24), (0.7, 0.24), (0.45, 0.8)]
ONE = [(0.53, 0.2), (0.47, 0.8)]


def new_page(browser: Browser, url: str, viewport: dict) -> Page:
    page = browser.new_context(viewport=viewport).new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda error: page.errors.append(str(error)))  # type: ignore[attr-defined]
    page.goto(url)
    return page


def draw(page: Page, stroke: list[tuple[float, float]], steps: int = 12) -> None:
    box = page.locator("#pad").bounding_box()
    assert box is not None
    points = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in stroke]
    page.mouse.move(*points[0])
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*point, steps=steps)
    page.mouse.up()
    page.wait_for_function("window.digitstream.settled", timeout=WAIT_MS)


def scripted_student(stack: ExitStack, server: ServerProcess, room: str, name: str, digit: int) -> None:
    x, y = holdout()
    ws = stack.enter_context(connect(server.ws_url))
    ws.send(json.dumps({"type": "join", "room": room, "name": name}))
    assert json.loads(ws.recv(timeout=WAIT_MS / 1000))["type"] == "joined"
    ws.send(canvas_png(x[list(y).index(digit) + len(name)], size=140))


def tile(dashboard: Page, name: str):
    return dashboard.locator(".tile", has=dashboard.locator(".tile-name", has_text=name))


def test_a_class_with_two_student_pages_and_a_dashboard(browser: Browser, server: ServerProcess, tmp_path: Path) -> None:
    dashboard = new_page(browser, f"{server.base_url}/classroom", PROJECTOR)
    dashboard.click("#create")
    expect(dashboard.locator("#status")).to_have_attribute("data-state", "connected", timeout=WAIT_MS)
    code = dashboard.locator("#code").inner_text().replace(" ", "")
    assert len(code) == 8
    assert dashboard.evaluate("location.hash") == f"#{code}"
    assert "secret" not in dashboard.url
    expect(dashboard.locator("#qr")).to_have_js_property("complete", True, timeout=WAIT_MS)
    assert dashboard.eval_on_selector("#qr", "img => img.naturalWidth") > 0

    # Ann arrives by the join link; Ben types the code, lower case and with a dash.
    ann = new_page(browser, f"{server.base_url}/?room={code}", PHONE)
    expect(ann.locator("#join-dialog")).to_be_visible(timeout=WAIT_MS)
    expect(ann.locator("#join-code")).to_have_value(code, timeout=WAIT_MS)
    ann.fill("#join-name", HTML_NAME)
    ann.click("#join-dialog button[type=submit]")
    expect(ann.locator("#room-banner")).to_be_visible(timeout=WAIT_MS)
    expect(ann.locator("#room-name")).to_have_text(HTML_NAME, timeout=WAIT_MS)
    ben = new_page(browser, f"{server.base_url}/", PHONE)
    ben.click("#join-class")
    ben.fill("#join-code", f"{code[:4].lower()}-{code[4:].lower()}")
    ben.fill("#join-name", "Ben")
    ben.press("#join-name", "Enter")
    expect(ben.locator("#room-banner")).to_be_visible(timeout=WAIT_MS)
    with ExitStack() as scripted:
        for name, digit in SCRIPTED_STUDENTS:
            scripted_student(scripted, server, code, name, digit)
        expect(dashboard.locator(".tile")).to_have_count(2 + len(SCRIPTED_STUDENTS), timeout=WAIT_MS)
        # The HTML in Ann's name is text on every page, never markup.
        expect(tile(dashboard, HTML_NAME).locator(".tile-name")).to_have_text(HTML_NAME, timeout=WAIT_MS)
        assert dashboard.locator(".tile-name b, .tile-name img").count() == 0
        assert ann.locator("#room-name b, #room-name img").count() == 0

        # The teacher asks for a 7: both pages show it, Ann draws one, Ben a 1.
        dashboard.click("#prompts button:text-is('7')")
        expect(ann.locator("#room-prompt")).to_have_text("Draw a 7", timeout=WAIT_MS)
        expect(ben.locator("#room-prompt")).to_have_text("Draw a 7", timeout=WAIT_MS)
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
        expect(dashboard.locator("#matching")).to_have_text(str(matching), timeout=WAIT_MS)
        save_screenshot(dashboard, tmp_path)

        # Clear everyone's pad.
        dashboard.click("#clear-all")
        ann.wait_for_function("window.digitstream.strokeCount === 0", timeout=WAIT_MS)
        ben.wait_for_function("window.digitstream.strokeCount === 0", timeout=WAIT_MS)
        expect(ann_tile).to_have_attribute("data-digit", "", timeout=WAIT_MS)
        expect(dashboard.locator("#matching")).to_have_text("0", timeout=WAIT_MS)

        # Remove Ben: he is told and keeps drawing alone; his tile goes.
        ben_tile.hover()
        ben_tile.locator(".tile-remove").click()
        expect(ben.locator("#room-notice")).to_contain_text("removed", timeout=WAIT_MS)
        expect(ben.locator("#join-class")).to_be_visible(timeout=WAIT_MS)
        expect(ben_tile).to_have_count(0, timeout=WAIT_MS)

        # Close the room (two clicks): Ann is told, the dashboard goes back to its start.
        dashboard.click("#close-room")
        dashboard.click("#close-room")
        expect(ann.locator("#room-notice")).to_contain_text("ended", timeout=WAIT_MS)
        expect(dashboard.locator("#start")).to_be_visible(timeout=WAIT_MS)
        for page in (dashboard, ann, ben):
            assert page.errors == []  # type: ignore[attr-defined]
    for page in (dashboard, ann, ben):
        page.context.close()


def test_a_wrong_code_is_explained_in_the_dialog(browser: Browser, server: ServerProcess) -> None:
    page = new_page(browser, f"{server.base_url}/?room=ZZZZZZZZ", PHONE)
    page.fill("#join-name", "Zoe")
    page.click("#join-dialog button[type=submit]")
    expect(page.locator("#join-error")).to_have_text("No open class has that code.", timeout=WAIT_MS)
    expect(page.locator("#room-banner")).to_be_hidden(timeout=WAIT_MS)
    page.context.close()


def save_screenshot(page: Page, tmp_path: Path) -> None:
    folder = REPO / "docs" / "screenshots" if os.environ.get("DIGITSTREAM_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / "classroom.png"))
