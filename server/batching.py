"""One batching inference queue: submit one image, await its probabilities.

The queue owns a worker thread, and that thread owns the model: it loads it, warms it
up and runs every batch, so TensorFlow never runs on the event loop. The worker takes
up to `max_batch_size` items, waiting at most `max_wait_s` after the first, and resolves
each waiter on its own event loop. Batches go to the model as they are, unpadded: the traced
model has a free batch dimension, so any size runs without retracing, and padding to
power-of-two sizes measured 1.24× slower on a realistic mix of sizes (bench/model.py).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from server.errors import ClientError
from server.metrics import Metrics

logger = logging.getLogger(__name__)

IMAGE_SHAPE = (28, 28)
Predictor = Callable[[np.ndarray], np.ndarray]


class Overloaded(ClientError):
    """The queue holds `max_pending` items already; the caller should retry later."""

    code, message, http_status = "overloaded", "The server is busy; send the snapshot again in a moment.", 503


class BatchFailed(ClientError):
    """The model failed on the batch this item was in."""

    code, message, http_status = "internal", "The model could not classify this snapshot.", 500


class ModelTimeout(ClientError):
    """The item was not answered within the queue's deadline: the model is hung or far behind."""

    code, message, http_status = "model_timeout", "The model did not answer in time; send the snapshot again.", 503


class QueueClosed(ClientError):
    """The queue is shutting down and takes no new work."""

    code, message, http_status = "shutting_down", "The server is shutting down.", 503


@dataclass(frozen=True)
class BatchResult:
    probabilities: np.ndarray  # (10,) float32, sums to 1
    queue_ms: float
    inference_ms: float
    batch_size: int


@dataclass(eq=False)  # identity: deque.remove must not compare images (numpy == is elementwise)
class _Item:
    image: np.ndarray
    future: asyncio.Future[BatchResult]
    loop: asyncio.AbstractEventLoop
    submitted_at: float


