"""Steps 3–5 of the MNIST recipe (server/preprocess.py), compiled: from how far each pixel is
from the background to the 28×28 digit, in one call that holds no GIL.

Compiled because as many small NumPy and Pillow calls the same steps would hand the GIL to the
event loop and back a hundred times a snapshot, which under load costs several times their own work.
Loops run over slices from index 0, for the reason server/resample.py gives.
"""

from __future__ import annotations

import math

import numpy as np

from server.jit import compiled
from server.resample import reduced, resized

SIZE = 28
BOX = 20
# MNIST's centre of mass sits in the middle of pixel 14 (measured: 14.0 ± 0.3 in
# index coordinates on both axes); in pixel-edge coordinates that is 14.5.
CENTRE = 14.5

# Ink is what differs from the background by at least this much (0–1 scale)...
MIN_CONTRAST = 0.1
# ...and the crop box is where the ink reaches this fraction of its strongest value,
# the level at which MNIST's own 20-px boxes are drawn (all hold-out digits measure 20).
CROP_LEVEL = 0.2
# Specks: a dot's extent is about twice its stroke width (up to 2.35× for hard-edged
# pixel discs) and a digit's is several times it (97% of 2×-pen digits exceed 2.4×)...
MIN_EXTENT_PER_WIDTH = 2.4
# ...and ink that spans fewer pixels than this is no digit anyone drew.
MIN_EXTENT = 10

# Stroke widths in MNIST pixels (see _stroke_width): MNIST's median is 2.5 and 95% of
# its digits lie in 1.6–4.2, so only widths outside that band are repainted, to a
# typical width near the band's edge that the model reads best.
THINNEST, THIN_TARGET = 1.6, 2.3
THICKEST, THICK_TARGET = 4.2, 3.0
# Repainting happens at 4× MNIST's resolution, where a pen step is half an MNIST pixel
# of width, in a field with room to grow around the 20-px box.
WORK_SCALE = 4
WORK_FIELD = (BOX + 20) * WORK_SCALE
# Drawings larger than this (in pixels) are averaged down before anything else: 8×
# MNIST's resolution is plenty, and the cost stops growing with the canvas.
LARGEST_EXTENT = 160

Box = tuple[int, int, int]  # top, left, longest side
# The smallest positive float32: ink at or above it is any ink at all.
ANY_INK = np.float32(1e-45)


@compiled(nogil=True)
def grey_distance(grey: np.ndarray) -> np.ndarray:
    """Each pixel's difference from the background, the median of the outermost pixels."""
    background = int(_border_median(grey))
    if background == 0:  # white on black, as the page draws: the grey level is the distance
        return grey
    distance = np.empty_like(grey)
    for y in range(grey.shape[0]):
        source, out = grey[y], distance[y]
        for x in range(source.size):
            out[x] = abs(int(source[x]) - background)
    return distance


@compiled(nogil=True)
def mnist_digit(distance: np.ndarray) -> np.ndarray:
    """The 28×28 uint8 digit, white on black, from a 2-D uint8 distance image; a (0, 0) array
    when there is no ink or only specks."""
    ink = _ink(distance)
    if ink.size == 0:
        return np.zeros((0, 0), np.uint8)
    return _mnist_like(ink)


@compiled(nogil=True)
def _border_median(pixels: np.ndarray) -> float:
    """The median of the outermost pixels of a 2-D uint8 image (the top and bottom rows twice
    when it is one row high), from their histogram."""
    height, width = pixels.shape
    counts = np.zeros(256, np.int64)
    for x in range(width):
        counts[pixels[0, x]] += 1
        counts[pixels[height - 1, x]] += 1
    for y in range(1, height - 1):
        counts[pixels[y, 0]] += 1
        counts[pixels[y, width - 1]] += 1
    total = 2 * width + 2 * max(height - 2, 0)
    # the values at positions (total - 1) // 2 and total // 2 of the sorted border
    low, high, seen = -1, -1, 0
    for value in range(256):
        seen += counts[value]
        if low < 0 and seen > (total - 1) // 2:
            low = value
        if seen > total // 2:
            high = value
            break
    return (low + high) / 2


@compiled(nogil=True)
def _ink(distance: np.ndarray) -> np.ndarray:
    """How much ink each pixel holds, 0–1, around the ink only; (0, 0) when there is none.

    Lossy formats leave noise on the background: it is measured on the border, and only what
    stands above it counts. Large drawings are averaged down, so what follows costs the same
    for any canvas size.
    """
    noise = 4.0 * _border_median(distance)
    strongest = float(distance.max())
    if strongest - noise < MIN_CONTRAST * 255:
        return np.zeros((0, 0), np.float32)
    top, left, extent = _ink_box(distance, noise + CROP_LEVEL * (strongest - noise))
    factor = extent // LARGEST_EXTENT + 1
    margin = 2 * factor  # room for the anti-aliased edge around the box
    y0, x0 = max(0, top - margin), max(0, left - margin)
    y1, x1 = min(distance.shape[0], top + extent + margin), min(distance.shape[1], left + extent + margin)
    low, span = np.float32(noise), np.float32(strongest - noise)
    ink = np.empty((y1 - y0, x1 - x0), np.float32)
    for y in range(ink.shape[0]):
        source, out = distance[y0 + y, x0:x1], ink[y]
        for x in range(out.size):
            out[x] = min(max((source[x] - low) / span, np.float32(0.0)), np.float32(1.0))
    if factor == 1:
        return ink
    # Averaging after the noise is gone keeps every block with strong ink above zero.
    return _normalised(reduced(ink, factor, (0, 0, ink.shape[1], ink.shape[0])))


