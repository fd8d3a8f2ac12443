"""Hold-out digits redrawn as canvases are: any size, place, pen and colours, as PNG bytes."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

SUPERSAMPLE = 2  # canvases are drawn at 2× and averaged down: anti-aliased edges


def png(pixels: np.ndarray, format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    # Light compression: the tests encode thousands of canvases; decoding is the same.
    Image.fromarray(pixels).save(buffer, format, **({"compress_level": 1} if format == "PNG" else {}))
    return buffer.getvalue()


def ink_box(digit: np.ndarray) -> np.ndarray:
    rows, cols = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
    return digit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def widened(shape: np.ndarray, steps: int) -> np.ndarray:
    """Binary dilation by a (2·steps+1)² square: a square pen, as MaxFilter would be."""
    for _ in range(steps):
        padded = np.pad(shape, 1)
        column = padded[:-2] | padded[1:-1] | padded[2:]
        shape = column[:, :-2] | column[:, 1:-1] | column[:, 2:]
    return shape


def pen_width(shape: np.ndarray) -> float:
    """Twice the area over the outline, in canvas pixels."""
    padded = np.pad(shape, 1).astype(np.int8)
    outline = np.abs(np.diff(padded, axis=0)).sum() + np.abs(np.diff(padded, axis=1)).sum()
    return 2 * shape.sum() / (outline * np.pi / 4)


def drawn(
    digit: np.ndarray,
    canvas: tuple[int, int] = (280, 280),
    size: float = 0.6,
    at: tuple[float, float] = (0.5, 0.5),
    pen: float = 1.0,
    stretch: tuple[float, float] = (1.0, 1.0),
) -> np.ndarray:
    """Ink coverage (0–1) of `digit` redrawn on a canvas.

    The digit's longest side is `size` × the canvas's shorter side, its box placed at
    the fraction `at` of the free room, its strokes `pen` × their own width.
    """
    box = ink_box(digit)
    height, width = box.shape[0] * stretch[0], box.shape[1] * stretch[1]
    scale = size * min(canvas) / max(height, width) * SUPERSAMPLE
    target = (max(1, round(width * scale)), max(1, round(height * scale)))
    shape = np.asarray(Image.fromarray(box).resize(target, Image.Resampling.BICUBIC)) > 127
    steps = round(abs(pen - 1) * pen_width(shape) / 2)
    margin = steps + 1
    shape = np.pad(shape, margin)
    shape = widened(shape, steps) if pen > 1 else ~widened(~shape, steps)
    full = np.zeros((canvas[0] * SUPERSAMPLE, canvas[1] * SUPERSAMPLE), bool)
    top = round(at[0] * (full.shape[0] - target[1])) - margin
    left = round(at[1] * (full.shape[1] - target[0])) - margin
    inside = shape[max(0, -top) : full.shape[0] - top, max(0, -left) : full.shape[1] - left]
    full[max(0, top) : max(0, top) + inside.shape[0], max(0, left) : max(0, left) + inside.shape[1]] = inside
    h, w = canvas
    return full.reshape(h, SUPERSAMPLE, w, SUPERSAMPLE).mean(axis=(1, 3), dtype=np.float32)


def coloured(coverage: np.ndarray, scheme: str) -> np.ndarray:
    """The canvas as pixels: ink and background colours mixed by coverage."""
    inks = {
        "white on black": ((255,), (0,)),
        "black on white": ((0,), (255,)),
        "blue on cream": ((30, 60, 200), (250, 245, 220)),
        "RGBA opaque": ((0, 0, 0, 255), (255, 255, 255, 255)),
        # The page's canvas: black everywhere, the alpha carries the ink.
        "RGBA transparent": ((0, 0, 0, 255), (0, 0, 0, 0)),
    }
    ink, background = (np.array(c, np.float32) for c in inks[scheme])
    mixed = background + (ink - background) * coverage[..., None]
    return np.round(mixed).astype(np.uint8).squeeze(axis=2) if len(ink) == 1 else np.round(mixed).astype(np.uint8)
