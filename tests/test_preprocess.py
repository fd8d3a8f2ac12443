"""Preprocessing: any snapshot becomes an MNIST-like 28×28 image, "empty", or BadImage.

The accuracy tests draw hold-out digits the way people draw on a canvas (big, small,
off-centre, thin and thick pens, any colours), preprocess them, and check that the
model reads them about as well as the clean 28×28 digits.
"""

from __future__ import annotations

import numpy as np
import pytest

from server.preprocess import Prepared, preprocess_array, preprocess_bytes
from tests import support
from tests.canvases import coloured, drawn, ink_box, png

SAMPLE_EVERY = 4  # 250 of the 1000 hold-out digits, every class, keeps the module fast


@pytest.fixture(scope="module")
def holdout() -> tuple[np.ndarray, np.ndarray]:
    return support.holdout()


@pytest.fixture(scope="module")
def sample(holdout) -> tuple[np.ndarray, np.ndarray]:
    digits, labels = holdout
    return digits[::SAMPLE_EVERY], labels[::SAMPLE_EVERY]


@pytest.fixture(scope="module")
def predict():
    from server.model import BatchPredictor, load_model

    return BatchPredictor(load_model())


@pytest.fixture(scope="module")
def clean_accuracy(sample, predict) -> float:
    digits, labels = sample
    return accuracy(predict, digits.astype(np.float32) / 255, labels)


def accuracy(predict, images: np.ndarray, labels: np.ndarray) -> float:
    return float((predict(images[..., None]).argmax(axis=1) == labels).mean() * 100)


def model_inputs(prepared: list[Prepared]) -> np.ndarray:
    # An empty answer never reaches the model: it scores as a blank image would.
    blank = np.zeros((28, 28), np.float32)
    return np.stack([blank if p.image is None else p.image for p in prepared])


def image_of(prepared: Prepared) -> np.ndarray:
    """The model's input, for a snapshot the test drew ink on."""
    assert prepared.image is not None, "the drawing was read as blank"
    return prepared.image


def preview_of(prepared: Prepared) -> np.ndarray:
    assert prepared.preview is not None, "the drawing was read as blank"
    return prepared.preview


CORNERS = [(0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0)]
_usual: dict[int, np.ndarray] = {}


def usual(digit: np.ndarray) -> np.ndarray:
    """drawn(digit) with the defaults, drawn once for the five colour families."""
    key = hash(digit.tobytes())
    if key not in _usual:
        _usual[key] = drawn(digit)
    return _usual[key]


FAMILIES = {
    "small, 20% of the canvas": lambda i, d: coloured(drawn(d, size=0.2, at=(0.3, 0.7)), "white on black"),
    "large, 90% of the canvas": lambda i, d: coloured(drawn(d, size=0.9), "black on white"),
    "in the corners": lambda i, d: coloured(drawn(d, size=0.35, at=CORNERS[i % 4]), "black on white"),
    "thin pen": lambda i, d: coloured(drawn(d, size=0.7, pen=0.6), "black on white"),
    "thick pen": lambda i, d: coloured(drawn(d, size=0.7, pen=1.5), "black on white"),
    "white on black": lambda i, d: coloured(usual(d), "white on black"),
    "black on white": lambda i, d: coloured(usual(d), "black on white"),
    "blue on cream": lambda i, d: coloured(usual(d), "blue on cream"),
    "RGBA, opaque": lambda i, d: coloured(usual(d), "RGBA opaque"),
    "RGBA, ink in the alpha": lambda i, d: coloured(usual(d), "RGBA transparent"),
    "very wide canvas": lambda i, d: coloured(drawn(d, canvas=(120, 600), size=0.8, at=(0.5, 0.2)), "black on white"),
    "very tall canvas": lambda i, d: coloured(drawn(d, canvas=(600, 120), size=0.8, at=(0.8, 0.5)), "black on white"),
    "the page's 128-px snapshot": lambda i, d: coloured(drawn(d, canvas=(128, 128), size=0.85), "RGBA transparent"),
}


