"""The dashboard on a projector with a class of 30: every tile on one screen, names readable
from the back of the room, and the code and QR scaling with the screen."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser_support import (
    WAIT_MS,
    assert_no_page_errors,
    class_of,
    new_page,
    page_scrolls,
    save_screenshot,
    start_class,
)
from tests.support import ServerProcess

pytestmark = pytest.mark.browser

HD = {"width": 1280, "height": 720}
FULL_HD = {"width": 1920, "height": 1080}
CLASS_SIZE = 30
# Readable from the back of a classroom on a 1080p projector (the page gives 34.5 px).
MIN_NAME_PX_AT_1080P = 32


@pytest.fixture(scope="module")
def projector(browser: Browser, server: ServerProcess) -> Iterator[Page]:
    """A dashboard whose class has 30 students, each with a digit on their tile."""
    dashboard = new_page(browser, f"{server.base_url}/classroom", HD)
    code = start_class(dashboard)
    with ExitStack() as students:
        class_of(students, server, code, CLASS_SIZE)
        expect(dashboard.locator(".tile")).to_have_count(CLASS_SIZE, timeout=WAIT_MS)
        expect(dashboard.locator(".tile[data-digit='']")).to_have_count(0, timeout=WAIT_MS)
        yield dashboard
        assert_no_page_errors(dashboard)
    dashboard.context.close()


def resize(page: Page, viewport: dict) -> None:
    page.set_viewport_size(viewport)
    # The grid is re-fitted on resize: wait until its rows fit this height.
    page.wait_for_function(
        "() => document.querySelector('.tile:last-child').getBoundingClientRect().bottom <= innerHeight",
        timeout=WAIT_MS,
    )


def font_px(page: Page, selector: str) -> float:
    return page.eval_on_selector(selector, "el => parseFloat(getComputedStyle(el).fontSize)")


def test_thirty_students_fit_a_720p_projector_without_scrolling(projector: Page, tmp_path: Path) -> None:
    resize(projector, HD)
    assert page_scrolls(projector) == {"x": False, "y": False}
    for element in projector.locator(".tile, .side").all():
        b = element.bounding_box()
        assert b is not None and b["y"] + b["height"] <= HD["height"]
    projector.click("#prompts button:text-is('7')")
    expect(projector.locator("#score")).to_have_text(re.compile(rf"^\s*\d+\s+of {CLASS_SIZE} students drew a 7\s*$"))
    save_screenshot(projector, "classroom.png", tmp_path)
    projector.click("#prompts button:text-is('Free')")
    expect(projector.locator("#score")).to_have_text(re.compile(rf"^\s*{CLASS_SIZE}\s+students in the class\s*$"))


def test_names_code_and_qr_grow_with_a_1080p_projector(projector: Page) -> None:
    resize(projector, HD)
    small = {s: font_px(projector, s) for s in (".tile-name", ".tile-digit", "#code")}
    small_qr = projector.locator("#qr").bounding_box()["width"]
    resize(projector, FULL_HD)
    assert page_scrolls(projector) == {"x": False, "y": False}
    assert font_px(projector, ".tile-name") >= MIN_NAME_PX_AT_1080P
    for selector, size in small.items():
        assert font_px(projector, selector) > size * 1.2, selector
    assert projector.locator("#qr").bounding_box()["width"] > small_qr * 1.2
    resize(projector, HD)