class BatchingQueue:
    def __init__(
        self,
        load_predictor: Callable[[], Predictor],
        *,
        max_batch_size: int = 32,
        max_wait_s: float = 0.002,
        max_pending: int = 4096,
        deadline_s: float | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.max_pending = max_pending
        self.deadline_s = deadline_s
        self._load_predictor = load_predictor
        self._metrics = metrics or Metrics()
        self._items: deque[_Item] = deque()
        self._condition = threading.Condition()
        self._closed = False
        self._running_since: float | None = None  # when the running batch's oldest item was submitted
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="digitstream-inference", daemon=True)

    # -- public surface -------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    async def wait_ready(self) -> None:
        """Wait until the model is loaded and warmed up; raise if that failed."""
        await asyncio.to_thread(self._ready.wait)
        if self._startup_error is not None:
            raise RuntimeError("the model could not be loaded") from self._startup_error

    @property
    def healthy(self) -> bool:
        return self._ready.is_set() and self._startup_error is None and self._thread.is_alive()

    @property
    def depth(self) -> int:
        return len(self._items)

    def oldest_age_s(self) -> float:
        """How long the oldest item queued or being classified has waited; 0 when there is none."""
        with self._condition:
            submitted = [self._items[0].submitted_at] if self._items else []
        if (running_since := self._running_since) is not None:
            submitted.append(running_since)
        return time.perf_counter() - min(submitted) if submitted else 0.0

    @property
    def stalled(self) -> bool:
        """An item has waited longer than the deadline: its waiter has given up on the model."""
        return self.deadline_s is not None and self.oldest_age_s() > self.deadline_s

    async def submit(self, image: np.ndarray) -> BatchResult:
        """Classify one (28, 28) float32 image in the next batch; ModelTimeout past the deadline."""
        if image.shape != IMAGE_SHAPE:
            raise ValueError(f"expected an image of shape {IMAGE_SHAPE}, got {image.shape}")
        loop = asyncio.get_running_loop()
        item = _Item(image, loop.create_future(), loop, time.perf_counter())
        with self._condition:
            if self._closed:
                raise QueueClosed()
            if len(self._items) >= self.max_pending:
                raise Overloaded()
            self._items.append(item)
            self._metrics.queue_depth.set(len(self._items))
            self._condition.notify()
        try:
            async with asyncio.timeout(self.deadline_s):
                return await item.future
        except TimeoutError:
            self._discard(item)
            raise ModelTimeout() from None
        except asyncio.CancelledError:
            self._discard(item)
            raise

    def close(self, timeout: float = 10.0) -> None:
        """Take no new work, finish what is queued, then stop the worker."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    # -- the worker thread ----------------------------------------------------------

    def _run(self) -> None:
        try:
            predict = self._load_predictor()
            for size in sorted({1, self.max_batch_size}):
                predict(np.zeros((size, *IMAGE_SHAPE, 1), np.float32))
        except BaseException as error:  # reported by wait_ready and /healthz
            logger.exception("loading the model failed")
            self._startup_error = error
            self._ready.set()
            return
        self._ready.set()
        while (batch := self._take_batch()) is not None:
            self._run_batch(predict, batch)

    def _take_batch(self) -> list[_Item] | None:
        with self._condition:
            while not self._items:
                if self._closed:
                    return None
                self._condition.wait()
            batch = [self._items.popleft()]
            deadline = time.perf_counter() + self.max_wait_s
            while len(batch) < self.max_batch_size:
                if self._items:
                    batch.append(self._items.popleft())
                    continue
                remaining = deadline - time.perf_counter()
                if remaining <= 0 or self._closed:
                    break
                self._condition.wait(remaining)
            self._metrics.queue_depth.set(len(self._items))
            return batch

    def _run_batch(self, predict: Predictor, batch: list[_Item]) -> None:
        self._running_since = batch[0].submitted_at
        try:
            self._predict_batch(predict, batch)
        finally:
            self._running_since = None

    def _predict_batch(self, predict: Predictor, batch: list[_Item]) -> None:
        started = time.perf_counter()
        images = np.stack([item.image for item in batch])[..., np.newaxis]
        try:
            probabilities = np.asarray(predict(images), dtype=np.float32)
        except Exception:
            logger.exception("the model failed on a batch of %d", len(batch))
            _settle([(item, BatchFailed()) for item in batch])
            return
        inference_ms = (time.perf_counter() - started) * 1000
        self._metrics.batch_size.observe(len(batch))
        self._metrics.inference_time.observe(inference_ms / 1000)
        outcomes: list[tuple[_Item, BatchResult | BaseException]] = []
        for item, row in zip(batch, probabilities):
            queue_ms = (started - item.submitted_at) * 1000
            self._metrics.queue_wait.observe(queue_ms / 1000)
            outcomes.append((item, BatchResult(row, queue_ms, inference_ms, len(batch))))
        _settle(outcomes)

    def _discard(self, item: _Item) -> None:
        with self._condition:
            try:
                self._items.remove(item)
            except ValueError:
                pass  # already taken by the worker


def _settle(outcomes: list[tuple[_Item, BatchResult | BaseException]]) -> None:
    """Resolve each waiter on its own loop: one wake-up per loop for the whole batch, not one
    per item (each wake-up is a write to the loop's self-pipe and a pass of the loop)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Item, BatchResult | BaseException]]] = {}
    for item, outcome in outcomes:
        by_loop.setdefault(item.loop, []).append((item, outcome))
    for loop, settled in by_loop.items():
        try:
            loop.call_soon_threadsafe(_resolve, settled)
        except RuntimeError:
            pass  # the waiters' loop is closed; nobody is left to answer


def _resolve(settled: list[tuple[_Item, BatchResult | BaseException]]) -> None:
    for item, outcome in settled:
        if item.future.done():
            continue  # the waiter was cancelled
        if isinstance(outcome, BaseException):
            item.future.set_exception(outcome)
        else:
            item.future.set_result(outcome)