@pytest.mark.parametrize("family", FAMILIES)
def test_drawn_digits_are_read_as_well_as_clean_ones(family, sample, predict, clean_accuracy) -> None:
    digits, labels = sample
    prepared = [preprocess_bytes(png(FAMILIES[family](i, digit))) for i, digit in enumerate(digits)]
    drawn_accuracy = accuracy(predict, model_inputs(prepared), labels)
    print(f"{family}: {drawn_accuracy:.1f}% (clean {clean_accuracy:.1f}%)")
    # Two points (five of the 250 digits): the worst family measures 1.2 below clean (thick pen,
    # 98.8%), and one digit more or less must not fail CI.
    assert drawn_accuracy >= clean_accuracy - 2.0


def test_ones_are_read_as_well_as_clean_ones(holdout, predict) -> None:
    digits, labels = holdout
    ones = digits[labels == 1]
    clean = accuracy(predict, ones.astype(np.float32) / 255, labels[labels == 1])
    prepared = [preprocess_array(coloured(drawn(one, size=0.5), "black on white")) for one in ones]
    assert accuracy(predict, model_inputs(prepared), labels[labels == 1]) >= clean - 1.0


# --- Geometry -----------------------------------------------------------------------


def box_size(image: np.ndarray) -> tuple[int, int]:
    return ink_box(image > 0.2 * image.max()).shape


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    rows, cols = np.indices(image.shape)
    return (rows * image).sum() / image.sum(), (cols * image).sum() / image.sum()


def test_an_mnist_digit_is_left_essentially_unchanged(holdout) -> None:
    digits, _ = holdout
    previews = np.stack([preview_of(preprocess_bytes(png(digit))) for digit in digits]).astype(int)
    unchanged = (np.abs(previews - digits).max(axis=(1, 2)) <= 1).mean()
    # MNIST digits are already 20-px boxed and centred; only the few with strokes
    # outside MNIST's usual widths (about 5%) are repainted.
    assert unchanged >= 0.94


def test_a_drawing_fills_a_20_px_box_with_its_centre_of_mass_in_the_middle(sample) -> None:
    for digit in sample[0][:40]:
        image = image_of(preprocess_array(coloured(drawn(digit, size=0.3, at=(0.9, 0.1)), "black on white")))
        assert max(box_size(image)) == 20
        assert np.allclose(centre_of_mass(image), (14, 14), atol=0.5)


def test_a_one_keeps_its_aspect_ratio(holdout) -> None:
    digits, labels = holdout
    one = digits[labels == 1][0]
    image = image_of(preprocess_array(coloured(drawn(one, size=0.5), "black on white")))
    height, width = box_size(image)
    assert height == 20
    assert abs(width - ink_box(one > 50).shape[1]) <= 2


def test_a_stretched_digit_keeps_its_aspect_ratio(sample) -> None:
    digit = sample[0][0]
    wide = image_of(preprocess_array(drawn(digit, canvas=(200, 600), size=0.9, stretch=(1.0, 3.0))))
    tall = image_of(preprocess_array(drawn(digit, canvas=(600, 200), size=0.9, stretch=(3.0, 1.0))))
    assert box_size(wide)[1] == 20 and box_size(wide)[0] <= 9
    assert box_size(tall)[0] == 20 and box_size(tall)[1] <= 9


def test_every_colour_scheme_gives_the_same_image(sample) -> None:
    coverage = drawn(sample[0][123])
    schemes = ["white on black", "black on white", "blue on cream", "RGBA opaque", "RGBA transparent"]
    previews = [preview_of(preprocess_bytes(png(coloured(coverage, s)))).astype(int) for s in schemes]
    for preview in previews[1:]:
        assert np.abs(preview - previews[0]).max() <= 2


def test_thin_and_thick_pens_are_brought_to_mnist_widths(sample) -> None:
    def mass(digit: np.ndarray, pen: float) -> float:
        prepared = preprocess_array(drawn(digit, size=0.7, pen=pen))
        return np.nan if prepared.image is None else float(prepared.image.sum())

    digits = sample[0][::10]
    normal = np.array([mass(d, 1.0) for d in digits])
    for pen in (0.4, 1.8):
        # Unrepainted, the thin pen would leave about half the ink and the thick one 1.6×.
        ratio = np.nanmedian([mass(d, pen) for d in digits] / normal)
        assert 0.75 < ratio < 1.3, pen