@compiled(nogil=True)
def _ink_box(ink: np.ndarray, level: float | np.floating) -> Box:
    """Top, left and longest side of the box around the ink at `level` or above; a side of 0
    when there is none."""
    top, left, bottom, right = _bounds(ink, level)
    return top, left, max(bottom - top, right - left)


@compiled(nogil=True)
def _bounds(ink: np.ndarray, level: float | np.floating) -> tuple[int, int, int, int]:
    """Top, left, bottom and right (exclusive) of the ink at `level` or above; all 0 when there
    is none. Rows are counted and columns marked without branches, so both vectorise."""
    height, width = ink.shape
    inked_columns = np.zeros(width, np.uint8)
    top, bottom = height, -1
    for y in range(height):
        row = ink[y]
        count = 0
        for x in range(width):
            hit = row[x] >= level
            count += hit
            inked_columns[x] |= hit
        if count:
            top, bottom = min(top, y), y
    if bottom < 0:
        return 0, 0, 0, 0
    left = int(np.argmax(inked_columns))
    right = width - int(np.argmax(inked_columns[::-1]))
    return top, left, bottom + 1, right


@compiled(nogil=True)
def _mnist_like(ink: np.ndarray) -> np.ndarray:
    # ink is float32: its crop level is the float32 nearest to CROP_LEVEL
    top, left, extent = _ink_box(ink, np.float32(CROP_LEVEL))
    width = _stroke_width(ink[top : top + extent, left : left + extent])
    if extent < max(MIN_EXTENT, MIN_EXTENT_PER_WIDTH * width):
        return np.zeros((0, 0), np.uint8)
    mnist_width = width * BOX / extent
    if not THINNEST <= mnist_width <= THICKEST:
        wanted = THIN_TARGET if mnist_width < THINNEST else THICK_TARGET
        ink = _repainted(ink, (top, left), BOX / extent, wanted - mnist_width)
        top, left, extent = _ink_box(ink, np.float32(CROP_LEVEL))
        if extent == 0:  # thinning left nothing at the crop level
            return np.zeros((0, 0), np.uint8)
    placed = _placed(ink, (top, left), BOX / extent, np.empty((SIZE, SIZE), np.float32))
    digit = np.empty(placed.shape, np.uint8)
    for y in range(placed.shape[0]):
        source, out = placed[y], digit[y]
        for x in range(source.size):
            out[x] = np.uint8(np.rint(source[x] * np.float32(255.0)))
    return digit


@compiled(nogil=True)
def _normalised(ink: np.ndarray) -> np.ndarray:
    """Strongest ink 1 again, after resampling has faded lines thinner than a pixel."""
    strongest = ink.max()
    for y in range(ink.shape[0]):
        row = ink[y]
        for x in range(row.size):
            row[x] = row[x] / strongest
    return ink


@compiled(nogil=True, fastmath={"reassoc", "contract"})
def _stroke_width(ink: np.ndarray) -> float:
    """Mean stroke width in pixels: twice the ink's area over its outline's length.

    For a stroke of width w and length L the area is wL and the outline about 2L. The
    outline is the total variation of the ink, which does not depend on anti-aliasing,
    so the estimate is the same at every resolution. (The sums may be reordered, so that
    they vectorise.)
    """
    height, width = ink.shape
    area, outline = 0.0, 0.0
    for y in range(height):
        row = ink[y]
        # the steps along the row, onto the empty surroundings at both ends included
        outline += float(row[0]) + float(row[width - 1])
        for x in range(width):
            area += row[x]
        following = row[1:]
        for x in range(width - 1):
            outline += abs(float(following[x]) - float(row[x]))
        if y + 1 < height:
            below = ink[y + 1]
            for x in range(width):
                outline += abs(float(below[x]) - float(row[x]))
    top, bottom = ink[0], ink[height - 1]
    for x in range(width):  # the steps onto the empty surroundings above and below
        outline += float(top[x]) + float(bottom[x])
    # Counting steps along the axes overestimates a curve's length by 4/π on average.
    return 2.0 * area / (outline * math.pi / 4.0)


