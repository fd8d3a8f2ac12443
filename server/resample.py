"""Pillow's float resampling, compiled: what `Image.resize((size, size), LANCZOS or BICUBIC, box,
reducing_gap=2.0)` and `Image.reduce(factor)` do to a float32 image, without the GIL.

The preprocessing recipe was tuned, and the model trained, on Pillow's resize, so this is
Pillow's arithmetic (Image.py, Resample.c, Reduce.c): the box in single precision, weights in
double precision normalised per output pixel, a pass across then a pass down, each rounded to
float32. The results agree with Pillow's to float rounding (tests/test_resample.py).

In the loops, an index starts at 0 over a slice: numba checks every index that might be
negative, and that check stops a loop from vectorising.
"""

from __future__ import annotations

import math

import numpy as np

from server.jit import compiled

LANCZOS_SUPPORT = 3.0
BICUBIC_SUPPORT = 2.0
# Image.resize box-reduces first by int(scale / REDUCING_GAP) when that is 2 or more.
REDUCING_GAP = 2.0

Box = tuple[float, float, float, float]  # left, top, right, bottom
Rows = tuple[np.ndarray, np.ndarray, np.ndarray]  # each output's first input, tap count, weights


@compiled(nogil=True)
def resized(image: np.ndarray, size: int, box: Box, lanczos: bool, inked: tuple[int, int, int, int]) -> np.ndarray:
    """The `box` of a float32 image resampled to size×size with Lanczos (else bicubic), after
    a box reduce when the box spans 2 × REDUCING_GAP × size or more. `inked` (top, left,
    bottom, right) bounds the image's non-zero pixels: outputs fed by none of them are 0."""
    height, width = image.shape
    left, top, right, bottom = box
    factor = max(int((right - left) / size / REDUCING_GAP), 1)  # the same across and down: the box is square
    if factor > 1:
        support = (LANCZOS_SUPPORT if lanczos else BICUBIC_SUPPORT) - 0.5
        margin = support * (right - left) / size
        x1, y1 = min(width, math.ceil(right + margin)), min(height, math.ceil(bottom + margin))
        x0, y0 = min(max(0, int(left - margin)), x1), min(max(0, int(top - margin)), y1)
        image = reduced(image, factor, (x0, y0, x1, y1))
        box = ((left - x0) / factor, (top - y0) / factor, (right - x0) / factor, (bottom - y0) / factor)
        inked = (
            max(inked[0] - y0, 0) // factor,
            max(inked[1] - x0, 0) // factor,
            -(-max(inked[2] - y0, 0) // factor),
            -(-max(inked[3] - x0, 0) // factor),
        )
    across = _coefficients(image.shape[1], box[0], box[2], size, lanczos)
    down = _coefficients(image.shape[0], box[1], box[3], size, lanczos)
    top, bottom = min(max(inked[0], 0), image.shape[0]), min(max(inked[2], 0), image.shape[0])
    left, right = min(max(inked[1], 0), image.shape[1]), min(max(inked[3], 0), image.shape[1])
    # Both passes run down a transposed image, where neighbouring outputs' sums are
    # independent and vectorise; each output's own sum keeps Pillow's order. Only the inked
    # part is transposed: the rest adds nothing.
    columns = _pass(np.ascontiguousarray(image[top : max(bottom, top), left : max(right, left)].T), left, across)
    return _pass(np.ascontiguousarray(columns.T), top, down)


@compiled(nogil=True)
def reduced(image: np.ndarray, factor: int, box: tuple[int, int, int, int]) -> np.ndarray:
    """The mean of each factor×factor block of `box` (x0, y0, x1, y1) of a float32 image; the
    blocks cut short by the box's right and bottom edges are the means of what they hold."""
    x0, y0, x1, y1 = box
    width, height = x1 - x0, y1 - y0
    out = np.empty((-(-height // factor), -(-width // factor)), np.float32)
    whole = width // factor  # blocks of `factor` columns; one more may hold fewer
    down = np.empty(width, np.float64)  # a block row's columns, each summed down
    blocks = np.empty(out.shape[1], np.float64)
    for y in range(out.shape[0]):
        rows = min(factor, height - y * factor)
        down[:] = 0.0
        for dy in range(rows):
            source = image[y0 + y * factor + dy, x0:x1]
            for x in range(width):
                down[x] += source[x]
        blocks[:] = 0.0
        for dx in range(factor):
            column = down[dx : whole * factor : factor]
            for x in range(whole):
                blocks[x] += column[x]
        row = out[y]
        for x in range(whole):
            row[x] = blocks[x] / (rows * factor)
        if whole < out.shape[1]:
            rest = down[whole * factor :]
            total = 0.0
            for x in range(rest.size):
                total += rest[x]
            row[whole] = total / (rows * rest.size)
    return out


@compiled(nogil=True)
def _coefficients(in_size: int, start: float, stop: float, out_size: int, lanczos: bool) -> Rows:
    """For each output pixel, the first input pixel it reads, how many, and their normalised
    weights (Resample.c's precompute_coeffs; the box arrives there in single precision)."""
    start32, stop32 = np.float32(start), np.float32(stop)
    scale = float(np.float32(stop32 - start32)) / out_size
    filter_scale = max(scale, 1.0)
    support = (LANCZOS_SUPPORT if lanczos else BICUBIC_SUPPORT) * filter_scale
    inverse = 1.0 / filter_scale
    firsts = np.zeros(out_size, np.int64)
    counts = np.zeros(out_size, np.int64)
    weights = np.zeros((out_size, math.ceil(support) * 2 + 1), np.float64)
    for out in range(out_size):
        centre = float(start32) + (out + 0.5) * scale
        first = max(int(centre - support + 0.5), 0)
        count = max(min(int(centre + support + 0.5), in_size) - first, 0)
        taps = weights[out, :count]
        if lanczos:
            _lanczos((first - centre + 0.5) * inverse, inverse, taps)
        else:
            for tap in range(count):
                taps[tap] = _bicubic((tap + first - centre + 0.5) * inverse)
        total = 0.0
        for tap in range(count):
            total += taps[tap]
        if total != 0.0:
            for tap in range(count):
                taps[tap] /= total
        firsts[out], counts[out] = first, count
    return firsts, counts, weights


@compiled(nogil=True)
def _lanczos(start: float, step: float, out: np.ndarray) -> None:
    """sinc(x) · sinc(x / 3) on [-3, 3) at x = start, start + step, …: each sin(πx / 3) from
    the last by the angle-addition rule, and sin(πx) from sin(πx / 3), so one sine a row."""
    sine, cosine = math.sin(math.pi * start / 3.0), math.cos(math.pi * start / 3.0)
    turn_sine, turn_cosine = math.sin(math.pi * step / 3.0), math.cos(math.pi * step / 3.0)
    for tap in range(out.size):
        x = start + tap * step
        if x == 0.0:
            out[tap] = 1.0
        elif -3.0 <= x < 3.0:
            out[tap] = 3.0 * sine * sine * (3.0 - 4.0 * sine * sine) / (math.pi * math.pi * x * x)
        else:
            out[tap] = 0.0
        sine, cosine = sine * turn_cosine + cosine * turn_sine, cosine * turn_cosine - sine * turn_sine


@compiled(nogil=True)
def _bicubic(x: float) -> float:
    a = -0.5
    x = abs(x)
    if x < 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    if x < 2.0:
        return (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return 0.0


@compiled(nogil=True)
def _pass(image: np.ndarray, offset: int, rows: Rows) -> np.ndarray:
    """out[o] = Σ weights[o, t] · input row first[o] + t, where `image` holds the input rows from
    `offset` on and every other row is 0: summed in float64, stored as float32."""
    firsts, counts, weights = rows
    out = np.zeros((firsts.size, image.shape[1]), np.float32)
    total = np.empty(image.shape[1], np.float64)
    for o in range(firsts.size):
        start = max(firsts[o], offset)
        stop = min(firsts[o] + counts[o], offset + image.shape[0])
        if start >= stop:
            continue
        total[:] = 0.0
        for row in range(start, stop):
            weight, source = weights[o, row - firsts[o]], image[row - offset]
            for x in range(total.size):
                total[x] += source[x] * weight
        line = out[o]
        for x in range(total.size):
            line[x] = total[x]
    return out
