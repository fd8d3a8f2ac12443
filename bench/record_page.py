"""Record the frames the real page streams while digits are drawn on it.

Drives the page in Debian's Chromium with pointer events (mouse down, moves, up), against a
real server, and keeps every binary frame the page sends over `/ws`: the 128 px snapshots
exactly as the page streams them (grey frames, docs/protocol.md; PNGs where the browser has no
CompressionStream), one list per stroke (its last frame is the pen-up snapshot).

    .venv/bin/python -m bench.record_page            # rewrite bench/data/page_frames.npz
"""

from __future__ import annotations

import argparse
import itertools
import math
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from playwright.sync_api import Page, ViewportSize, WebSocket, sync_playwright

from tests.browser_support import DIGIT_STROKES, Point, Stroke
from tests.support import ServerProcess

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
WAIT_MS = 30_000
FIXTURE = Path(__file__).resolve().parent / "data" / "page_frames.npz"
# The same strokes as browsers without CompressionStream send them: 128 px RGBA PNGs.
PNG_FIXTURE = FIXTURE.with_name("page_png_frames.npz")
# A person's pen covers the pad in about a second: a move every ~1.5% of it, ~12 ms apart.
SPACING = 0.015
MOVE_INTERVAL_S = 0.012


class PageRecorder:
    """One page on one server; `draw` draws a digit and returns its frames stroke by stroke."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self._frames: list[tuple[float, bytes]] = []
        page.on("websocket", self._watch)

    def _watch(self, websocket: WebSocket) -> None:
        websocket.on("framesent", self._sent)

    def _sent(self, payload: bytes | str) -> None:
        if isinstance(payload, bytes):
            self._frames.append((time.perf_counter(), payload))

    def draw(self, strokes: list[Stroke]) -> list[list[bytes]]:
        """Clear the pad, draw `strokes` (pad units), and return each stroke's frames."""
        self._clear()
        recorded = []
        for stroke in strokes:
            self._frames.clear()
            self._stroke(stroke)
            self.page.wait_for_function("window.digitstream.settled", timeout=WAIT_MS)
            recorded.append([frame for _, frame in self._frames])
        return recorded

    def _clear(self) -> None:
        if self.page.evaluate("window.digitstream.strokeCount") == 0:
            return
        self.page.keyboard.press("Escape")
        self.page.wait_for_function(
            "window.digitstream.settled && window.digitstream.strokeCount === 0", timeout=WAIT_MS
        )

    def _stroke(self, stroke: Stroke) -> None:
        box = self.page.locator("#pad").bounding_box()
        assert box is not None

        def screen(point: Point) -> Point:
            return box["x"] + point[0] * box["width"], box["y"] + point[1] * box["height"]

        points = densify(stroke)
        self.page.mouse.move(*screen(points[0]))
        self.page.mouse.down()
        moment = time.perf_counter()
        for point in points[1:]:
            moment += MOVE_INTERVAL_S
            time.sleep(max(0.0, moment - time.perf_counter()))
            self.page.mouse.move(*screen(point))
        self.page.mouse.up()


@contextmanager
def recorder(base_url: str) -> Iterator[PageRecorder]:
    """A page of the server at `base_url` in a headless Chromium, connected and ready to draw."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport=VIEWPORT).new_page()
            recording = PageRecorder(page)
            page.goto(base_url.rstrip("/") + "/")
            page.wait_for_function("window.digitstream.state === 'connected'", timeout=WAIT_MS)
            yield recording
        finally:
            browser.close()


def densify(stroke: Stroke, spacing: float = SPACING) -> Stroke:
    """Points about every `spacing` of the pad, as a mouse reports them while it moves."""
    dense = [stroke[0]]
    for (x0, y0), (x1, y1) in itertools.pairwise(stroke):
        steps = max(1, round(math.hypot(x1 - x0, y1 - y0) / spacing))
        dense += [(x0 + (x1 - x0) * i / steps, y0 + (y1 - y0) * i / steps) for i in range(1, steps + 1)]
    return dense


# ---- The digits drawn for the fixture: one template per digit, varied like people vary ----------


def varied(strokes: list[Stroke], rng: random.Random) -> list[Stroke]:
    """The template scaled, slanted, rotated and moved a little, each point a little off."""
    scale, aspect = rng.uniform(0.75, 1.15), rng.uniform(0.85, 1.15)
    angle, slant = rng.uniform(-0.15, 0.15), rng.uniform(-0.25, 0.1)
    dx, dy = rng.uniform(-0.08, 0.08), rng.uniform(-0.06, 0.06)
    cos, sin = math.cos(angle), math.sin(angle)

    def move(point: Point) -> Point:
        x, y = (point[0] - 0.5) * scale * aspect, (point[1] - 0.5) * scale
        x += slant * y
        x, y = cos * x - sin * y, sin * x + cos * y
        return (
            min(0.98, max(0.02, 0.5 + dx + x + rng.gauss(0, 0.004))),
            min(0.98, max(0.02, 0.5 + dy + y + rng.gauss(0, 0.004))),
        )

    return [[move(point) for point in stroke] for stroke in strokes]


@dataclass(frozen=True)
class Recording:
    """Frames of drawn digits, stroke by stroke: what bench/ replays."""

    strokes: list[list[bytes]]
    labels: list[int]  # the digit each stroke belongs to
    drawings: list[int]  # which drawing each stroke belongs to

    def save(self, path: Path) -> None:
        frames = [frame for stroke in self.strokes for frame in stroke]
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            path,
            data=np.frombuffer(b"".join(frames), np.uint8),
            frame_ends=np.cumsum([len(frame) for frame in frames]),
            stroke_ends=np.cumsum([len(stroke) for stroke in self.strokes]),
            labels=np.array(self.labels, np.int8),
            drawings=np.array(self.drawings, np.int32),
        )

    @classmethod
    def load(cls, path: Path = FIXTURE) -> Recording:
        with np.load(path) as stored:
            data = stored["data"].tobytes()
            frame_ends = stored["frame_ends"].tolist()
            stroke_ends = stored["stroke_ends"].tolist()
            labels, drawings = stored["labels"].tolist(), stored["drawings"].tolist()
        frames = [data[start:end] for start, end in zip([0, *frame_ends], frame_ends)]
        strokes = [frames[start:end] for start, end in zip([0, *stroke_ends], stroke_ends)]
        return cls(strokes, labels, drawings)


def record_fixture(base_url: str, per_digit: int, seed: int) -> Recording:
    rng = random.Random(seed)
    strokes, labels, drawings = [], [], []
    with recorder(base_url) as recording:
        for drawing in range(per_digit * 10):
            digit = drawing % 10
            for frames in recording.draw(varied(DIGIT_STROKES[digit], rng)):
                strokes.append(frames)
                labels.append(digit)
                drawings.append(drawing)
    return Recording(strokes, labels, drawings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-digit", type=int, default=3, help="drawings of each digit (3)")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--out", type=Path, default=FIXTURE)
    args = parser.parse_args()
    server = ServerProcess().start()
    try:
        recording = record_fixture(server.base_url, args.per_digit, args.seed)
    finally:
        server.stop()
    recording.save(args.out)
    frames = sum(len(stroke) for stroke in recording.strokes)
    print(f"{len(recording.strokes)} strokes, {frames} frames, {args.out.stat().st_size / 1e6:.1f} MB in {args.out}")


if __name__ == "__main__":
    main()
