"""Digits written with a pen: the common ways of writing each digit, drawn as the page draws.

Each `Variant` is one way of writing a digit (a 1 with a flag, a 7 with a crossbar, a
4 with an open top…), as strokes through control points in a box one unit tall, x to
the right and y down. `write` turns a variant into a drawing as a pointer would leave
it on the pad: random proportions, slant, rotation, size and place, a wobbly hand, and
samples spaced like pointer events. `server.pagesnapshot` draws it as the page does, so
`server.preprocess` sees the same pixels as from the page.

Some variants are `held_out`: the training generator never draws them, so the drawn
test set measures how far the model generalises, not what it memorised.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from server.pagesnapshot import Stroke, render_snapshot
from server.preprocess import preprocess_array

MIN_STEP = 0.002  # web/js/pad.js: pointer samples closer than this are dropped

Drawing = list[Stroke]


class Split(enum.Enum):
    """Which variants a generator draws from."""

    TRAIN = "train"
    HELD_OUT = "held_out"
    ALL = "all"


# --- stroke geometry -----------------------------------------------------------------


def _spline(*points: tuple[float, float]) -> Stroke:
    """A Catmull-Rom curve through the points, sampled densely."""
    p = np.asarray(points, dtype=np.float64)
    p = np.vstack([2 * p[0] - p[1], p, 2 * p[-1] - p[-2]])
    t = np.linspace(0, 1, 16, endpoint=False)[:, None]
    pieces = [
        0.5
        * (
            2 * p[i]
            + (p[i + 1] - p[i - 1]) * t
            + (2 * p[i - 1] - 5 * p[i] + 4 * p[i + 1] - p[i + 2]) * t**2
            + (3 * p[i] - p[i - 1] - 3 * p[i + 1] + p[i + 2]) * t**3
        )
        for i in range(1, len(p) - 2)
    ]
    return np.vstack([*pieces, p[-2:-1]])


def _line(*points: tuple[float, float]) -> Stroke:
    """Straight segments through the points: corners stay sharp."""
    return np.asarray(points, dtype=np.float64)


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float) -> Stroke:
    """An elliptic arc; angles in degrees, 0 to the right, increasing clockwise (y is down)."""
    angles = np.deg2rad(np.linspace(start, end, max(8, int(abs(end - start) / 8))))
    return np.stack([cx + rx * np.cos(angles), cy + ry * np.sin(angles)], axis=1)


def _joined(*pieces: Stroke) -> Stroke:
    return np.vstack(pieces)


# --- the variants ----------------------------------------------------------------------

Uniform = Callable[[float, float], float]  # u(low, high): a random number between them
Shape = Callable[[Uniform], Drawing]


@dataclass(frozen=True)
class Variant:
    digit: int
    name: str
    shape: Shape  # the strokes, proportions drawn from the Uniform it is given
    held_out: bool = False

    @property
    def label(self) -> str:
        return f"{self.digit} {self.name}"


def _zero_oval(clockwise: bool) -> Shape:
    def shape(u: Uniform) -> Drawing:
        turn = 360 + u(0, 40)
        return [_arc(0.3, 0.5, u(0.2, 0.32), 0.5, -90, -90 + (turn if clockwise else -turn))]

    return shape


def _zero_halves(u: Uniform) -> Drawing:
    rx = u(0.2, 0.3)
    return [_arc(0.3, 0.5, rx, 0.5, -90, -270), _arc(0.3, 0.5, rx, 0.5, -90, 90)]


def _one_plain(u: Uniform) -> Drawing:
    return [_line((0.3 + u(-0.05, 0.05), 0), (0.3, 1))]


def _one_flag(u: Uniform) -> Drawing:
    # A short flag: one much longer than a quarter of the height, widened by the hand's aspect
    # and flattened by its rotation, is a short-barred 7 to a reader, not a 1.
    flag = u(0.12, 0.25)
    return [_line((0.3 - flag, flag * u(0.5, 1.1)), (0.3, 0), (0.3, 1))]


def _one_flag_base(u: Uniform) -> Drawing:
    base = u(0.12, 0.25)
    return [*_one_flag(u), _line((0.3 - base, 1), (0.3 + base * u(0.8, 1.2), 1))]


def _two_top(u: Uniform) -> Stroke:
    return _arc(0.3, 0.27, u(0.22, 0.3), 0.25, u(165, 200), 395)


def _two_plain(u: Uniform) -> Drawing:
    top = _two_top(u)
    return [_joined(top, _line((0.02, 1)), _line((0.02, 1), (u(0.5, 0.7), u(0.96, 1.02))))]


def _two_loop(u: Uniform) -> Drawing:
    top, loop = _two_top(u), u(0.06, 0.1)
    curl = _spline((0.1, 1 - loop), (0.03, 1 - loop), (0.02, 0.95), (0.08, 1), (0.2, 0.96), (0.1, 1 - loop * 1.5))
    return [_joined(top, _line((0.1, 1 - loop)), curl[1:], _line((0.12, 0.93), (u(0.5, 0.7), 1)))]


def _three_round(u: Uniform) -> Drawing:
    middle = (u(0.18, 0.3), u(0.44, 0.52))
    upper = _spline((0.03, 0.15), (0.28, 0), (0.52, 0.18), middle)
    lower = _spline(middle, (0.58, 0.72), (0.3, 1), (0.02, 0.86))
    return [_joined(upper, lower[1:])]


def _three_flat(u: Uniform) -> Drawing:
    corner = (u(0.5, 0.6), 0.0)
    lower = _spline((0.25, 0.42), (0.56, 0.62), (0.45, 0.93), (0.22, 1), (0.02, 0.88))
    return [_joined(_line((0.05, 0.02), corner, (0.25, 0.42)), lower[1:])]


def _four_open(u: Uniform) -> Drawing:
    left, bar = u(0.02, 0.12), u(0.55, 0.7)
    return [_line((left + u(0, 0.08), 0), (left, bar), (0.65, bar)), _line((0.45, u(0, 0.15)), (0.45, 1))]


def _four_closed(u: Uniform) -> Drawing:
    bar = u(0.6, 0.72)
    return [_line((0.45, 0), (0.0, bar), (0.65, bar)), _line((0.45, u(0, 0.05)), (0.45, 1))]


def _five_bowl(u: Uniform) -> Stroke:
    return _spline((0.07, 0.45), (0.32, 0.38), (0.56, 0.62), (0.45, 0.92), (0.2, 1), (0.0, 0.86))


def _five_two_strokes(u: Uniform) -> Drawing:
    return [_joined(_line((0.1, 0.02), (0.07, 0.45)), _five_bowl(u)), _line((0.1, 0.02), (u(0.5, 0.65), 0))]


def _five_one_stroke(u: Uniform) -> Drawing:
    return [_joined(_line((u(0.5, 0.65), 0), (0.1, 0.02), (0.07, 0.45)), _five_bowl(u))]


def _six_curved(u: Uniform) -> Drawing:
    loop = u(0.5, 0.6)
    return [_spline((0.5, 0.02), (0.2, 0.2), (0.04, 0.62), (0.25, 1), (0.5, 0.82), (0.4, loop), (0.12, loop + 0.06))]


def _six_straight(u: Uniform) -> Drawing:
    loop = u(0.5, 0.6)
    stem = _line((0.42, 0), (0.08, 0.68))
    return [_joined(stem, _spline((0.08, 0.68), (0.25, 1), (0.5, 0.82), (0.4, loop), (0.1, loop + 0.1))[1:])]


def _seven_plain(u: Uniform) -> Drawing:
    return [_line((0.02, u(0, 0.06)), (0.6, 0), (u(0.12, 0.3), 1))]


def _seven_crossbar(u: Uniform) -> Drawing:
    return [*_seven_plain(u), _line((u(0.15, 0.25), 0.52), (u(0.5, 0.6), 0.5))]


def _seven_serif(u: Uniform) -> Drawing:
    return [_line((0.02, u(0.12, 0.22)), (0.02, 0.02), (0.6, 0), (u(0.12, 0.3), 1))]


def _eight_s_path(u: Uniform) -> Drawing:
    waist = (u(0.25, 0.35), u(0.42, 0.5))
    return [
        _spline(
            (0.52, 0.12),
            (0.3, 0),
            (0.08, 0.15),
            waist,
            (0.56, 0.72),
            (0.3, 1),
            (0.04, 0.75),
            waist,
            (0.5, 0.22),
            (0.45, 0.05),
        )
    ]


def _eight_two_loops(u: Uniform) -> Drawing:
    waist = u(0.4, 0.5)
    return [
        _arc(0.3, waist / 2, u(0.17, 0.24), waist / 2, -90, 275),
        _arc(0.3, (1 + waist) / 2, u(0.22, 0.3), (1 - waist) / 2, -90, -445),
    ]


def _eight_from_waist(u: Uniform) -> Drawing:
    waist = (0.3, u(0.42, 0.5))
    return [_spline(waist, (0.5, 0.22), (0.3, 0), (0.1, 0.2), waist, (0.55, 0.75), (0.3, 1), (0.05, 0.75), waist)]


def _nine_loop(u: Uniform) -> tuple[Stroke, float]:
    rx, ry = u(0.22, 0.3), u(0.2, 0.26)
    return _arc(0.55 - rx, ry, rx, ry, u(-10, 20), -370), 0.55


def _nine_straight(u: Uniform) -> Drawing:
    loop, right = _nine_loop(u)
    return [_joined(loop, _line((right, 0.2), (right - u(0, 0.1), 1)))]


def _nine_curved(u: Uniform) -> Drawing:
    loop, right = _nine_loop(u)
    return [_joined(loop, _spline((right, 0.2), (right, 0.65), (0.42, 0.97), (0.12, 0.92)))]


VARIANTS: tuple[Variant, ...] = (
    Variant(0, "oval, anticlockwise", _zero_oval(clockwise=False)),
    Variant(0, "oval, clockwise", _zero_oval(clockwise=True)),
    Variant(0, "two halves", _zero_halves, held_out=True),
    Variant(1, "plain", _one_plain),
    Variant(1, "flag", _one_flag),
    Variant(1, "flag and base", _one_flag_base, held_out=True),
    Variant(2, "no loop", _two_plain),
    Variant(2, "loop", _two_loop, held_out=True),
    Variant(3, "round top", _three_round),
    Variant(3, "flat top", _three_flat, held_out=True),
    Variant(4, "open top", _four_open),
    Variant(4, "closed top", _four_closed, held_out=True),
    Variant(5, "two strokes", _five_two_strokes),
    Variant(5, "one stroke", _five_one_stroke, held_out=True),
    Variant(6, "curved", _six_curved),
    Variant(6, "straight stem", _six_straight, held_out=True),
    Variant(7, "plain", _seven_plain),
    Variant(7, "crossbar", _seven_crossbar),
    Variant(7, "serif", _seven_serif, held_out=True),
    Variant(8, "S path", _eight_s_path),
    Variant(8, "two loops", _eight_two_loops),
    Variant(8, "from the waist", _eight_from_waist, held_out=True),
    Variant(9, "straight tail", _nine_straight),
    Variant(9, "curved tail", _nine_curved, held_out=True),
)


def variants(split: Split) -> list[Variant]:
    if split is Split.ALL:
        return list(VARIANTS)
    return [v for v in VARIANTS if v.held_out == (split is Split.HELD_OUT)]


# --- the hand --------------------------------------------------------------------------

SLANT_RANGE = (-0.15, 0.4)  # shear of x by height; most people lean forward
MAX_ROTATION_DEGREES = 8.0
MAX_ASPECT_LOG = 0.2
HEIGHT_RANGE = (0.18, 0.85)  # of the pad's side
WOBBLE = 0.025  # smooth displacement of the whole shape, in digit heights
STROKE_OFFSET = 0.015  # strokes meet a little off where they were meant to
PEN_WIDTH_RANGE = (0.05, 0.07)
SAMPLE_STEP_RANGE = (0.006, 0.03)  # pad units between pointer events: slow to fast
PAD_PIXELS_RANGE = (250, 600)  # pointer positions are whole CSS pixels of a pad this wide


def write(variant: Variant, rng: np.random.Generator) -> tuple[Drawing, float]:
    """One drawing of `variant` as the pad records it: strokes in pad units, and the pen width."""
    strokes = variant.shape(lambda low, high: float(rng.uniform(low, high)))
    strokes = [_wobbled(s, rng) + rng.normal(0, STROKE_OFFSET, 2) for s in strokes]
    strokes = _placed_on_pad(strokes, rng)
    step, grid = rng.uniform(*SAMPLE_STEP_RANGE), rng.uniform(*PAD_PIXELS_RANGE)
    return [_pointer_samples(s, step * rng.uniform(0.7, 1.4), grid) for s in strokes], float(
        rng.uniform(*PEN_WIDTH_RANGE)
    )


def _wobbled(stroke: Stroke, rng: np.random.Generator) -> Stroke:
    """A smooth random displacement field: a few low-frequency waves across the box."""
    frequency = rng.uniform(1.5, 4.0, (3, 2))
    phase = rng.uniform(0, 2 * np.pi, (3, 2))
    amplitude = rng.normal(0, WOBBLE / np.sqrt(3), (3, 2))
    waves = np.sin(stroke[:, None, :] * frequency + phase)  # (n, 3, 2)
    return stroke + (waves * amplitude).sum(axis=1)[:, ::-1]


def _placed_on_pad(strokes: Drawing, rng: np.random.Generator) -> Drawing:
    slant = rng.uniform(*SLANT_RANGE)
    angle = np.deg2rad(rng.uniform(-MAX_ROTATION_DEGREES, MAX_ROTATION_DEGREES))
    aspect = np.exp(rng.uniform(-MAX_ASPECT_LOG, MAX_ASPECT_LOG))
    cos, sin = np.cos(angle), np.sin(angle)
    matrix = np.array([[cos, -sin], [sin, cos]]) @ np.array([[aspect, -slant], [0.0, 1.0]])
    strokes = [s @ matrix.T for s in strokes]
    points = np.vstack(strokes)
    low, high = points.min(axis=0), points.max(axis=0)
    scale = rng.uniform(*HEIGHT_RANGE) / max(high[1] - low[1], 1e-6)
    extent = (high - low) * scale
    scale = min(scale, 0.94 / extent.max() * scale)  # a wide digit still fits on the pad
    extent = (high - low) * scale
    corner = rng.uniform(0.03, np.maximum(0.97 - extent, 0.03))
    return [(s - low) * scale + corner for s in strokes]


def _pointer_samples(stroke: Stroke, step: float, grid: float) -> Stroke:
    """Points every `step` along the stroke, at whole pixels, closer ones dropped (pad.js)."""
    lengths = np.linalg.norm(np.diff(stroke, axis=0), axis=1)
    along = np.concatenate([[0.0], np.cumsum(lengths)])
    at = np.append(np.arange(0.0, along[-1], step), along[-1])
    points = np.stack([np.interp(at, along, stroke[:, i]) for i in range(2)], axis=1)
    points = np.clip(np.round(points * grid) / grid, 0.0, 1.0)
    kept = [points[0]]
    for point in points[1:]:
        if np.hypot(*(point - kept[-1])) >= MIN_STEP:
            kept.append(point)
    return np.asarray(kept)


# --- data sets -------------------------------------------------------------------------


def synthesize(count: int, seed: int, split: Split = Split.TRAIN) -> tuple[np.ndarray, np.ndarray]:
    """`count` drawn digits through the server's preprocessing: uint8 (n, 28, 28), labels.

    Each variant in `split` is equally likely: a digit written in more ways needs more
    drawings to learn every way, and the ways that look alike (a flagged 1, a 7) need
    examples on both sides of the line between them.
    """
    rng = np.random.default_rng(seed)
    options = variants(split)
    chosen = rng.integers(0, len(options), count)
    images = np.zeros((count, 28, 28), dtype=np.uint8)
    labels = np.array([options[i].digit for i in chosen], dtype=np.uint8)
    for i, index in enumerate(chosen):
        drawing, pen_width = write(options[index], rng)
        prepared = preprocess_array(render_snapshot(drawing, pen_width))
        if prepared.preview is not None:
            images[i] = prepared.preview
    return images, labels
