"""server/png.py: the direct decoder gives exactly Pillow's pixels, the chunk checks refuse
only what they should, and the preview encoder writes PNGs that Pillow reads back."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from bench.record_page import PNG_FIXTURE, Recording
from server import png

MAX_PIXELS = 1 << 20
# What browsers without CompressionStream send: the PNGs of Chromium's canvas.
PAGE_FRAMES = [frame for stroke in Recording.load(PNG_FIXTURE).strokes for frame in stroke][::25]


def pillow(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image)


def filtered_png(pixels: np.ndarray, filters: list[int]) -> bytes:
    """`pixels` (H×W×C, C = 1, 3 or 4) with each row filtered by None (0) or Up (2)."""
    height, width, channels = pixels.shape
    flat = pixels.reshape(height, width * channels)
    rows = []
    for index, kind in enumerate(filters):
        above = flat[index - 1] if index else np.zeros_like(flat[0])
        rows.append(bytes([kind]) + (flat[index] - above * (kind == 2)).astype(np.uint8).tobytes())
    colour = {1: 0, 3: 2, 4: 6}[channels]
    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return (
        png.SIGNATURE
        + png._chunk(b"IHDR", header)
        + png._chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + png._chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("frame", PAGE_FRAMES)
def test_the_pages_frames_decode_to_their_grey_channel(frame: bytes) -> None:
    pixels = png.decode(png.parse(frame, MAX_PIXELS))
    reference = pillow(frame)
    assert pixels is not None and pixels.ndim == 2
    assert (reference[:, :, 3] == 255).all() and (reference[:, :, 0] == reference[:, :, 2]).all()
    np.testing.assert_array_equal(pixels, reference[:, :, 0])


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.sampled_from([1, 3, 4]), st.integers(0, 2**32 - 1), st.booleans())
def test_none_and_up_filtered_rows_decode_as_pillow_does(
    height: int, width: int, channels: int, seed: int, grey: bool
) -> None:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (height, width, channels), np.uint8)
    if grey and channels == 4:  # opaque and R = G = B: decoded to its grey channel
        pixels[:, :, 1:3], pixels[:, :, 3] = pixels[:, :, :1], 255
    data = filtered_png(pixels, rng.choice([0, 2], height).tolist())
    decoded = png.decode(png.parse(data, MAX_PIXELS))
    assert decoded is not None, "None and Up filters are the direct decoder's own"
    reference = pillow(data)
    np.testing.assert_array_equal(
        decoded, reference[:, :, 0] if decoded.ndim == 2 and reference.ndim == 3 else reference
    )


def test_other_filters_are_left_to_pillow() -> None:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 20, 3), np.uint8)).save(buffer, "PNG")
    assert png.decode(png.parse(buffer.getvalue(), MAX_PIXELS)) is None  # Pillow's encoder mixes all five


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(PAGE_FRAMES), st.lists(st.integers(0, 10**6), min_size=1, max_size=8))
def test_bit_flips_give_pixels_or_a_refusal(frame: bytes, positions: list[int]) -> None:
    data = bytearray(frame)
    for position in positions:
        data[position % len(data)] ^= 1 << position % 8
    try:
        pixels = png.decode(png.parse(bytes(data), MAX_PIXELS))
    except png.PngRefused as refused:
        assert refused.code in ("bad_image", "too_large", "unsupported_format")
        return
    assert pixels is None or pixels.dtype == np.uint8


def test_a_tall_narrow_image_is_inflated_in_few_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """A step every few rows would make this 2 KiB PNG cost hundreds of milliseconds."""
    steps, inflater = 0, png.zlib_ng.decompressobj

    class CountingSteps:
        def __init__(self) -> None:
            self._inflater = inflater()

        def decompress(self, data: bytes, max_length: int) -> bytes:
            nonlocal steps
            steps += 1
            return self._inflater.decompress(data, max_length)

        @property
        def unconsumed_tail(self) -> bytes:
            return self._inflater.unconsumed_tail

    monkeypatch.setattr(png.zlib_ng, "decompressobj", CountingSteps)
    rows = MAX_PIXELS
    pixels = png.decode(png.parse(filtered_png(np.zeros((rows, 1, 1), np.uint8), [0] * rows), MAX_PIXELS))
    assert pixels is not None and pixels.shape == (rows, 1) and not pixels.any()
    assert steps <= 2 * rows // png.STEP_BYTES + 2  # each row is its filter byte and one pixel


def test_the_preview_encoder_writes_what_pillow_reads() -> None:
    preview = np.random.default_rng(1).integers(0, 256, (28, 28), np.uint8)
    np.testing.assert_array_equal(pillow(png.encode_grey(preview)), preview)
