"""Turn any canvas snapshot into the 28×28 image an MNIST-trained model expects.

MNIST digits were made by fitting each digit's ink into a 20×20 box (keeping its
aspect ratio), anti-aliasing, pasting into a 28×28 field and moving the centre of
mass to the middle. A model trained on them only works on input made the same way,
so every snapshot goes through that recipe here:

1. decode the grey frame (server/greyframe.py) or the PNG, refusing what no snapshot
   needs from its chunks alone (server/png.py);
2. find the ink whatever the colours: the distance of each pixel from the
   background colour (or the alpha, when the background is transparent);
3. crop to the ink, and call the snapshot empty when there is none or only specks;
4. repaint strokes much thinner or thicker than MNIST's towards its usual width;
5. resample so the longest side of the ink is 20 px, with the centre of mass at the
   centre of the 28×28 field, in one anti-aliased resampling.

Everything here is a pure function of its input, so it is safe on worker threads.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image

from server import greyframe, png
from server.errors import ClientError

# 1024×1024: eight times what the page sends (128 px a side) and room for any canvas that
# crops to its ink. Every cost grows with the pixels, so this bounds what an accepted
# snapshot costs: ~20 ms of CPU for the costliest kind (bench/hostile.py), where 2048×2048
# cost ~0.1 s.
MAX_PIXELS: int = 1024 * 1024

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

# Snapshots are grey frames or PNGs: canvases write both losslessly, and their sizes can be
# checked before decoding. Other formats' signatures get a clear refusal instead of "unreadable".
_OTHER_FORMATS = (b"\xff\xd8\xff", b"RIFF", b"GIF8", b"BM", b"II*\x00", b"MM\x00*", b"\x00\x00\x00\x0cjP")

# We enforce our own, lower pixel limit and answer "too_large"; Pillow's warning for
# the same images quotes the size, so the default once-per-message filter would let a
# client fill the log with it.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class BadImage(ClientError):
    """Raised for input that cannot be used; `code` is "bad_image", "too_large" or
    "unsupported_format"."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.http_status = {"too_large": 413, "unsupported_format": 415}.get(code, 400)


def _unreadable() -> BadImage:
    return BadImage("bad_image", "The snapshot is not a readable image.")


def _too_large() -> BadImage:
    return BadImage("too_large", "The snapshot has too many pixels.")


def _unsupported() -> BadImage:
    return BadImage("unsupported_format", "Snapshots must be PNG images.")


@dataclass(frozen=True)
class Prepared:
    """The model's input: a 28×28 float32 image in [0, 1], white ink on black.

    `preview` is the same image as uint8. Both are None when there was no ink.
    """

    image: np.ndarray | None
    preview: np.ndarray | None

    @property
    def empty(self) -> bool:
        return self.image is None


EMPTY = Prepared(image=None, preview=None)


def preprocess_bytes(data: bytes, max_pixels: int = MAX_PIXELS) -> Prepared:
    """Decode a snapshot and prepare it; raises only BadImage."""
    return preprocess_array(_decode(data, max_pixels))


def preprocess_array(pixels: np.ndarray) -> Prepared:
    """Prepare a 2-D grey array (uint8, or float in [0, 1]) or an H×W×3/4 uint8 array."""
    ink = _ink(_validated(pixels))
    if ink is None:
        return EMPTY
    return _mnist_like(ink)


def preview_png(preview: np.ndarray) -> bytes:
    """The 28×28 uint8 preview as a small PNG."""
    return png.encode_grey(np.ascontiguousarray(preview, dtype=np.uint8))


def _decode(data: bytes, max_pixels: int) -> np.ndarray:
    if greyframe.is_grey_frame(data):
        try:
            return greyframe.decode(data, max_pixels)
        except greyframe.FrameRefused as refused:
            raise BadImage(refused.code, str(refused)) from None
    if not png.is_png(data):
        raise _unsupported() if data.startswith(_OTHER_FORMATS) else _unreadable()
    try:
        parsed = png.parse(data, max_pixels)
        pixels = png.decode(parsed)
    except png.PngRefused as refused:
        raise BadImage(refused.code, str(refused)) from None
    return _decoded_by_pillow(parsed.minimal()) if pixels is None else pixels


def _decoded_by_pillow(data: bytes) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data), formats=("PNG",)) as image:
            return np.asarray(_normalised_mode(image))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_large() from None
    except Exception:
        # Pillow's decoders fail on hostile bytes in many ways (OSError, SyntaxError,
        # struct.error, ValueError, ...); all of them mean the same thing to a client.
        raise _unreadable() from None


def _normalised_mode(image: Image.Image) -> Image.Image:
    """L, RGB or RGBA: the modes the rest understands (converting only when needed)."""
    if "A" in image.getbands() or "transparency" in image.info:
        mode = "RGBA"
    elif image.getbands() == ("L",) or image.mode in ("1", "I", "F") or image.mode.startswith("I;"):
        mode = "L"
    else:
        mode = "RGB"
    return image if image.mode == mode else image.convert(mode)