@compiled(nogil=True)
def _repainted(ink: np.ndarray, corner: tuple[int, int], scale: float, widen: float) -> np.ndarray:
    """The digit at WORK_SCALE × MNIST's size, its strokes `widen` MNIST pixels wider.

    Only the box around the ink, grown by the pen's reach and one pixel of background, can
    change: the box alone is repainted. (A pen that thins strokes is one that thickens the
    background, and the background pixel at the box's edge stands for all beyond it.)
    """
    work = _normalised(_placed(ink, corner, scale * WORK_SCALE, np.empty((WORK_FIELD, WORK_FIELD), np.float32)))
    steps = round(abs(widen) * WORK_SCALE / 2)  # each step adds a pixel on both sides
    top, left, bottom, right = _bounds(work, ANY_INK)
    reach = steps + 1
    y0, x0 = max(top - reach, 0), max(left - reach, 0)
    y1, x1 = min(bottom + reach, WORK_FIELD), min(right + reach, WORK_FIELD)
    box = np.ascontiguousarray(work[y0:y1, x0:x1])
    repainted = _dilated(box, steps) if widen > 0 else _inverted(_dilated(_inverted(box), steps))
    for y in range(y1 - y0):
        source, out = repainted[y], work[y0 + y, x0:x1]
        for x in range(source.size):
            out[x] = source[x]
    return work


@compiled(nogil=True)
def _inverted(ink: np.ndarray) -> np.ndarray:
    """1 − ink, in place: ink becomes background and background ink."""
    for y in range(ink.shape[0]):
        row = ink[y]
        for x in range(row.size):
            row[x] = np.float32(1.0) - row[x]
    return ink


@compiled(nogil=True)
def _dilated(ink: np.ndarray, steps: int) -> np.ndarray:
    """Grey dilation by an octagon, alternating 3×3 square and cross steps: a round pen.
    Beyond the edges is background (0)."""
    height, width = ink.shape
    for step in range(steps):
        padded = np.zeros((height + 2, width + 2), np.float32)
        for y in range(height):
            source, out = ink[y], padded[y + 1, 1 : width + 1]
            for x in range(width):
                out[x] = source[x]
        column = np.empty((height, width + 2), np.float32)  # each pixel's maximum with those above and below
        for y in range(height):
            above, middle, below, out = padded[y], padded[y + 1], padded[y + 2], column[y]
            for x in range(width + 2):
                out[x] = max(above[x], middle[x], below[x])
        # the square takes its neighbours' columns, the cross only their own pixels
        grown = np.empty((height, width), np.float32)
        for y in range(height):
            side = column[y] if step % 2 == 0 else padded[y + 1]
            before, centre, after, out = side[:width], column[y, 1 : width + 1], side[2:], grown[y]
            for x in range(width):
                out[x] = max(before[x], centre[x], after[x])
        ink = grown
    return ink


@compiled(nogil=True, fastmath={"reassoc", "contract"})
def _placed(ink: np.ndarray, corner: tuple[int, int], scale: float, field: np.ndarray) -> np.ndarray:
    """Resample `ink` by `scale` into the square `field`, the centre of mass in the middle.

    As in MNIST, the ink box's `corner` lands on a pixel corner and the shift is whole
    output pixels, so a 20-px box covers exactly 20 pixels and the centre of mass ends
    within half a pixel of the middle. One resampling does the scaling and the shift.
    """
    mass, moment_y, moment_x = 0.0, 0.0, 0.0
    for y in range(ink.shape[0]):
        row = ink[y]
        row_mass = 0.0
        for x in range(row.size):
            row_mass += row[x]
            moment_x += row[x] * x
        mass += row_mass
        moment_y += row_mass * y
    size = field.shape[0]
    middle = size * CENTRE / SIZE
    # Where the box's corner lands in the field (pixel-edge coordinates), rounded...
    field_y = round(middle - (moment_y / mass + 0.5 - corner[0]) * scale)
    field_x = round(middle - (moment_x / mass + 0.5 - corner[1]) * scale)
    # ...and the source region that lands on the field.
    span = size / scale
    top, left = corner[0] - field_y / scale, corner[1] - field_x / scale
    source, inked = _window(ink, top, left, span)
    # Lanczos anti-aliases a downscale (after a box reduce for big ones); bicubic
    # enlarges a small drawing without Lanczos's ringing.
    top_offset, left_offset = top - math.floor(top), left - math.floor(left)
    box = (left_offset, top_offset, left_offset + span, top_offset + span)
    placed = resized(source, size, box, scale < 1.0, inked)
    for y in range(size):
        source_row, out = placed[y], field[y]
        for x in range(size):
            out[x] = min(max(source_row[x], np.float32(0.0)), np.float32(1.0))
    return field


@compiled(nogil=True)
def _window(ink: np.ndarray, top: float, left: float, span: float) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The pixels from (floor(top), floor(left)) covering `span`, background beyond the edges,
    and where in it `ink` lies (top, left, bottom, right)."""
    y0, x0 = math.floor(top), math.floor(left)
    size = math.ceil(span) + 1
    window = np.zeros((size, size), np.float32)
    height, width = ink.shape
    first_y, last_y = max(y0, 0), max(min(y0 + size, height), max(y0, 0))
    first_x, last_x = max(x0, 0), max(min(x0 + size, width), max(x0, 0))
    for y in range(last_y - first_y):
        source, out = ink[first_y + y, first_x:last_x], window[first_y - y0 + y, first_x - x0 :]
        for x in range(source.size):
            out[x] = source[x]
    return window, (first_y - y0, first_x - x0, last_y - y0, last_x - x0)
