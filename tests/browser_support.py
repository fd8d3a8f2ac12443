"""Helpers shared by the real-Chromium tests: pages that record their script errors, strokes
drawn with real input events, in-viewport checks, axe-core scans and screenshots."""

from __future__ import annotations

import itertools
import json
import math
import os
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, FloatRect, Page, ViewportSize, expect
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

from tests.support import REPO, ServerProcess, canvas_png, holdout

WAIT_MS = 20_000  # generous: CI has two busy cores
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
# Names for a class of 30, one long enough to be cut short on a tile.
CLASS_NAMES = [
    "Ana",
    "Bea",
    "Chloé",
    "Dev",
    "Emil",
    "Fatima",
    "Gus",
    "Hana",
    "Ivo",
    "Jun",
    "Kai",
    "Lena",
    "Milo",
    "Nora",
    "Omar",
    "Pia",
    "Quinn",
    "Rosa",
    "Sami",
    "Tara",
    "Uma",
    "Vik",
    "Wen",
    "Xavi",
    "Yara",
    "Zoe",
    "Alexandrina-Sofia",
    "Bo",
    "Cyrus",
    "Dana",
]

Point = tuple[float, float]
Stroke = list[Point]
SEVEN: Stroke = [(0.3, 0.24), (0.7, 0.24), (0.45, 0.8)]
ONE: Stroke = [(0.53, 0.2), (0.47, 0.8)]


def arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float, n: int = 24) -> Stroke:
    """From angle `start` to `end` (turns, 0 = top, clockwise on screen)."""
    return [
        (cx + rx * math.sin(2 * math.pi * t), cy - ry * math.cos(2 * math.pi * t))
        for t in (start + (end - start) * i / n for i in range(n + 1))
    ]


# One template per digit, as people draw them, in pad units (0..1, y down).
DIGIT_STROKES: dict[int, list[Stroke]] = {
    0: [arc(0.5, 0.5, 0.19, 0.3, 0.0, -1.08, 48)],
    1: [[(0.53, 0.2), (0.47, 0.8)]],
    2: [
        [
            (0.32, 0.33),
            (0.38, 0.23),
            (0.5, 0.19),
            (0.62, 0.23),
            (0.67, 0.33),
            (0.63, 0.44),
            (0.5, 0.57),
            (0.31, 0.79),
            (0.71, 0.79),
        ]
    ],
    3: [
        [
            (0.33, 0.25),
            (0.45, 0.19),
            (0.6, 0.21),
            (0.66, 0.3),
            (0.61, 0.41),
            (0.47, 0.47),
            (0.62, 0.53),
            (0.68, 0.65),
            (0.62, 0.77),
            (0.48, 0.81),
            (0.32, 0.76),
        ]
    ],
    4: [[(0.42, 0.2), (0.3, 0.58), (0.7, 0.58)], [(0.6, 0.32), (0.6, 0.82)]],
    5: [[(0.66, 0.2), (0.38, 0.2), (0.35, 0.46), *arc(0.5, 0.62, 0.18, 0.18, -0.2, 0.55, 20)]],
    6: [[(0.62, 0.18), (0.5, 0.27), (0.4, 0.42), *arc(0.5, 0.64, 0.16, 0.16, -0.25, -1.2, 32)]],
    7: [[(0.3, 0.24), (0.7, 0.24), (0.45, 0.8)]],
    8: [[(0.5 - 0.17 * math.sin(2 * t), 0.5 - 0.3 * math.cos(t)) for t in (2 * math.pi * i / 64 for i in range(65))]],
    9: [[*arc(0.5, 0.36, 0.16, 0.16, 0.25, -0.8, 32), (0.66, 0.36), (0.62, 0.82)]],
}


def open_page(context: BrowserContext, url: str) -> Page:
    """A page that records uncaught script errors in `page.errors`."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors  # type: ignore[attr-defined]  # checked by assert_no_page_errors
    page.goto(url)
    return page


def new_page(browser: Browser, url: str, viewport: ViewportSize | None = None, **context_options: Any) -> Page:
    return open_page(browser.new_context(viewport=viewport or PHONE, **context_options), url)


def assert_no_page_errors(page: Page) -> None:
    assert page.errors == []  # type: ignore[attr-defined]


def close_checked(*pages: Page) -> None:
    """Each page's end of a test: no uncaught script error, then its context closed."""
    for page in pages:
        assert_no_page_errors(page)
        page.context.close()


def wait_connected(page: Page) -> None:
    expect(page.locator("#status")).to_have_attribute("data-state", "connected", timeout=WAIT_MS)


def wait_settled(page: Page) -> None:
    """Until the answer to the newest snapshot is on screen."""
    page.wait_for_function("window.digitstream.settled", timeout=WAIT_MS)


def to_screen(page: Page, point: Point) -> Point:
    box = page.locator("#pad").bounding_box()
    assert box is not None
    return box["x"] + point[0] * box["width"], box["y"] + point[1] * box["height"]


