"""Pen-drawn digits: the variants, the hand, the page's snapshot, and the committed drawn sets."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from server import drawnset, greyframe, handwriting, pagesnapshot
from server.handwriting import Split
from server.preprocess import MAX_PIXELS, preprocess_bytes
from tests.data import make_drawn_digits

# The ways of writing each digit that a drawn-digit set must cover, at least.
REQUIRED_VARIANTS = {
    1: {"plain", "flag", "flag and base"},
    2: {"no loop", "loop"},
    3: {"round top", "flat top"},
    4: {"open top", "closed top"},
    7: {"plain", "crossbar"},
    9: {"straight tail", "curved tail"},
}


def test_every_digit_has_trained_and_held_out_variants() -> None:
    for digit in range(10):
        names = {v.name for v in handwriting.VARIANTS if v.digit == digit}
        assert REQUIRED_VARIANTS.get(digit, set()) <= names
        assert len(names) >= 2
        assert any(v.digit == digit for v in handwriting.variants(Split.TRAIN))
        assert any(v.digit == digit for v in handwriting.variants(Split.HELD_OUT))


def test_training_split_never_includes_held_out_variants() -> None:
    train, held_out = handwriting.variants(Split.TRAIN), handwriting.variants(Split.HELD_OUT)
    assert not set(train) & set(held_out)
    assert set(train) | set(held_out) == set(handwriting.VARIANTS)


def test_writing_is_reproducible_and_stays_on_the_pad() -> None:
    variant = handwriting.VARIANTS[0]
    first = handwriting.write(variant, np.random.default_rng(3))
    again = handwriting.write(variant, np.random.default_rng(3))
    other = handwriting.write(variant, np.random.default_rng(4))
    np.testing.assert_array_equal(np.vstack(first[0]), np.vstack(again[0]))
    assert not np.array_equal(np.vstack(first[0])[:5], np.vstack(other[0])[:5])
    points = np.vstack(first[0])
    assert points.min() >= 0 and points.max() <= 1
    assert handwriting.PEN_WIDTH_RANGE[0] <= first[1] <= handwriting.PEN_WIDTH_RANGE[1]


def test_snapshot_is_centred_like_the_page_and_as_wide_as_the_pen() -> None:
    # A horizontal line 0.5 of the pad long: crop side 0.5 + 0.06 + 2 × 0.12 × 0.5 = 0.68.
    line = [np.array([[0.25, 0.5], [0.75, 0.5]])]
    snapshot = pagesnapshot.render_snapshot(line, pen_width=0.06)
    assert snapshot.shape == (128, 128) and snapshot.dtype == np.uint8
    column = snapshot[:, 64].astype(np.float64) / 255
    assert column.sum() == pytest.approx(0.06 / 0.68 * 128, rel=0.05)
    rows = np.flatnonzero(snapshot.max(axis=1) > 128)
    assert abs((rows[0] + rows[-1]) / 2 - 63.5) <= 1
    ink_cols = np.flatnonzero(snapshot.max(axis=0) > 128)
    assert ink_cols[0] == pytest.approx(128 * (0.12 * 0.5) / 0.68, abs=1.5)  # margin + round cap


def test_snapshot_png_is_an_opaque_rgba_png_the_server_reads() -> None:
    drawing, pen_width = handwriting.write(handwriting.VARIANTS[3], np.random.default_rng(0))
    png = pagesnapshot.snapshot_png(drawing, pen_width)
    with Image.open(io.BytesIO(png)) as image:
        assert image.mode == "RGBA" and image.size == (128, 128)
    assert not preprocess_bytes(png).empty


def test_synthesize_gives_labelled_preprocessed_digits_for_every_digit() -> None:
    images, labels = handwriting.synthesize(200, seed=1)
    assert images.shape == (200, 28, 28) and images.dtype == np.uint8
    assert set(labels) == set(range(10))
    assert (images.max(axis=(1, 2)) > 200).all()


def test_drawn_set_round_trips_through_its_file(tmp_path: Path) -> None:
    digits = drawnset.draw_set(2, seed=5)
    drawnset.save(tmp_path / "set.npz", digits)
    loaded = drawnset.load(tmp_path / "set.npz")
    assert [d.variant for d in loaded] == [d.variant for d in digits]
    for original, copy in zip(digits, loaded, strict=True):
        assert len(copy.strokes) == len(original.strokes)
        np.testing.assert_allclose(np.vstack(copy.strokes), np.vstack(original.strokes), atol=1 / 4096)
        assert copy.pen_width == pytest.approx(original.pen_width)


def test_committed_drawn_set_is_what_its_script_writes() -> None:
    committed = drawnset.load()
    fresh = drawnset.draw_set(make_drawn_digits.PER_VARIANT, make_drawn_digits.SEED)
    assert len(committed) == len(fresh) >= 2000
    assert [d.variant for d in committed] == [d.variant for d in fresh]
    for stored, drawn in zip(committed, fresh, strict=True):
        np.testing.assert_allclose(np.vstack(stored.strokes), np.vstack(drawn.strokes), atol=1 / 4096)


def test_committed_page_set_holds_the_page_s_snapshots_of_every_variant() -> None:
    frames, variants = drawnset.load_frames()
    assert set(variants) == set(handwriting.VARIANTS)
    for frame in frames:
        assert greyframe.decode(frame, MAX_PIXELS).shape == (128, 128)
