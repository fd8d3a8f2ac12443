"""Write `tests/data/page_digits.npz`: drawings of the drawn set, drawn on the real page.

Chromium draws the first drawings of every variant of `tests/data/drawn_digits.npz` on
the page with mouse events; the last PNG the page sends over its WebSocket for each
drawing is kept. Run from the repository root: `python -m tests.data.record_page_digits`.
"""

from __future__ import annotations

from playwright.sync_api import Page, WebSocket, sync_playwright

from server import drawnset
from tests.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.support import ServerProcess

PER_VARIANT = 10
WAIT_MS = 30_000


def first_of_each_variant(digits: list[drawnset.DrawnDigit]) -> list[drawnset.DrawnDigit]:
    taken: dict[str, int] = {}
    chosen = []
    for digit in digits:
        if taken.get(digit.variant.label, 0) < PER_VARIANT:
            taken[digit.variant.label] = taken.get(digit.variant.label, 0) + 1
            chosen.append(digit)
    return chosen


def draw(page: Page, digit: drawnset.DrawnDigit) -> None:
    box = page.locator("#pad").bounding_box()
    assert box is not None
    for stroke in digit.strokes:
        points = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in stroke]
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point)
        page.mouse.up()


def record(page: Page, digits: list[drawnset.DrawnDigit], sent: list[bytes]) -> list[bytes]:
    frames = []
    for digit in digits:
        draw(page, digit)
        page.wait_for_function("window.digitstream.settled", timeout=WAIT_MS)
        frames.append(sent[-1])
        page.keyboard.press("Escape")
        page.wait_for_function("document.querySelector('#prediction').dataset.digit === ''", timeout=WAIT_MS)
    return frames


def main() -> None:
    digits = first_of_each_variant(drawnset.load())
    sent: list[bytes] = []

    def on_socket(socket: WebSocket) -> None:
        socket.on("framesent", lambda payload: sent.append(payload) if isinstance(payload, bytes) else None)

    server = ServerProcess().start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.on("websocket", on_socket)
            page.goto(server.base_url + "/")
            page.wait_for_function("window.digitstream.state === 'connected'", timeout=WAIT_MS)
            frames = record(page, digits, sent)
            browser.close()
    finally:
        server.stop()
    drawnset.save_frames(drawnset.PAGE_SET_PATH, frames, [d.variant for d in digits])
    print(f"wrote {len(frames)} frames to {drawnset.PAGE_SET_PATH}")


if __name__ == "__main__":
    main()
