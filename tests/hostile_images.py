"""Hostile but valid images: small files that cost far more to decode than their size, or that
use PNG features no canvas writes. Shared by the tests and bench/hostile.py.

Each family comes with what the server must answer: an error code, or the digit itself
(the image is valid and its default image is the digit).
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from tests.support import canvas_png, holdout

SIGNATURE = b"\x89PNG\r\n\x1a\n"
ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def header(width: int, height: int, depth: int = 8, colour: int = 0, interlace: int = 0) -> bytes:
    return chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace))


def grey_png(pixels: np.ndarray, *extra: bytes, idat_pieces: int = 1, interlace: bool = False) -> bytes:
    """An 8-bit grey PNG of `pixels`, with `extra` chunks before the pixels, its compressed
    pixels split over `idat_pieces` IDAT chunks, Adam7-interlaced if asked."""
    height, width = pixels.shape
    if interlace:
        passes = [pixels[y0::dy, x0::dx] for x0, y0, dx, dy in ADAM7]
        raw = b"".join(_rows(part) for part in passes if part.size)
    else:
        raw = _rows(pixels)
    data = zlib.compress(raw, 9)
    step = -(-len(data) // idat_pieces)
    pieces = [data[i : i + step] for i in range(0, len(data), step)]
    pieces += [b""] * (idat_pieces - len(pieces))
    return (
        SIGNATURE
        + header(width, height, interlace=int(interlace))
        + b"".join(extra)
        + b"".join(chunk(b"IDAT", piece) for piece in pieces)
        + chunk(b"IEND", b"")
    )


def _rows(pixels: np.ndarray) -> bytes:
    rows = np.zeros((pixels.shape[0], pixels.shape[1] + 1), np.uint8)
    rows[:, 1:] = pixels
    return rows.tobytes()


def digit() -> tuple[np.ndarray, int]:
    """A hold-out digit drawn on a 280 px canvas (white on black), and its label."""
    x, y = holdout()
    return np.asarray(Image.open(io.BytesIO(canvas_png(x[0])))), int(y[0])


def text_bomb(count: int, inflated: int) -> list[bytes]:
    """`count` zTXt chunks, each inflating to `inflated` bytes."""
    return [chunk(b"zTXt", b"Comment\0\0" + zlib.compress(bytes(inflated), 9)) for _ in range(count)]


def profile_bomb(inflated: int) -> bytes:
    """An iCCP colour profile that inflates to `inflated` bytes."""
    return chunk(b"iCCP", b"icc\0\0" + zlib.compress(bytes(inflated), 9))


def animated(pixels: np.ndarray, frames: int) -> bytes:
    """An APNG: the digit as its default image, then `frames` more full-size (blank) frames."""
    height, width = pixels.shape
    control = [
        chunk(b"acTL", struct.pack(">II", frames + 1, 0)),
        chunk(b"fcTL", struct.pack(">IIIIIHHBB", 0, width, height, 0, 0, 1, 25, 0, 0)),
    ]
    rest, sequence = [], 1
    compressed = zlib.compress(_rows(np.zeros_like(pixels)), 9)
    for _ in range(frames):
        rest.append(chunk(b"fcTL", struct.pack(">IIIIIHHBB", sequence, width, height, 0, 0, 1, 25, 0, 0)))
        rest.append(chunk(b"fdAT", struct.pack(">I", sequence + 1) + compressed))
        sequence += 2
    plain = grey_png(pixels, *control)
    return plain[:-12] + b"".join(rest) + plain[-12:]


def sixteen_bit(pixels: np.ndarray) -> bytes:
    height, width = pixels.shape
    raw = np.zeros((height, 1 + 2 * width), np.uint8)
    raw[:, 1:] = (pixels.astype(">u2") * 257).view(np.uint8).reshape(height, 2 * width)
    return (
        SIGNATURE + header(width, height, depth=16) + chunk(b"IDAT", zlib.compress(raw.tobytes())) + chunk(b"IEND", b"")
    )


def idat_bomb(side: int) -> bytes:
    """A side×side grey PNG whose pixel stream inflates to 16× what the header allows."""
    data = zlib.compress(bytes(16 * side * (side + 1)), 9)
    return SIGNATURE + header(side, side) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def tall_png(rows: int, declared: int) -> bytes:
    """A one-pixel-wide blank grey PNG of `rows` rows, its header declaring `declared`."""
    data = zlib.compress(bytes(2 * rows), 9)
    return SIGNATURE + header(1, declared) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def scan_bomb_jpeg(repeats: int) -> bytes:
    """A progressive JPEG whose last (refinement) scan is repeated `repeats` times: valid, small,
    and slow to decode."""
    buffer = io.BytesIO()
    Image.new("L", (2048, 2048)).save(buffer, "JPEG", progressive=True)
    data = buffer.getvalue()
    last_scan = data.rindex(b"\xff\xda")
    return data[:last_scan] + data[last_scan:-2] * repeats + data[-2:]


@dataclass(frozen=True)
class Family:
    name: str
    build: Callable[[], bytes]
    code: str | None  # the error code; None: the digit must be recognised


def families() -> list[Family]:
    pixels, _ = digit()
    return [
        Family("progressive JPEG scan bomb", lambda: scan_bomb_jpeg(2000), "unsupported_format"),
        Family("WebP", lambda: _encoded(pixels, "WEBP"), "unsupported_format"),
        Family("5,000 IDAT chunks", lambda: grey_png(pixels, idat_pieces=5000), "too_large"),
        Family("3,000 zTXt chunks", lambda: grey_png(pixels, *text_bomb(3000, 1000)), "too_large"),
        Family("zTXt bombs (20 × 20 MB inflated)", lambda: grey_png(pixels, *text_bomb(20, 20_000_000)), None),
        Family("iCCP bomb (100 MB inflated)", lambda: grey_png(pixels, profile_bomb(100_000_000)), None),
        Family("APNG, 100 frames", lambda: animated(pixels, 100), None),
        Family("APNG, 1,000 frames", lambda: animated(pixels[::8, ::8], 1000), "too_large"),
        Family("interlaced (Adam7)", lambda: grey_png(pixels, interlace=True), None),
        Family("16-bit grey", lambda: sixteen_bit(pixels), "unsupported_format"),
        Family(
            "declares 100,000 × 100,000",
            lambda: (
                SIGNATURE + header(100_000, 100_000) + chunk(b"IDAT", zlib.compress(bytes(1000))) + chunk(b"IEND", b"")
            ),
            "too_large",
        ),
        Family("pixel stream 16× longer than declared", lambda: idat_bomb(1024), "bad_image"),
        Family("1,048,576 one-pixel rows, one row short", lambda: tall_png(1024 * 1024 - 1, 1024 * 1024), "bad_image"),
    ]


def _encoded(pixels: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt)
    return buffer.getvalue()
