"""Grey frames: the page's own snapshot format, beside PNG (docs/protocol.md).

A frame is the 4 bytes `DSG1`, the width and the height as big-endian 16-bit numbers, then
the pixels row by row, one byte each (0 background, 255 ink), compressed with zlib (what a
browser's `CompressionStream("deflate")` writes). The page's snapshots are grey already, so
this carries a quarter of an RGBA PNG's bytes, and decoding is one bounded inflate: no
chunks, filters or channels to undo. zlib-ng inflates a page frame in a third of the time
Python's own zlib takes, and writes the same format.
"""

from __future__ import annotations

import struct

import numpy as np
from zlib_ng import zlib_ng

MAGIC = b"DSG1"
_HEADER = struct.Struct(">4sHH")


class FrameRefused(ValueError):
    """Why a grey frame is not decoded: `code` is bad_image or too_large."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def is_grey_frame(data: bytes) -> bool:
    return data[: len(MAGIC)] == MAGIC


def decode(data: bytes, max_pixels: int) -> np.ndarray:
    """The frame's pixels, uint8 (height, width). The size is checked before inflating, and
    at most one byte more than it declares is inflated, so a zlib bomb stops there."""
    if len(data) < _HEADER.size:
        raise FrameRefused("bad_image", "The grey frame is shorter than its header.")
    _, width, height = _HEADER.unpack_from(data)
    if width == 0 or height == 0:
        raise FrameRefused("bad_image", "The grey frame has no pixels.")
    if width * height > max_pixels:
        raise FrameRefused("too_large", "The snapshot has too many pixels.")
    inflater = zlib_ng.decompressobj()
    try:
        pixels = inflater.decompress(data[_HEADER.size :], width * height + 1)
    except zlib_ng.error:  # type: ignore[misc]  # the stub declares `error` an instance
        raise FrameRefused("bad_image", "The grey frame's pixels are not zlib data.") from None
    if len(pixels) != width * height or not inflater.eof:
        raise FrameRefused("bad_image", "The grey frame's pixels do not match its size.")
    return np.frombuffer(pixels, np.uint8).reshape(height, width)


def encode(pixels: np.ndarray) -> bytes:
    """A uint8 (height, width) image as a grey frame, as the page writes one."""
    height, width = pixels.shape
    return _HEADER.pack(MAGIC, width, height) + zlib_ng.compress(np.ascontiguousarray(pixels, np.uint8).tobytes())
