"""PNG snapshots, checked chunk by chunk from the bytes before anything is decoded.

A PNG can cost far more to decode than its size suggests: thousands of chunks, compressed
text or colour profiles that inflate to megabytes, animation frames, a header declaring a
huge image. `parse` walks the chunk list (a few microseconds a chunk) and refuses what a
snapshot never needs, so that no snapshot costs more than a few milliseconds before it is
refused. What it keeps is only what the image's pixels need (IHDR, PLTE, tRNS, IDAT):
ancillary chunks, text and profiles included, are never inflated, and an APNG's animation
chunks are dropped, leaving its default image.

`decode` inflates the pixels straight into an array for the frames browsers send (8-bit,
not interlaced, rows filtered with None or Up, as Chromium's canvas encoder writes them);
any other PNG goes to Pillow, rebuilt from the kept chunks only.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
from zlib_ng import zlib_ng

SIGNATURE = b"\x89PNG\r\n\x1a\n"
# A canvas PNG has an IHDR, a few IDATs and an IEND; 1 MiB of 8 KiB IDATs is 128 chunks.
MAX_CHUNKS = 512
KEPT = (b"PLTE", b"tRNS", b"IDAT")
# Bit depths allowed per colour type (PNG spec, table 11.1), 16 left out: no canvas writes it.
BIT_DEPTHS = {0: (1, 2, 4, 8), 2: (8,), 3: (1, 2, 4, 8), 4: (8,), 6: (8,)}
# Decoded here: grey, RGB and RGBA; palettes, grey + alpha and tRNS transparency go to Pillow.
CHANNELS = {0: 1, 2: 3, 6: 4}
FILTER_NONE, FILTER_UP = 0, 2
# Rows are inflated a step at a time, so a row another filter will stop them early. A step is
# bytes, not rows: a one-pixel-wide image of a million rows would otherwise take a Python step
# for every few bytes, hundreds of milliseconds for a 2 KiB PNG.
STEP_BYTES = 64 * 1024


class PngRefused(ValueError):
    """Why a PNG is not decoded: `code` is bad_image, too_large or unsupported_format."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


UNREADABLE = ("bad_image", "The snapshot is not a readable image.")
TOO_MANY_PIXELS = ("too_large", "The snapshot has too many pixels.")
TOO_MANY_CHUNKS = ("too_large", "The snapshot has too many PNG chunks.")
SIXTEEN_BITS = ("unsupported_format", "Snapshots must be PNGs of at most 8 bits per channel.")


@dataclass(frozen=True)
class Png:
    width: int
    height: int
    bit_depth: int
    colour_type: int
    interlaced: bool
    chunks: tuple[tuple[bytes, bytes, bytes], ...]  # (type, data, the whole chunk) of those kept, in order

    @property
    def pixel_data(self) -> bytes:
        return b"".join(data for kind, data, _ in self.chunks if kind == b"IDAT")

    def minimal(self) -> bytes:
        """The same image as a PNG of its header, palette, transparency and pixels only, the
        chunks as they came."""
        header = struct.pack(
            ">IIBBBBB", self.width, self.height, self.bit_depth, self.colour_type, 0, 0, int(self.interlaced)
        )
        return (
            SIGNATURE + _chunk(b"IHDR", header) + b"".join(whole for _, _, whole in self.chunks) + _chunk(b"IEND", b"")
        )


def is_png(data: bytes) -> bool:
    return data.startswith(SIGNATURE)


def parse(data: bytes, max_pixels: int) -> Png:
    """The header and the kept chunks; raises PngRefused."""
    position, count, header, kept = len(SIGNATURE), 0, None, []
    while True:
        if position + 12 > len(data):
            raise PngRefused(*UNREADABLE)  # no IEND: truncated
        length, kind = struct.unpack_from(">I4s", data, position)
        end = position + 12 + length
        count += 1
        if end > len(data) or not kind.isalpha():
            raise PngRefused(*UNREADABLE)
        if count > MAX_CHUNKS:
            raise PngRefused(*TOO_MANY_CHUNKS)
        body = data[position + 8 : end - 4]
        critical = kind[:1].isupper()
        if header is None and kind != b"IHDR":
            raise PngRefused(*UNREADABLE)
        if kind == b"IHDR":
            if header is not None:
                raise PngRefused(*UNREADABLE)
            header = _header(body, max_pixels)
        elif kind == b"IEND":
            break
        elif kind in KEPT:
            kept.append((kind, body, data[position:end]))
        elif critical:
            raise PngRefused(*UNREADABLE)  # a critical chunk this decoder does not know
        position = end
    if not any(kind == b"IDAT" for kind, _, _ in kept):
        raise PngRefused(*UNREADABLE)
    assert header is not None  # any chunk before IHDR was refused above
    width, height, bit_depth, colour_type, interlaced = header
    return Png(width, height, bit_depth, colour_type, interlaced, tuple(kept))