def _validated(pixels: np.ndarray) -> np.ndarray:
    """Channels last, uint8."""
    pixels = np.asarray(pixels)
    grey = pixels.ndim == 2
    colour = pixels.ndim == 3 and pixels.shape[2] in (3, 4) and pixels.dtype == np.uint8
    if not (grey or colour) or pixels.size == 0:
        raise _unreadable()
    if np.issubdtype(pixels.dtype, np.floating):
        if not np.isfinite(pixels).all():
            raise _unreadable()
        # The output is 8-bit: so may the input be.
        pixels = np.round(np.clip(pixels, 0.0, 1.0) * 255).astype(np.uint8)
    elif pixels.dtype != np.uint8:
        raise _unreadable()
    return pixels if colour else pixels[:, :, None]


def _ink(pixels: np.ndarray) -> np.ndarray | None:
    """How much ink each pixel holds, 0–1, around the ink only; None when there is none.

    Only the ink's surroundings are kept, averaged down when large: what follows then
    costs the same for any canvas size.
    """
    distance = _distance(pixels)
    # Lossy formats leave noise on the background: measure it on the border, and count
    # only what stands above it.
    noise = 4.0 * _median(_border(distance))
    strongest = float(distance.max())
    if strongest - noise < MIN_CONTRAST * 255:
        return None
    top, left, extent = _ink_box(distance >= noise + CROP_LEVEL * (strongest - noise))
    factor = extent // LARGEST_EXTENT + 1
    margin = 2 * factor  # room for the anti-aliased edge around the box
    region = distance[max(0, top - margin) : top + extent + margin, max(0, left - margin) : left + extent + margin]
    ink = np.clip((region.astype(np.float32) - noise) / (strongest - noise), 0.0, 1.0)
    if factor == 1:
        return ink
    # Averaging after the noise is gone keeps every block with strong ink above zero.
    return _normalised(np.asarray(Image.fromarray(ink).reduce(factor)))


def _distance(pixels: np.ndarray) -> np.ndarray:
    """Each pixel's difference from the background colour, on a 0–255 scale."""
    if pixels.shape[2] == 4:
        alpha = pixels[:, :, 3:]
        # A transparent background means the alpha carries the ink (the page's own canvas
        # is black everywhere in RGB); an opaque one means the colours do.
        pixels = alpha if np.median(_border(alpha)) < 128 else pixels[:, :, :3]
    if pixels.shape[2] == 3 and _is_grey(pixels):
        pixels = pixels[:, :, :1]
    if pixels.shape[2] == 1:
        # The common case, kept in small integers: it runs on every full-size snapshot.
        grey = pixels[:, :, 0]
        background = int(_median(_border(grey)))
        if background == 0:  # white on black, as the page draws: the grey level is the distance
            return np.ascontiguousarray(grey)  # a copy only of a channel of colour pixels
        return np.abs(grey.astype(np.int16) - background).astype(np.uint8)
    background = np.median(_border(pixels), axis=0).astype(np.float32)
    squares = np.zeros(pixels.shape[:2], np.float32)
    for channel, level in enumerate(background):  # channel by channel: 10× faster than einsum
        difference = pixels[:, :, channel].astype(np.float32) - level
        squares += difference * difference
    # Root-mean-square over the channels keeps the 0–255 scale of a grey level.
    return np.sqrt(squares / 3.0)


def _is_grey(pixels: np.ndarray) -> bool:
    return bool((pixels[:, :, 0] == pixels[:, :, 1]).all() and (pixels[:, :, 1] == pixels[:, :, 2]).all())


def _median(values: np.ndarray) -> float:
    """np.median of a 1-D array, without its generality: this runs on every snapshot."""
    middle = len(values) // 2
    if len(values) % 2:
        return float(np.partition(values, middle)[middle])
    low, high = np.partition(values, (middle - 1, middle))[middle - 1 : middle + 1]
    return (float(low) + float(high)) / 2


def _border(pixels: np.ndarray) -> np.ndarray:
    """The outermost pixels, as an (n, ...) array."""
    return np.concatenate([pixels[0], pixels[-1], pixels[1:-1, 0], pixels[1:-1, -1]])


def _mnist_like(ink: np.ndarray) -> Prepared:
    top, left, extent = _ink_box(ink >= CROP_LEVEL)
    width = _stroke_width(ink[top : top + extent, left : left + extent])
    if extent < max(MIN_EXTENT, MIN_EXTENT_PER_WIDTH * width):
        return EMPTY
    mnist_width = width * BOX / extent
    if not THINNEST <= mnist_width <= THICKEST:
        wanted = THIN_TARGET if mnist_width < THINNEST else THICK_TARGET
        ink = _repainted(ink, BOX / extent, wanted - mnist_width)
        top, left, extent = _ink_box(ink >= CROP_LEVEL)
    preview = np.round(_placed(ink, (top, left), BOX / extent) * 255).astype(np.uint8)
    return Prepared(image=preview.astype(np.float32) / np.float32(255), preview=preview)


