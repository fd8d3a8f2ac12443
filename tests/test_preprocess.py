"""Preprocessing: any snapshot becomes an MNIST-like 28×28 image, "empty", or BadImage.

The accuracy tests draw hold-out digits the way people draw on a canvas (big, small,
off-centre, thin and thick pens, any colours), preprocess them, and check that the
model reads them about as well as the clean 28×28 digits.
"""

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

SAMPLE_EVERY = 4  # 250 of the 1000 hold-out digits, every class, keeps the module fast
SUPERSAMPLE = 2  # canvases are drawn at 2× and averaged down: anti-aliased edges


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


def png(pixels: np.ndarray, format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    # Light compression: the tests encode thousands of canvases; decoding is the same.
    Image.fromarray(pixels).save(buffer, format, **({"compress_level": 1} if format == "PNG" else {}))
    return buffer.getvalue()


# --- Drawing hold-out digits on canvases -------------------------------------------


def ink_box(digit: np.ndarray) -> np.ndarray:
    rows, cols = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
    return digit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def widened(shape: np.ndarray, steps: int) -> np.ndarray:
    """Binary dilation by a (2·steps+1)² square: a square pen, as MaxFilter would be."""
    for _ in range(steps):
        padded = np.pad(shape, 1)
        column = padded[:-2] | padded[1:-1] | padded[2:]
        shape = column[:, :-2] | column[:, 1:-1] | column[:, 2:]
    return shape


def pen_width(shape: np.ndarray) -> float:
    """Twice the area over the outline, in canvas pixels."""
    padded = np.pad(shape, 1).astype(np.int8)
    outline = np.abs(np.diff(padded, axis=0)).sum() + np.abs(np.diff(padded, axis=1)).sum()
    return 2 * shape.sum() / (outline * np.pi / 4)


def drawn(
    digit: np.ndarray,
    canvas: tuple[int, int] = (280, 280),
    size: float = 0.6,
    at: tuple[float, float] = (0.5, 0.5),
    pen: float = 1.0,
    stretch: tuple[float, float] = (1.0, 1.0),
) -> np.ndarray:
    """Ink coverage (0–1) of `digit` redrawn on a canvas.

    The digit's longest side is `size` × the canvas's shorter side, its box placed at
    the fraction `at` of the free room, its strokes `pen` × their own width.
    """
    box = ink_box(digit)
    height, width = box.shape[0] * stretch[0], box.shape[1] * stretch[1]
    scale = size * min(canvas) / max(height, width) * SUPERSAMPLE
    target = (max(1, round(width * scale)), max(1, round(height * scale)))
    shape = np.asarray(Image.fromarray(box).resize(target, Image.Resampling.BICUBIC)) > 127
    steps = round(abs(pen - 1) * pen_width(shape) / 2)
    margin = steps + 1
    shape = np.pad(shape, margin)
    shape = widened(shape, steps) if pen > 1 else ~widened(~shape, steps)
    full = np.zeros((canvas[0] * SUPERSAMPLE, canvas[1] * SUPERSAMPLE), bool)
    top = round(at[0] * (full.shape[0] - target[1])) - margin
    left = round(at[1] * (full.shape[1] - target[0])) - margin
    inside = shape[max(0, -top) : full.shape[0] - top, max(0, -left) : full.shape[1] - left]
    full[max(0, top) : max(0, top) + inside.shape[0], max(0, left) : max(0, left) + inside.shape[1]] = inside
    h, w = canvas
    return full.reshape(h, SUPERSAMPLE, w, SUPERSAMPLE).mean(axis=(1, 3), dtype=np.float32)


def coloured(coverage: np.ndarray, scheme: str) -> np.ndarray:
    """The canvas as pixels: ink and background colours mixed by coverage."""
    inks = {
        "white on black": ((255,), (0,)),
        "black on white": ((0,), (255,)),
        "blue on cream": ((30, 60, 200), (250, 245, 220)),
        "RGBA opaque": ((0, 0, 0, 255), (255, 255, 255, 255)),
        # The page's canvas: black everywhere, the alpha carries the ink.
        "RGBA transparent": ((0, 0, 0, 255), (0, 0, 0, 0)),
    }
    ink, background = (np.array(c, np.float32) for c in inks[scheme])
    mixed = background + (ink - background) * coverage[..., None]
    return np.round(mixed).astype(np.uint8).squeeze(axis=2) if len(ink) == 1 else np.round(mixed).astype(np.uint8)


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
    assert str(error.value) == "Snapshots must be PNG images."


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
    preview = preview_of(preprocess_array(sample[0][0]))
    decoded = Image.open(io.BytesIO(preview_png(preview)))
    assert decoded.size == (28, 28)
    np.testing.assert_array_equal(np.asarray(decoded), preview)
