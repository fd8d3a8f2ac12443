"""Preprocessing of what is not a drawing: nothing to classify, unusable bytes, and any
input at all (properties), each an image, "empty" or BadImage, never anything else."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from server.preprocess import BadImage, Prepared, preprocess_array, preprocess_bytes, preview_png
from tests import support
from tests.canvases import coloured, drawn, png


@pytest.fixture(scope="module")
def sample() -> tuple[np.ndarray, np.ndarray]:
    digits, labels = support.holdout()
    return digits[::4], labels[::4]


# --- Empty and unusable input ---------------------------------------------------------


def faint_noise() -> np.ndarray:
    return np.random.default_rng(4).integers(120, 136, (280, 280), dtype=np.uint8)


def a_dot() -> np.ndarray:
    canvas = np.zeros((280, 280), np.uint8)
    rows, cols = np.indices(canvas.shape)
    canvas[(rows - 140) ** 2 + (cols - 90) ** 2 <= 36] = 255
    return canvas


@pytest.mark.parametrize(
    "pixels",
    [
        np.zeros((280, 280), np.uint8),
        np.full((280, 280, 3), 255, np.uint8),
        np.zeros((1, 1), np.uint8),
        a_dot(),
        faint_noise(),
    ],
    ids=["blank", "all ink", "1x1", "a dot", "faint noise"],
)
def test_nothing_to_classify_is_empty(pixels: np.ndarray) -> None:
    prepared = preprocess_bytes(png(pixels))
    assert prepared.empty and prepared.image is None and prepared.preview is None


def test_a_transparent_canvas_is_empty() -> None:
    assert preprocess_bytes(png(np.zeros((128, 128, 4), np.uint8))).empty


def with_declared_size(data: bytes, width: int, height: int) -> bytes:
    """A PNG whose header claims another size (the CRC fixed, so only the size is wrong)."""
    header = b"IHDR" + struct.pack(">II", width, height) + data[24:29]
    return data[:12] + header + struct.pack(">I", zlib.crc32(header)) + data[33:]


@pytest.mark.parametrize("width, height", [(100_000, 100_000), (20_000, 1_000), (2**31 - 1, 2**31 - 1)])
def test_huge_declared_sizes_are_too_large_before_decoding(width: int, height: int) -> None:
    bomb = with_declared_size(png(np.zeros((8, 8), np.uint8)), width, height)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's own bomb warning must not escape either
        with pytest.raises(BadImage) as error:
            preprocess_bytes(bomb)
    assert error.value.code == "too_large"
    assert str(error.value) == "The snapshot has too many pixels."


def test_the_pixel_limit_is_a_parameter() -> None:
    data = png(np.zeros((100, 100), np.uint8))
    assert preprocess_bytes(data, max_pixels=10_000).empty
    with pytest.raises(BadImage, match="too many pixels"):
        preprocess_bytes(data, max_pixels=9_999)


def test_a_long_thin_strip_is_handled() -> None:
    strip = np.zeros((3, 100_000), np.uint8)
    strip[1, 5_000:60_000] = 255
    assert_valid(preprocess_bytes(png(strip)))


@pytest.mark.parametrize(
    "data",
    [b"", b"not an image", png(np.zeros((8, 8), np.uint8))[:40], b"\x89PNG\r\n\x1a\n" + b"\0" * 100],
    ids=["nothing", "text", "truncated PNG", "PNG signature only"],
)
def test_unreadable_bytes_are_a_bad_image(data: bytes) -> None:
    with pytest.raises(BadImage) as error:
        preprocess_bytes(data)
    assert error.value.code == "bad_image"
    assert str(error.value) == "The snapshot is not a readable image."


@pytest.mark.parametrize("format", ["JPEG", "WEBP", "GIF", "BMP", "TIFF"])
def test_formats_other_than_png_are_unsupported(sample, format: str) -> None:
    with pytest.raises(BadImage) as error:
        preprocess_bytes(png(coloured(drawn(sample[0][0]), "black on white"), format))
    assert error.value.code == "unsupported_format"
    assert str(error.value) == "Snapshots must be grey frames or PNG images."


@pytest.mark.parametrize(
    "pixels",
    [
        np.zeros((5, 5, 2), np.uint8),
        np.zeros((0, 5), np.uint8),
        np.zeros((5, 5, 3), np.float32),
        np.full((5, 5), np.nan),
    ],
    ids=["two channels", "no pixels", "float colour", "NaN"],
)
def test_unusable_arrays_are_a_bad_image(pixels: np.ndarray) -> None:
    with pytest.raises(BadImage):
        preprocess_array(pixels)


# --- Properties -----------------------------------------------------------------------


def assert_valid(prepared: Prepared) -> None:
    if prepared.empty:
        assert prepared.image is None and prepared.preview is None
        return
    assert prepared.image is not None and prepared.preview is not None
    assert prepared.image.shape == (28, 28) and prepared.image.dtype == np.float32
    assert prepared.preview.shape == (28, 28) and prepared.preview.dtype == np.uint8
    np.testing.assert_array_equal(prepared.image, prepared.preview / np.float32(255))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2_000))
def test_random_bytes_give_an_image_empty_or_bad_image(data: bytes) -> None:
    try:
        assert_valid(preprocess_bytes(data))
    except BadImage as error:
        assert error.code in ("bad_image", "too_large", "unsupported_format")


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=8))
def test_corrupted_snapshots_give_an_image_empty_or_bad_image(changes) -> None:
    data = bytearray(png(coloured(drawn(support.holdout()[0][0], canvas=(64, 64)), "blue on cream")))
    for position, value in changes:
        data[position % len(data)] = value
    try:
        assert_valid(preprocess_bytes(bytes(data)))
    except BadImage as error:
        assert error.code in ("bad_image", "too_large")


images = st.builds(
    lambda mode, height, width, seed, density: (mode, np.random.default_rng(seed), height, width, density),
    st.sampled_from(["L", "RGB", "RGBA", "LA", "P", "1"]),
    st.integers(1, 64),
    st.integers(1, 64),
    st.integers(0, 2**32 - 1),
    st.floats(0, 1),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(images, st.booleans())
def test_random_images_give_an_image_or_empty(spec, optimize: bool) -> None:
    mode, rng, height, width, density = spec
    pixels = (rng.random((height, width, 4)) < density) * rng.integers(0, 256, (height, width, 4))
    image = Image.fromarray(pixels.astype(np.uint8), "RGBA").convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=optimize)
    assert_valid(preprocess_bytes(buffer.getvalue()))


@settings(max_examples=150, deadline=None)
# Up to 400 px: beyond 160 px of ink the drawing is averaged down first.
@given(
    st.integers(1, 400),
    st.integers(1, 400),
    st.integers(0, 2**32 - 1),
    st.sampled_from(["grey", "float", "RGB", "RGBA"]),
)
def test_random_arrays_give_an_image_or_empty(height: int, width: int, seed: int, kind: str) -> None:
    rng = np.random.default_rng(seed)
    sparse = rng.random((height, width, 1)) < rng.random()  # from blank to all ink
    channels = {"grey": 1, "float": 1, "RGB": 3, "RGBA": 4}[kind]
    pixels: np.ndarray = (sparse * rng.integers(0, 256, (height, width, channels))).astype(np.uint8)
    if kind == "float":
        pixels = pixels / np.float32(255)
    assert_valid(preprocess_array(pixels.squeeze(axis=2) if channels == 1 else pixels))


def test_concurrent_calls_give_the_same_answers(sample) -> None:
    snapshots = [png(coloured(drawn(digit, size=0.5), "black on white")) for digit in sample[0][:32]]
    alone = [preprocess_bytes(s).preview for s in snapshots]
    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(preprocess_bytes, snapshots * 4))
    for i, prepared in enumerate(together):
        np.testing.assert_array_equal(prepared.preview, alone[i % len(alone)])


def test_the_preview_png_is_the_preview(sample) -> None:
    preview = preprocess_array(sample[0][0]).preview
    assert preview is not None
    decoded = Image.open(io.BytesIO(preview_png(preview)))
    assert decoded.size == (28, 28)
    np.testing.assert_array_equal(np.asarray(decoded), preview)
