"""Write `tests/data/page_digits.npz`: drawings of the drawn set, drawn on the real page.

Chromium draws the first drawings of every variant of `tests/data/drawn_digits.npz` on the
page with mouse events (`bench/record_page.py`); the page's pen-up snapshot of each
drawing's last stroke, as sent over its WebSocket, is kept. Run from the repository root:
`python -m tests.data.record_page_digits`.
"""

from __future__ import annotations

from bench.record_page import recorder
from server import drawnset
from tests.support import ServerProcess

PER_VARIANT = 10


def first_of_each_variant(digits: list[drawnset.DrawnDigit]) -> list[drawnset.DrawnDigit]:
    chosen: list[drawnset.DrawnDigit] = []
    for digit in digits:
        if sum(d.variant == digit.variant for d in chosen) < PER_VARIANT:
            chosen.append(digit)
    return chosen


def main() -> None:
    digits = first_of_each_variant(drawnset.load())
    server = ServerProcess().start()
    try:
        with recorder(server.base_url) as recording:
            frames = [recording.draw([s.tolist() for s in d.strokes])[-1][-1] for d in digits]
    finally:
        server.stop()
    drawnset.save_frames(drawnset.PAGE_SET_PATH, frames, [d.variant for d in digits])
    print(f"wrote {len(frames)} frames to {drawnset.PAGE_SET_PATH}")


if __name__ == "__main__":
    main()
