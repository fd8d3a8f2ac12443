"""Snapshot bytes in, a classification out: preprocessing on a thread pool, then the queue."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from server.batching import BatchingQueue
from server.metrics import Metrics
from server.preprocess import MAX_PIXELS, Prepared, preprocess_bytes, preview_png

NO_PROBABILITIES = (0.0,) * 10


@dataclass(frozen=True)
class Classification:
    empty: bool
    probabilities: tuple[float, ...]
    preview_png: bytes | None = None
    queue_ms: float = 0.0
    inference_ms: float = 0.0

    @property
    def digit(self) -> int | None:
        return None if self.empty else int(np.argmax(self.probabilities))

    @property
    def confidence(self) -> float:
        return 0.0 if self.empty else max(self.probabilities)


class Classifier:
    """Decoding and preprocessing run on `workers` threads (Pillow and NumPy release the
    GIL), never on the event loop and never serialised behind the model."""

    def __init__(
        self,
        queue: BatchingQueue,
        metrics: Metrics,
        *,
        max_pixels: int = MAX_PIXELS,
        workers: int | None = None,
        record_input: Callable[[np.ndarray, int], object] | None = None,
    ) -> None:
        self.queue = queue
        self._metrics = metrics
        self._max_pixels = max_pixels
        self._record_input = record_input
        self._pool = ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2, thread_name_prefix="preprocess")

    async def classify(self, data: bytes) -> Classification:
        """Raises BadImage, Overloaded, BatchFailed or QueueClosed."""
        loop = asyncio.get_running_loop()
        prepared, preview = await loop.run_in_executor(self._pool, self._prepare, data)
        if prepared.image is None:
            self._metrics.empty_snapshots.inc()
            return Classification(empty=True, probabilities=NO_PROBABILITIES)
        result = await self.queue.submit(prepared.image)
        probabilities = tuple(round(float(p), 6) for p in result.probabilities)
        if self._record_input is not None and prepared.preview is not None:
            loop.run_in_executor(self._pool, self._record_input, prepared.preview, int(np.argmax(probabilities)))
        return Classification(False, probabilities, preview, result.queue_ms, result.inference_ms)

    def _prepare(self, data: bytes) -> tuple[Prepared, bytes | None]:
        prepared = preprocess_bytes(data, self._max_pixels)
        return prepared, None if prepared.preview is None else preview_png(prepared.preview)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
