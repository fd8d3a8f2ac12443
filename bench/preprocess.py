"""Median preprocessing CPU time per snapshot; prints a markdown table.

    python -m bench.preprocess [--repeats N]

The first row is the real page's frames (bench/data/page_frames.npz, recorded in Chromium);
the others are hold-out digits drawn as other clients might send them: dark ink on white
(280×280), ink in the alpha (128×128), blue on cream. Times are the thread's own CPU time
(time.thread_time), so other processes on the machine do not inflate them.
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bench.common import load_average, machine, page_strokes
from bench.record_page import PNG_FIXTURE
from server.preprocess import preprocess_array, preprocess_bytes, preview_png

HOLDOUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "holdout.npz"


def canvas(digit: np.ndarray, size: int) -> np.ndarray:
    """The digit enlarged to 70% of a size×size canvas: ink coverage, 0–255."""
    ink = np.asarray(Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC))
    inner = round(size * 0.7)
    drawn = np.zeros((size, size), np.uint8)
    start = (size - inner) // 2
    drawn[start : start + inner, start : start + inner] = np.asarray(
        Image.fromarray(ink).resize((inner, inner), Image.Resampling.BILINEAR)
    )
    return drawn


def png(pixels: np.ndarray, mode: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode).save(buffer, "PNG")
    return buffer.getvalue()


def median_ms(function: Callable[[Any], object], inputs: Sequence[Any], repeats: int) -> float:
    times: list[float] = []
    for _ in range(repeats):
        for item in inputs:
            start = time.thread_time()
            function(item)
            times.append(time.thread_time() - start)
    return float(np.median(times) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    with np.load(HOLDOUT) as data:
        digits = data["x"][::50]
    white_280 = [255 - canvas(d, 280) for d in digits]
    alpha_128 = [np.dstack([np.zeros((128, 128, 3), np.uint8), canvas(d, 128)]) for d in digits]
    # Coloured ink takes the slower path: a distance in colour space.
    cream = np.array([250, 245, 220], np.float32)
    blue = np.array([30, 60, 200], np.float32)
    blue_280 = [np.round(cream + (blue - cream) * (canvas(d, 280)[..., None] / 255)).astype(np.uint8) for d in digits]
    page = [frame for stroke in page_strokes() for frame in stroke]
    page_png = [frame for stroke in page_strokes(PNG_FIXTURE) for frame in stroke]
    previews = [prepared.preview for prepared in map(preprocess_bytes, page[::10]) if not prepared.empty]
    cases: list[tuple[str, Callable[[Any], object], Sequence[Any]]] = [
        ("preprocess_bytes, the page's frames (128 px grey frames, Chromium)", preprocess_bytes, page),
        ("preprocess_bytes, the same strokes as 128 px RGBA PNGs (no CompressionStream)", preprocess_bytes, page_png),
        ("preview_png, 28×28 preview of the page's frames", preview_png, previews),
        ("preprocess_array, 280×280 grey array", preprocess_array, white_280),
        ("preprocess_bytes, 280×280 PNG (L, black on white)", preprocess_bytes, [png(p, "L") for p in white_280]),
        ("preprocess_bytes, 128×128 PNG (RGBA, ink in alpha)", preprocess_bytes, [png(p, "RGBA") for p in alpha_128]),
        ("preprocess_bytes, 280×280 PNG (RGB, blue on cream)", preprocess_bytes, [png(p, "RGB") for p in blue_280]),
    ]
    print(f"Machine: {machine()}; load average before: {load_average()}\n")
    print("| case | median CPU ms |")
    print("|---|---|")
    for name, function, inputs in cases:
        function(inputs[0])  # warm up imports and caches
        print(f"| {name} | {median_ms(function, inputs, args.repeats):.3f} |")


if __name__ == "__main__":
    main()
