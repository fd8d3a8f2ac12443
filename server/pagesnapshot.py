"""A drawing as the page snapshots it: `web/js/snapshot.js` crops around the ink and draws
128 px with round caps and joins along the curves of `web/js/ink.js`. The page sends that as
a grey frame, or where a browser lacks CompressionStream as the RGBA PNG of Chromium's
`toDataURL`. Strokes are (n, 2) arrays of points in pad units, x right, y down."""

from __future__ import annotations

import io
import itertools
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

# web/js/pad.js: the pen is 0.06 of the pad's side; web/js/snapshot.js: the crop.
PEN_WIDTH = 0.06
SNAPSHOT_SIDE = 128
MIN_CROP = 0.3
MARGIN = 0.12
SUPERSAMPLE = 4

Stroke = np.ndarray  # (n, 2) points (x, y)


def render_snapshot(drawing: Sequence[Stroke], pen_width: float = PEN_WIDTH) -> np.ndarray:
    """The page's snapshot of a drawing: uint8 (128, 128), white ink on black."""
    points = np.vstack(drawing)
    low, high = points.min(axis=0), points.max(axis=0)
    ink_side = float((high - low).max())
    side = max(ink_side + pen_width + 2 * MARGIN * ink_side, MIN_CROP)
    origin = (low + high) / 2 - side / 2
    scale = SNAPSHOT_SIDE * SUPERSAMPLE / side
    image = Image.new("L", (SNAPSHOT_SIDE * SUPERSAMPLE,) * 2, 0)
    draw = ImageDraw.Draw(image)
    radius = pen_width * scale / 2
    for stroke in drawing:
        path = (_ink_path(stroke) - origin) * scale
        # Segment by segment, with a disc at every vertex: round caps and joins, and no gaps
        # (Pillow's joined wide polylines leave slivers between many short segments).
        for start, end in itertools.pairwise(path):
            draw.line([tuple(start), tuple(end)], fill=255, width=round(2 * radius))
        for x, y in path:
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    return np.asarray(image.reduce(SUPERSAMPLE))


def _ink_path(points: Stroke) -> Stroke:
    """web/js/ink.js: quadratic curves through the midpoints of the samples, flattened."""
    if len(points) < 3:
        return points
    t = np.linspace(0, 1, 6)[1:, None]
    path, current = [points[:1]], points[0]
    for control, following in itertools.pairwise(points[1:]):
        end = (control + following) / 2
        path.append((1 - t) ** 2 * current + 2 * (1 - t) * t * control + t**2 * end)
        current = end
    path.append(points[-1:])
    return np.vstack(path)


def snapshot_png(drawing: Sequence[Stroke], pen_width: float = PEN_WIDTH) -> bytes:
    """The snapshot as the page sends it without CompressionStream: an opaque RGBA PNG, like
    Chromium's toDataURL."""
    grey = render_snapshot(drawing, pen_width)
    rgba = np.dstack([grey, grey, grey, np.full_like(grey, 255)])
    buffer = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buffer, format="PNG")
    return buffer.getvalue()
