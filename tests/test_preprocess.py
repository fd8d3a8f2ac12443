"""Preprocessing: any snapshot becomes an MNIST-like 28×28 image, "empty", or BadImage."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from server.preprocess import BadImage, preprocess_array, preprocess_bytes, preview_png

HOLDOUT = Path(__file__).parent / "data" / "holdout.npz"


@pytest.fixture(scope="module")
def holdout() -> tuple[np.ndarray, np.ndarray]:
    with np.load(HOLDOUT) as data:
        return data["x"], data["y"]


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def test_an_mnist_digit_is_left_essentially_unchanged(holdout) -> None:
    digits, _ = holdout
    prepared = [preprocess_bytes(png(digit)) for digit in digits]
    previews = np.stack([p.preview for p in prepared]).astype(int)
    # MNIST digits are already 20-px boxed and centred; only the contrast may be
    # stretched from 254 to 255.
    assert np.abs(previews - digits).max() <= 1


def test_the_image_is_the_preview_as_floats(holdout) -> None:
    prepared = preprocess_array(holdout[0][0])
    assert prepared.image.shape == (28, 28) and prepared.image.dtype == np.float32
    np.testing.assert_array_equal(prepared.image, prepared.preview / np.float32(255))


@pytest.mark.parametrize(
    "pixels",
    [
        np.zeros((280, 280), np.uint8),
        np.full((280, 280), 255, np.uint8),
        np.zeros((1, 1), np.uint8),
    ],
    ids=["blank", "all-ink", "1x1"],
)
def test_nothing_to_classify_is_empty(pixels: np.ndarray) -> None:
    prepared = preprocess_bytes(png(pixels))
    assert prepared.empty and prepared.image is None and prepared.preview is None


def test_a_dot_is_empty() -> None:
    canvas = np.zeros((280, 280), np.uint8)
    canvas[100:108, 150:158] = 255
    assert preprocess_bytes(png(canvas)).empty


def test_bytes_that_are_not_an_image_are_a_bad_image() -> None:
    with pytest.raises(BadImage) as error:
        preprocess_bytes(b"not an image")
    assert error.value.code == "bad_image"
    assert str(error.value) == "The snapshot is not a readable image."


def test_too_many_pixels_are_refused_from_the_header() -> None:
    with pytest.raises(BadImage) as error:
        preprocess_bytes(png(np.zeros((100, 100), np.uint8)), max_pixels=9_999)
    assert error.value.code == "too_large"


def test_the_preview_png_is_the_preview(holdout) -> None:
    preview = preprocess_array(holdout[0][0]).preview
    decoded = Image.open(io.BytesIO(preview_png(preview)))
    np.testing.assert_array_equal(np.asarray(decoded), preview)
