"""The compiled resampling (server/resample.py) against Pillow's, which the recipe was tuned on."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from server import resample

# Float rounding apart, the two are the same arithmetic.
TOLERANCE = 1e-5


def pillow_resized(image: np.ndarray, size: int, box: resample.Box, lanczos: bool) -> np.ndarray:
    kind = Image.Resampling.LANCZOS if lanczos else Image.Resampling.BICUBIC
    return np.asarray(Image.fromarray(image).resize((size, size), kind, box=box, reducing_gap=2.0))


def ink(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Random strokes on background, with a background margin on every side."""
    image = np.zeros((height, width), np.float32)
    margin_y, margin_x = height // 5, width // 5
    inner = rng.random((height - 2 * margin_y, width - 2 * margin_x)).astype(np.float32)
    image[margin_y : height - margin_y, margin_x : width - margin_x] = np.where(inner > 0.6, inner, 0)
    return image


def everywhere(image: np.ndarray) -> tuple[int, int, int, int]:
    return 0, 0, image.shape[0], image.shape[1]


@pytest.mark.parametrize("lanczos", [True, False])
@pytest.mark.parametrize("seed", range(12))
def test_a_resize_is_pillows(seed: int, lanczos: bool) -> None:
    rng = np.random.default_rng(seed)
    side = int(rng.integers(12, 400))
    image = ink(rng, side, side)
    size = int(rng.choice([28, 160, int(rng.integers(8, 200))]))
    left, top = rng.uniform(0, 1, 2)
    span = float(rng.uniform(0.3, 1.0) * side)
    box = (float(left), float(top), float(left + span), float(top + span))
    ours = resample.resized(image, size, box, lanczos, everywhere(image))
    np.testing.assert_allclose(ours, pillow_resized(image, size, box, lanczos), atol=TOLERANCE)


@pytest.mark.parametrize("seed", range(8))
def test_outputs_fed_only_by_background_are_skipped_not_changed(seed: int) -> None:
    rng = np.random.default_rng(seed)
    image = ink(rng, 150, 150)
    rows, columns = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
    inked = (int(rows[0]), int(columns[0]), int(rows[-1]) + 1, int(columns[-1]) + 1)
    box = (0.3, 0.7, 140.3, 140.7)
    np.testing.assert_array_equal(
        resample.resized(image, 28, box, True, inked), resample.resized(image, 28, box, True, everywhere(image))
    )


@pytest.mark.parametrize("factor", [2, 3, 7])
def test_a_reduce_is_pillows_even_where_blocks_are_cut_short(factor: int) -> None:
    image = np.random.default_rng(factor).random((101, 94)).astype(np.float32)
    box = (3, 5, 94, 100)
    pillow = np.asarray(Image.fromarray(image).reduce(factor, box=box))
    np.testing.assert_allclose(resample.reduced(image, factor, box), pillow, atol=TOLERANCE)
