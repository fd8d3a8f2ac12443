"""Snapshot bytes in, a classification out, in batches on the batching queue's worker thread.

The worker decodes and prepares each snapshot as it takes it (server/preprocess.py: the
recipe holds no GIL), runs the model once on a batch's digits and writes their previews, so a
snapshot crosses from the event loop to a thread and back once, and the loop does no
numerical work at all.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from server import greyframe, png
from server.batching import BatchingQueue, Handler
from server.metrics import Metrics
from server.preprocess import MAX_PIXELS, Prepared, preprocess_bytes, preview_png

logger = logging.getLogger(__name__)

Predictor = Callable[[np.ndarray], np.ndarray]  # float32 (n, 28, 28, 1) → probabilities (n, 10)
RecordInput = Callable[[np.ndarray, int], object]  # (28×28 preview, digit): --save-inputs
NO_PROBABILITIES = (0.0,) * 10


@dataclass(frozen=True)
class Classification:
    probabilities: tuple[float, ...]  # ten, rounded to six places; all 0 when empty
    digit: int | None  # None when the snapshot holds no digit
    confidence: float
    preview_png: bytes | None = None
    queue_ms: float = 0.0
    inference_ms: float = 0.0

    @property
    def empty(self) -> bool:
        return self.digit is None

    @classmethod
    def of(
        cls, probabilities: tuple[float, ...], preview_png: bytes | None = None, inference_ms: float = 0.0
    ) -> Classification:
        """The answer for a digit: the likeliest one, first among equals."""
        digit = max(range(len(probabilities)), key=probabilities.__getitem__)
        return cls(probabilities, digit, probabilities[digit], preview_png, inference_ms=inference_ms)


EMPTY = Classification(NO_PROBABILITIES, None, 0.0)


class Classifier:
    def __init__(self, queue: BatchingQueue[bytes, Prepared, Classification]) -> None:
        self.queue = queue

    async def classify(self, data: bytes, sender: str) -> Classification:
        """Raises BadImage, Overloaded, BatchFailed, ModelTimeout or QueueClosed. `sender`, the
        peer's address, is whose share of the model's worker the snapshot is counted in."""
        batched = await self.queue.submit(data, sender)
        if batched.result.empty:
            return batched.result
        return dataclasses.replace(batched.result, queue_ms=batched.queue_ms)


def batch_classifier(
    load_model: Callable[[], Predictor],
    metrics: Metrics,
    *,
    max_batch_size: int,
    max_pixels: int = MAX_PIXELS,
    record_input: RecordInput | None = None,
) -> Callable[[], Handler[bytes, Prepared, Classification]]:
    """What the queue's worker loads: the model, warmed up at every batch size it will see,
    and the recipe compiled; each snapshot is decoded and prepared on its own, then a batch's
    digits go through the model together."""

    def load() -> Handler[bytes, Prepared, Classification]:
        logger.info("warming up the model and the preprocessing recipe (a first start compiles it: up to a minute)")
        predict = load_model()
        for size in range(1, max_batch_size + 1):
            predict(np.zeros((size, 28, 28, 1), np.float32))
        for snapshot in WARM_UP_SNAPSHOTS:  # compiles the recipe, or loads it from numba's cache
            preprocess_bytes(snapshot)

        def prepare(snapshot: bytes) -> Prepared:
            return preprocess_bytes(snapshot, max_pixels)

        def run(batch: list[Prepared]) -> list[Classification]:
            return _classify_prepared(predict, metrics, batch, record_input)

        return Handler(prepare, run)

    return load


def _classify_prepared(
    predict: Predictor, metrics: Metrics, batch: list[Prepared], record_input: RecordInput | None
) -> list[Classification]:
    """One model call for the snapshots that hold a digit; the others are EMPTY."""
    outcomes = [EMPTY] * len(batch)
    digits: list[int] = []  # the snapshots that hold one
    previews: list[np.ndarray] = []
    for index, prepared in enumerate(batch):
        if prepared.preview is not None:
            digits.append(index)
            previews.append(prepared.preview)
    metrics.empty_snapshots.inc(len(batch) - len(digits))
    if not digits:
        return outcomes
    started = time.perf_counter()
    images = np.stack(previews)[..., np.newaxis].astype(np.float32) / np.float32(255)
    probabilities = np.asarray(predict(images), np.float32)
    inference_ms = (time.perf_counter() - started) * 1000
    metrics.inference_time.observe(inference_ms / 1000)
    for index, preview, row in zip(digits, previews, np.round(probabilities, 6).tolist()):
        result = Classification.of(tuple(row), preview_png(preview), inference_ms)
        outcomes[index] = result
        if record_input is not None and result.digit is not None:
            record_input(preview, result.digit)
    return outcomes


def _warm_up_snapshots() -> tuple[bytes, ...]:
    """A ring, enough ink for the whole recipe to run, as each kind of frame the page sends: a
    grey frame and a PNG decode to different arrays, and each needs its own compiled variants."""
    rows, columns = np.indices((64, 64))
    radius = np.hypot(rows - 32, columns - 32)
    ring = np.where(np.abs(radius - 20) < 3, 255, 0).astype(np.uint8)
    return greyframe.encode(ring), png.encode_grey(ring)


WARM_UP_SNAPSHOTS = _warm_up_snapshots()
