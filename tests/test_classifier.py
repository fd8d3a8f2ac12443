"""The batch handler the queue's worker runs (server/classifier.py), with a fake model: what
reaches the model, and what each snapshot of a batch is answered."""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest

from server import greyframe
from server.batching import Handler
from server.classifier import WARM_UP_SNAPSHOTS, Classification, batch_classifier
from server.errors import ClientError
from server.metrics import Metrics
from server.preprocess import BadImage, Prepared
from tests.support import REPO, holdout, png_bytes


class FakeModel:
    """Says 3 with 0.9 for every image; records the batches and threads it was given."""

    def __init__(self) -> None:
        self.batches: list[np.ndarray] = []
        self.threads: set[str] = set()

    def __call__(self, images: np.ndarray) -> np.ndarray:
        self.batches.append(images)
        self.threads.add(threading.current_thread().name)
        return np.tile(np.array([0.01, 0.01, 0.01, 0.9] + [0.01] * 6, np.float32), (len(images), 1))


@pytest.fixture()
def model() -> FakeModel:
    return FakeModel()


def classify_batch(handler: Handler[bytes, Prepared, Classification], snapshots: list[bytes]) -> list[object]:
    """What the queue's worker does with one batch: prepare each snapshot, then run the prepared."""
    outcomes: list[object] = []
    prepared: list[tuple[int, Prepared]] = []
    for index, snapshot in enumerate(snapshots):
        try:
            prepared.append((index, handler.prepare(snapshot)))
        except ClientError as refusal:
            outcomes.append(refusal)
        else:
            outcomes.append(None)
    for (index, _), result in zip(prepared, handler.run([item for _, item in prepared])):
        outcomes[index] = result
    return outcomes


def test_loading_warms_the_model_up_at_every_batch_size(model) -> None:
    batch_classifier(lambda: model, Metrics(), max_batch_size=5)()
    assert [len(batch) for batch in model.batches] == [1, 2, 3, 4, 5]


def test_a_batch_reaches_the_model_once_with_only_the_snapshots_that_hold_a_digit(model) -> None:
    handler = batch_classifier(lambda: model, Metrics(), max_batch_size=4)()
    model.batches.clear()
    digits = [png_bytes(digit) for digit in holdout()[0][:2]]
    blank = greyframe.encode(np.zeros((128, 128), np.uint8))
    outcomes = classify_batch(handler, [digits[0], blank, b"not an image", digits[1]])
    assert [len(batch) for batch in model.batches] == [2]
    assert model.batches[0].shape == (2, 28, 28, 1) and model.batches[0].dtype == np.float32
    first, empty, refused, last = outcomes
    assert isinstance(first, Classification) and isinstance(last, Classification)
    assert (first.digit, last.digit, first.confidence) == (3, 3, pytest.approx(0.9))
    assert first.preview_png is not None and first.preview_png.startswith(b"\x89PNG")
    assert isinstance(empty, Classification) and empty.empty and empty.preview_png is None
    assert isinstance(refused, BadImage)


def test_a_batch_of_only_blank_snapshots_never_reaches_the_model(model) -> None:
    handler = batch_classifier(lambda: model, Metrics(), max_batch_size=2)()
    model.batches.clear()
    blank = greyframe.encode(np.zeros((64, 64), np.uint8))
    assert all(isinstance(o, Classification) and o.empty for o in classify_batch(handler, [blank, blank]))
    assert model.batches == []


def test_the_warm_up_snapshots_hold_a_digit_shape(model) -> None:
    handler = batch_classifier(lambda: model, Metrics(), max_batch_size=1)()
    for outcome in classify_batch(handler, list(WARM_UP_SNAPSHOTS)):
        assert isinstance(outcome, Classification) and not outcome.empty


WARMED_UP_THEN_PAGE_FRAMES = """
from bench.record_page import FIXTURE, PNG_FIXTURE, Recording
from server import recipe
from server.classifier import WARM_UP_SNAPSHOTS
from server.preprocess import preprocess_bytes

def variants():
    return {name: len(getattr(recipe, name).signatures) for name in dir(recipe)
            if hasattr(getattr(recipe, name), "signatures")}

for snapshot in WARM_UP_SNAPSHOTS:
    preprocess_bytes(snapshot)
warmed_up = variants()
for fixture in (FIXTURE, PNG_FIXTURE):
    for frame in Recording.load(fixture).strokes[0]:
        preprocess_bytes(frame)
print(sorted(name for name, count in variants().items() if count != warmed_up[name]))
"""


def test_the_warm_up_readies_the_recipe_for_every_kind_of_frame_the_page_sends() -> None:
    """A variant the warm-up left out is compiled on the first such frame, on the model's
    thread (~0.4 s), after /healthz said ready. A fresh process, so no other test warmed it."""
    result = subprocess.run(
        [sys.executable, "-c", WARMED_UP_THEN_PAGE_FRAMES], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_recorded_inputs_are_the_previews_with_their_digits(model) -> None:
    recorded: list[tuple[np.ndarray, int]] = []
    handler = batch_classifier(
        lambda: model,
        Metrics(),
        max_batch_size=1,
        record_input=lambda preview, digit: recorded.append((preview, digit)),
    )()
    classify_batch(handler, [png_bytes(holdout()[0][0])])
    assert len(recorded) == 1 and recorded[0][0].shape == (28, 28) and recorded[0][1] == 3
