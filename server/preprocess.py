"""Turn any canvas snapshot into the 28×28 image an MNIST-trained model expects.

MNIST digits were made by fitting each digit's ink into a 20×20 box (keeping its
aspect ratio), anti-aliasing, pasting into a 28×28 field and moving the centre of
mass to the middle. A model trained on them only works on input made the same way,
so every snapshot goes through that recipe:

1. decode the grey frame (server/greyframe.py) or the PNG, refusing what no snapshot
   needs from its chunks alone (server/png.py);
2. find the ink whatever the colours: the distance of each pixel from the
   background colour (or the alpha, when the background is transparent);
3. crop to the ink, and call the snapshot empty when there is none or only specks;
4. repaint strokes much thinner or thicker than MNIST's towards its usual width;
5. resample so the longest side of the ink is 20 px, with the centre of mass at the
   centre of the 28×28 field, in one anti-aliased resampling.

Steps 1 and 2 are here; 3–5 are compiled, in server/recipe.py. Everything is a pure
function of its input, so it is safe on any thread.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image

from server import greyframe, png, recipe
from server.errors import ClientError

# 1024×1024: eight times what the page sends (128 px a side) and room for any canvas that
# crops to its ink. Every cost grows with the pixels, so this bounds what an accepted
# snapshot costs: a few tens of milliseconds of CPU for the costliest kinds (bench/hostile.py
# measures them), where 2048×2048 cost ~0.1 s.
MAX_PIXELS: int = 1024 * 1024

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
    return BadImage("unsupported_format", "Snapshots must be grey frames or PNG images.")


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
    distance = _distance(_validated(pixels))
    # Decoded frames are read-only; so is every distance, and one compiled recipe serves all.
    distance.flags.writeable = False
    digit = recipe.mnist_digit(distance)
    if digit.size == 0:
        return EMPTY
    return Prepared(image=digit.astype(np.float32) / np.float32(255), preview=digit)


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


def _distance(pixels: np.ndarray) -> np.ndarray:
    """Each pixel's difference from the background colour, 0–255."""
    if pixels.shape[2] == 4:
        alpha = pixels[:, :, 3:]
        # A transparent background means the alpha carries the ink (the page's own canvas
        # is black everywhere in RGB); an opaque one means the colours do.
        pixels = alpha if np.median(_border(alpha)) < 128 else pixels[:, :, :3]
    if pixels.shape[2] == 3 and _is_grey(pixels):
        pixels = pixels[:, :, :1]
    if pixels.shape[2] == 1:
        return recipe.grey_distance(np.ascontiguousarray(pixels[:, :, 0]))
    background = np.median(_border(pixels), axis=0).astype(np.float32)
    squares = np.zeros(pixels.shape[:2], np.float32)
    for channel, level in enumerate(background):  # channel by channel: 10× faster than einsum
        difference = pixels[:, :, channel].astype(np.float32) - level
        squares += difference * difference
    # Root-mean-square over the channels keeps the 0–255 scale of a grey level.
    return np.round(np.sqrt(squares / 3.0)).astype(np.uint8)


def _is_grey(pixels: np.ndarray) -> bool:
    return bool((pixels[:, :, 0] == pixels[:, :, 1]).all() and (pixels[:, :, 1] == pixels[:, :, 2]).all())


def _border(pixels: np.ndarray) -> np.ndarray:
    """The outermost pixels, as an (n, ...) array."""
    return np.concatenate([pixels[0], pixels[-1], pixels[1:-1, 0], pixels[1:-1, -1]])
