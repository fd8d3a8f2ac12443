"""Median preprocessing time per snapshot; prints a markdown table.

    python bench/preprocess.py [--repeats N]

The budget is 1 ms for a 280×280 canvas. Snapshots are hold-out digits drawn as the
page draws them: dark ink, anti-aliased, on white (280×280) or in the alpha (128×128).
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np
from PIL import Image

from server.preprocess import preprocess_array, preprocess_bytes

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


def median_ms(function, inputs: list, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        for item in inputs:
            start = time.perf_counter()
            function(item)
            times.append(time.perf_counter() - start)
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
    cases = [
        ("preprocess_array, 280×280 grey array", preprocess_array, white_280),
        ("preprocess_bytes, 280×280 PNG (L, black on white)", preprocess_bytes, [png(p, "L") for p in white_280]),
        ("preprocess_bytes, 128×128 PNG (RGBA, ink in alpha)", preprocess_bytes, [png(p, "RGBA") for p in alpha_128]),
        ("preprocess_bytes, 280×280 PNG (RGB, blue on cream)", preprocess_bytes, [png(p, "RGB") for p in blue_280]),
    ]
    print("| case | median ms |")
    print("|---|---|")
    for name, function, inputs in cases:
        function(inputs[0])  # warm up imports and caches
        print(f"| {name} | {median_ms(function, inputs, args.repeats):.3f} |")


if __name__ == "__main__":
    main()