def decode(png: Png) -> np.ndarray | None:
    """H×W grey, H×W×3 or ×4 uint8 pixels, or None when Pillow has to decode this one.

    An opaque image whose channels are all equal (the page's white-on-black frames) comes
    back as H×W grey: that is all the ink-finding needs, and it skips two thirds of the work.
    """
    channels = CHANNELS.get(png.colour_type)
    if png.bit_depth != 8 or png.interlaced or channels is None or any(kind == b"tRNS" for kind, _, _ in png.chunks):
        return None
    stride = png.width * channels + 1  # each row starts with its filter byte
    size = png.height * stride
    raw = _inflated_if_none_or_up(png.pixel_data, stride, size)
    if raw is None:
        return None
    rows = np.frombuffer(raw, np.uint8).reshape(png.height, stride)
    filters = rows[:, 0]
    filtered = np.ascontiguousarray(rows[:, 1:]).reshape(png.height, png.width, channels)
    if channels == 1 or (channels == 4 and _opaque_grey(filtered, filters)):
        return _unfiltered(filtered[:, :, 0], filters)
    return _unfiltered(filtered, filters)


def _inflated_if_none_or_up(data: bytes, stride: int, size: int) -> bytes | None:
    """The `size` bytes of filtered rows, or None as soon as a row has another filter: Pillow
    decodes those, and little was inflated for nothing. Inflates at most one byte more than
    `size`, so a zlib bomb stops there."""
    inflater, pieces, done = zlib_ng.decompressobj(), [], 0
    step = max(1, STEP_BYTES // stride) * stride  # whole rows, so each piece starts one
    try:
        while done < size:
            piece = inflater.decompress(data, min(size - done, step))
            data = inflater.unconsumed_tail
            if not piece:
                raise PngRefused(*UNREADABLE)  # the rows end early
            filters = np.frombuffer(piece, np.uint8)[::stride]  # each piece starts a row
            if not ((filters == FILTER_NONE) | (filters == FILTER_UP)).all():
                return None
            pieces.append(piece)
            done += len(piece)
        if inflater.decompress(data, 1):
            raise PngRefused(*UNREADABLE)  # more pixels than the header declares
    except zlib_ng.error:  # type: ignore[misc]  # the stub declares `error` an instance
        raise PngRefused(*UNREADABLE) from None
    return b"".join(pieces)


def _opaque_grey(filtered: np.ndarray, filters: np.ndarray) -> bool:
    """Whether an RGBA image is opaque with R = G = B, judged on the filtered bytes: with None
    and Up filters, equal filtered columns make equal pixels and the other way round. One
    32-bit word per pixel (R in the low byte) makes it a single comparison."""
    words = filtered.view("<u4")[:, :, 0]
    alpha = np.where(filters == FILTER_NONE, 0xFF000000, 0).astype(np.uint32)
    alpha[0] = 0xFF000000  # the first row's Up filter adds zeros: its alpha is as written
    return bool((words == (words & 0xFF) * 0x010101 + alpha[:, None]).all())


def _unfiltered(filtered: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """Undo None and Up filters: each pixel is the running sum (mod 256) of its column since the
    last None row."""
    running = _column_sums(filtered)
    restarts = np.flatnonzero(filters[1:] == FILTER_NONE) + 1
    if restarts.size == 0:
        return running
    # A None row starts the sum afresh: take away what the rows before it added.
    last_restart = np.maximum.accumulate(np.where(filters == FILTER_NONE, np.arange(len(filters)), 0))
    before = np.where(
        (last_restart > 0)[(...,) + (None,) * (filtered.ndim - 1)], running[np.maximum(last_restart - 1, 0)], 0
    ).astype(np.uint8)
    return running - before


def _column_sums(filtered: np.ndarray) -> np.ndarray:
    """Running sums down the rows, mod 256, by doubling: log2(height) whole-array additions run
    several times faster than numpy's row-by-row accumulate."""
    sums = np.array(filtered, dtype=np.uint8)
    step = 1
    while step < len(sums):
        sums[step:] += sums[:-step].copy()
        step *= 2
    return sums


def encode_grey(pixels: np.ndarray) -> bytes:
    """A small 8-bit grey image as a PNG, written directly: Pillow's encoder costs several
    times more for a 28×28 preview, most of it in Python."""
    height, width = pixels.shape
    rows = np.zeros((height, width + 1), np.uint8)  # each row: filter byte 0 (None), then pixels
    rows[:, 1:] = pixels
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels_chunk = _chunk(b"IDAT", zlib_ng.compress(rows.tobytes(), 1))
    return SIGNATURE + _chunk(b"IHDR", header) + pixels_chunk + _chunk(b"IEND", b"")


def _header(body: bytes, max_pixels: int) -> tuple[int, int, int, int, bool]:
    if len(body) != 13:
        raise PngRefused(*UNREADABLE)
    width, height, bit_depth, colour_type, compression, filtering, interlace = struct.unpack(">IIBBBBB", body)
    if not (0 < width < 2**31 and 0 < height < 2**31) or compression or filtering or interlace > 1:
        raise PngRefused(*UNREADABLE)
    if colour_type in BIT_DEPTHS and bit_depth == 16:
        raise PngRefused(*SIXTEEN_BITS)
    if bit_depth not in BIT_DEPTHS.get(colour_type, ()):
        raise PngRefused(*UNREADABLE)
    if width * height > max_pixels:
        raise PngRefused(*TOO_MANY_PIXELS)
    return width, height, bit_depth, colour_type, bool(interlace)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib_ng.crc32(kind + data))