def densify(stroke: Stroke, spacing: float = 0.03) -> Stroke:
    """Intermediate points about every 3 % of the pad, like a mouse reporting as it moves.

    Each input event costs Chromium about a frame (16 ms), so denser strokes only slow the
    tests down; the pad's curves smooth the polyline either way."""
    dense = [stroke[0]]
    for (x0, y0), (x1, y1) in itertools.pairwise(stroke):
        steps = max(1, round(math.hypot(x1 - x0, y1 - y0) / spacing))
        dense += [(x0 + (x1 - x0) * i / steps, y0 + (y1 - y0) * i / steps) for i in range(1, steps + 1)]
    return dense


def mouse_stroke(page: Page, stroke: Stroke, pause_ms: float = 0, before_up=None) -> None:
    points = [to_screen(page, p) for p in densify(stroke)]
    page.mouse.move(*points[0])
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*point)
        if pause_ms:
            page.wait_for_timeout(pause_ms)
    if before_up is not None:
        before_up()
    page.mouse.up()


def draw(page: Page, *strokes: Stroke) -> None:
    """Draws the strokes and waits for the answer to the finished drawing."""
    for stroke in strokes:
        mouse_stroke(page, stroke)
    wait_settled(page)


def join_by_link(page: Page, base_url: str, code: str, name: str) -> None:
    page.goto(f"{base_url}/?room={code}")
    expect(page.locator("#join-dialog")).to_be_visible(timeout=WAIT_MS)
    page.fill("#join-name", name)
    page.click("#join-dialog button[type=submit]")
    expect(page.locator("#room-banner")).to_be_visible(timeout=WAIT_MS)


def start_class(dashboard: Page) -> str:
    """Starts a class on a dashboard page; returns its code as the server knows it."""
    dashboard.click("#create")
    expect(dashboard.locator("#status")).to_have_attribute("data-state", "connected", timeout=WAIT_MS)
    return dashboard.locator("#code").inner_text().replace(" ", "")


def scripted_student(stack: ExitStack, server: ServerProcess, room: str, name: str, sample: int) -> ClientConnection:
    """A student over a plain WebSocket who joins and sends one hold-out digit."""
    x, _ = holdout()
    ws = stack.enter_context(connect(server.ws_url, origin=Origin(server.base_url)))
    ws.send(json.dumps({"type": "join", "room": room, "name": name}))
    assert json.loads(ws.recv(timeout=WAIT_MS / 1000))["type"] == "joined"
    ws.send(canvas_png(x[sample], size=140))
    return ws


def class_of(stack: ExitStack, server: ServerProcess, room: str, size: int) -> None:
    """`size` scripted students, each drawing a different hold-out digit."""
    _, y = holdout()
    samples = [list(y).index(i % 10) + i // 10 for i in range(size)]
    for name, sample in zip(CLASS_NAMES, samples):
        scripted_student(stack, server, room, name, sample)


def box(page: Page, selector: str) -> FloatRect:
    found = page.locator(selector).first.bounding_box()
    assert found is not None, f"{selector} is not rendered"
    return found


def inside_viewport(page: Page, selector: str) -> bool:
    viewport = page.viewport_size
    assert viewport is not None
    b = box(page, selector)
    return (
        b["x"] >= 0
        and b["y"] >= 0
        and b["x"] + b["width"] <= viewport["width"] + 0.5
        and b["y"] + b["height"] <= viewport["height"] + 0.5
    )


def page_scrolls(page: Page) -> dict[str, bool]:
    return page.evaluate(
        """() => ({x: document.documentElement.scrollWidth > innerWidth,
                   y: document.documentElement.scrollHeight > innerHeight})"""
    )


def axe_violations(page: Page) -> list[str]:
    """axe-core's WCAG violations on the page as it is now, one line each."""
    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in results.response["violations"]
    ]


def save_screenshot(page: Page, name: str, tmp_path: Path) -> Path:
    """With DIGITSTREAM_SCREENSHOTS=1 the screenshot is written to docs/screenshots/."""
    folder = REPO / "docs" / "screenshots" if os.environ.get("DIGITSTREAM_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    page.screenshot(path=str(path))
    return path


def connected_page(context: BrowserContext, base_url: str) -> Page:
    """The drawing page, once its socket is connected."""
    page = open_page(context, base_url + "/")
    wait_connected(page)
    return page


def draw_digit(page: Page, digit: int) -> None:
    """Draws one of DIGIT_STROKES with the mouse, without waiting for its answer."""
    for stroke in DIGIT_STROKES[digit]:
        mouse_stroke(page, stroke)


def meter_values(page: Page) -> list[float]:
    """The ten bars' values, as the page tells assistive technology."""
    return page.eval_on_selector_all(
        "#bars [role=meter]", "meters => meters.map(m => Number(m.getAttribute('aria-valuenow')))"
    )


def stats(page: Page) -> dict:
    """The page's own counters (window.digitstream.stats)."""
    return page.evaluate("window.digitstream.stats")