def _ink_box(strong: np.ndarray) -> tuple[int, int, int]:
    """Top, left and longest side of the box around the strong ink."""
    rows: np.ndarray = np.any(strong, axis=1)
    cols: np.ndarray = np.any(strong, axis=0)
    # first and last True of each: argmax finds the first without listing them all
    top, bottom = int(rows.argmax()), len(rows) - 1 - int(rows[::-1].argmax())
    left, right = int(cols.argmax()), len(cols) - 1 - int(cols[::-1].argmax())
    return top, left, max(bottom - top, right - left) + 1


def _normalised(ink: np.ndarray) -> np.ndarray:
    """Strongest ink 1 again, after resampling has faded lines thinner than a pixel."""
    return ink / ink.max()


def _stroke_width(ink: np.ndarray) -> float:
    """Mean stroke width in pixels: twice the ink's area over its outline's length.

    For a stroke of width w and length L the area is wL and the outline about 2L. The
    outline is the total variation of the ink, which does not depend on anti-aliasing,
    so the estimate is the same at every resolution.
    """
    # The steps inside, plus those onto the empty surroundings at the four edges.
    outline = (
        np.abs(np.diff(ink, axis=0)).sum()
        + np.abs(np.diff(ink, axis=1)).sum()
        + ink[0].sum()
        + ink[-1].sum()
        + ink[:, 0].sum()
        + ink[:, -1].sum()
    )
    # Counting steps along the axes overestimates a curve's length by 4/π on average.
    return float(2.0 * ink.sum() / (outline * np.pi / 4.0))


def _repainted(ink: np.ndarray, scale: float, widen: float) -> np.ndarray:
    """The digit at WORK_SCALE × MNIST's size, its strokes `widen` MNIST pixels wider."""
    work = _normalised(_placed(ink, _ink_box(ink >= CROP_LEVEL)[:2], scale * WORK_SCALE, WORK_FIELD))
    steps = round(abs(widen) * WORK_SCALE / 2)  # each step adds a pixel on both sides
    if widen > 0:
        return _dilated(work, steps)
    return 1.0 - _dilated(1.0 - work, steps)


def _dilated(ink: np.ndarray, steps: int) -> np.ndarray:
    """Grey dilation by an octagon, alternating 3×3 square and cross steps: a round pen."""
    for step in range(steps):
        padded = np.pad(ink, 1)
        column = np.maximum(np.maximum(padded[:-2], padded[1:-1]), padded[2:])
        if step % 2 == 0:
            ink = np.maximum(np.maximum(column[:, :-2], column[:, 1:-1]), column[:, 2:])
        else:
            ink = np.maximum(np.maximum(padded[1:-1, :-2], column[:, 1:-1]), padded[1:-1, 2:])
    return ink


def _placed(ink: np.ndarray, corner: tuple[int, int], scale: float, size: int = SIZE) -> np.ndarray:
    """Resample `ink` by `scale` into a size×size field, the centre of mass in the middle.

    As in MNIST, the ink box's `corner` lands on a pixel corner and the shift is whole
    output pixels, so a 20-px box covers exactly 20 pixels and the centre of mass ends
    within half a pixel of the middle. One resampling does the scaling and the shift.
    """
    mass = ink.sum()
    centre_y = float(ink.sum(axis=1) @ np.arange(ink.shape[0], dtype=np.float32) / mass) + 0.5
    centre_x = float(ink.sum(axis=0) @ np.arange(ink.shape[1], dtype=np.float32) / mass) + 0.5
    middle = size * CENTRE / SIZE
    # Where the box's corner lands in the field (pixel-edge coordinates), rounded...
    field_y = round(middle - (centre_y - corner[0]) * scale)
    field_x = round(middle - (centre_x - corner[1]) * scale)
    # ...and the source region that lands on the field.
    span = size / scale
    top, left = corner[0] - field_y / scale, corner[1] - field_x / scale
    source = _window(ink, top, left, span)
    # Lanczos anti-aliases a downscale (after a box reduce for big ones); bicubic
    # enlarges a small drawing without Lanczos's ringing.
    resample = Image.Resampling.LANCZOS if scale < 1.0 else Image.Resampling.BICUBIC
    region = (left % 1.0, top % 1.0, left % 1.0 + span, top % 1.0 + span)
    placed = Image.fromarray(source).resize((size, size), resample, box=region, reducing_gap=2.0)
    return np.clip(np.asarray(placed), 0.0, 1.0)


def _window(ink: np.ndarray, top: float, left: float, span: float) -> np.ndarray:
    """The pixels from (floor(top), floor(left)) covering `span`, background beyond the edges."""
    y0, x0 = int(np.floor(top)), int(np.floor(left))
    size = int(np.ceil(span)) + 1
    window = np.zeros((size, size), dtype=np.float32)
    height, width = ink.shape
    src_y0, src_x0 = max(y0, 0), max(x0, 0)
    src_y1, src_x1 = min(y0 + size, height), min(x0 + size, width)
    if src_y0 < src_y1 and src_x0 < src_x1:
        window[src_y0 - y0 : src_y1 - y0, src_x0 - x0 : src_x1 - x0] = ink[src_y0:src_y1, src_x0:src_x1]
    return window
