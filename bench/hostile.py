"""CPU time of each hostile image (tests/hostile_images.py) in the server's preprocessing, the
work a snapshot costs before it is refused or answered; prints a markdown table.

    .venv/bin/python -m bench.hostile [--repeats 3]

CPU time is this thread's own (time.thread_time), so other processes on the machine
do not inflate it; the figure is the median of the repeats.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

import numpy as np
from PIL import Image

from bench.common import load_average, machine
from server.classifier import WARM_UP_SNAPSHOTS
from server.preprocess import MAX_PIXELS, BadImage, preprocess_bytes
from tests.hostile_images import Family, digit, families, grey_png, tall_png

BUDGET_MS = 20.0


def outcome_and_cpu_ms(data: bytes) -> tuple[str, float]:
    started = time.thread_time()
    try:
        prepared = preprocess_bytes(data)
        outcome = "empty" if prepared.empty else "answered"
    except BadImage as refused:
        outcome = refused.code
    return outcome, (time.thread_time() - started) * 1000


def largest_accepted() -> list[Family]:
    """The most pixels a snapshot may have, blank and with a digit in blue on cream (the
    costliest path: a colour distance over every pixel): accepted, so this is the most that
    any snapshot costs."""
    side = int(MAX_PIXELS**0.5)

    def coloured() -> bytes:
        ink = np.asarray(Image.fromarray(digit()[0]).resize((side, side), Image.Resampling.BILINEAR))[..., None] / 255
        cream, blue = np.array([250, 245, 220]), np.array([30, 60, 200])
        buffer = io.BytesIO()
        Image.fromarray(np.round(cream + (blue - cream) * ink).astype(np.uint8)).save(buffer, "PNG", compress_level=1)
        return buffer.getvalue()

    return [
        Family(
            f"largest accepted: blank {side}×{side} grey PNG", lambda: grey_png(np.zeros((side, side), np.uint8)), None
        ),
        Family(f"largest accepted: {side}×{side} RGB PNG, blue digit on cream", coloured, None),
        Family(f"largest accepted: 1×{MAX_PIXELS:,} grey PNG", lambda: tall_png(MAX_PIXELS, MAX_PIXELS), None),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"Machine: {machine()}; load average before: {load_average()}\n")
    for snapshot in WARM_UP_SNAPSHOTS:  # the compiled recipe is loaded once a process, as the server does at start
        preprocess_bytes(snapshot)
    print("| image | KiB | outcome | CPU ms (median) |\n|---|---:|---|---:|")
    worst_refused = worst_accepted = 0.0
    for family in [*families(), *largest_accepted()]:
        data = family.build()
        results = [outcome_and_cpu_ms(data) for _ in range(args.repeats)]
        cpu_ms = statistics.median(cpu for _, cpu in results)
        outcome = results[0][0]
        if outcome in ("answered", "empty"):
            worst_accepted = max(worst_accepted, cpu_ms)
        else:
            worst_refused = max(worst_refused, cpu_ms)
        print(f"| {family.name} | {len(data) / 1024:,.0f} | {outcome} | {cpu_ms:.2f} |")
    print(
        f"\n- the costliest refusal: {worst_refused:.2f} ms of CPU (budget {BUDGET_MS:.0f} ms); the costliest "
        f"accepted snapshot: {worst_accepted:.2f} ms, bounded by the pixel limit ({MAX_PIXELS:,} pixels)"
    )


if __name__ == "__main__":
    main()
