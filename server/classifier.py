"""Snapshot bytes in, a classification out, in batches on the batching queue's worker thread.

The worker decodes and prepares each snapshot of a batch (server/preprocess.py: the recipe
holds no GIL), runs the model once on the batch's digits and writes their previews, so a
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
from server.batching import BatchHandler, BatchingQueue
from server.errors import ClientError
from server.metrics import Metrics
from server.preprocess import MAX_PIXELS, preprocess_bytes, preview_png

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
    def __init__(self, queue: BatchingQueue[bytes, Classification]) -> None:
        self.queue = queue

    async def classify(self, data: bytes) -> Classification:
        """Raises BadImage, Overloaded, BatchFailed, ModelTimeout or QueueClosed."""
        batched = await self.queue.submit(data)
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
) -> Callable[[], BatchHandler[bytes, Classification]]:
    """What the queue's worker loads: the model, warmed up at every batch size it will see,
    and the recipe compiled, wrapped in the function that classifies a batch of snapshots."""

    def load() -> BatchHandler[bytes, Classification]:
        logger.info("warming up the model and the preprocessing recipe (a first start compiles it: up to a minute)")
        predict = load_model()
        for size in range(1, max_batch_size + 1):
            predict(np.zeros((size, 28, 28, 1), np.float32))
        for snapshot in WARM_UP_SNAPSHOTS:  # compiles the recipe, or loads it from numba's cache
            preprocess_bytes(snapshot)

        def classify_batch(snapshots: list[bytes]) -> list[Classification | ClientError]:
            return _classify_batch(predict, metrics, snapshots, max_pixels, record_input)

        return classify_batch

    return load


def _classify_batch(
    predict: Predictor,
    metrics: Metrics,
    snapshots: list[bytes],
    max_pixels: int,
    record_input: RecordInput | None,
) -> list[Classification | ClientError]:
    outcomes: list[Classification | ClientError] = [EMPTY] * len(snapshots)
    digits: list[int] = []  # the snapshots that hold one
    previews: list[np.ndarray] = []
    for index, snapshot in enumerate(snapshots):
        try:
            prepared = preprocess_bytes(snapshot, max_pixels)
        except ClientError as failure:
            outcomes[index] = failure
            continue
        except Exception:
            # one snapshot that breaks the recipe must not fail its batch
            logger.exception("preparing a snapshot failed")
            outcomes[index] = ClientError()
            continue
        if prepared.preview is None:
            metrics.empty_snapshots.inc()
        else:
            digits.append(index)
            previews.append(prepared.preview)
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
