"""One batching queue: submit an item, await its result.

The queue owns a worker thread, and that thread owns the batch handler: it loads it (the
model, warmed up) and calls it on every batch, so neither decoding, preprocessing nor the
model ever runs on the event loop. The worker takes up to `max_batch_size` items, waiting at
most `max_wait_s` after the first, and resolves the waiters of a batch with one wake-up of
each waiter's event loop.

A handler maps a list of items to one outcome each, a result or the ClientError that item
gets; if it raises, every item of the batch fails with BatchFailed and the worker lives on.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from server.errors import ClientError
from server.metrics import Metrics

logger = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")
BatchHandler = Callable[[list[Item]], Sequence[Result | ClientError]]


class Overloaded(ClientError):
    """The queue holds `max_pending` items already; the caller should retry later."""

    code, message, http_status = "overloaded", "The server is busy; send the snapshot again in a moment.", 503


class BatchFailed(ClientError):
    """The handler failed on the batch this item was in."""

    code, message, http_status = "internal", "The model could not classify this snapshot.", 500


class ModelTimeout(ClientError):
    """The item was not answered within the queue's deadline: the model is hung or far behind."""

    code, message, http_status = "model_timeout", "The model did not answer in time; send the snapshot again.", 503


class QueueClosed(ClientError):
    """The queue is shutting down and takes no new work."""

    code, message, http_status = "shutting_down", "The server is shutting down.", 503


@dataclass(frozen=True)
class Batched(Generic[Result]):
    result: Result
    queue_ms: float  # from submit to the start of its batch
    batch_size: int


@dataclass(eq=False)  # identity: deque.remove must not compare items
class _Waiter(Generic[Item, Result]):
    item: Item
    future: asyncio.Future[Batched[Result]]
    loop: asyncio.AbstractEventLoop
    submitted_at: float


Outcome = tuple[_Waiter, Batched | BaseException]


class BatchingQueue(Generic[Item, Result]):
    def __init__(
        self,
        load_handler: Callable[[], BatchHandler[Item, Result]],
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
        self._load_handler = load_handler
        self._metrics = metrics or Metrics()
        self._waiters: deque[_Waiter[Item, Result]] = deque()
        self._metrics.queue_depth.set_function(lambda: len(self._waiters))  # read when scraped
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
        """Wait until the handler is loaded and warmed up; raise if that failed."""
        await asyncio.to_thread(self._ready.wait)
        if self._startup_error is not None:
            raise RuntimeError("the model could not be loaded") from self._startup_error

    @property
    def healthy(self) -> bool:
        return self._ready.is_set() and self._startup_error is None and self._thread.is_alive()

    @property
    def depth(self) -> int:
        return len(self._waiters)

    def oldest_age_s(self) -> float:
        """How long the oldest item queued or being handled has waited; 0 when there is none."""
        with self._condition:
            submitted = [self._waiters[0].submitted_at] if self._waiters else []
        if (running_since := self._running_since) is not None:
            submitted.append(running_since)
        return time.perf_counter() - min(submitted) if submitted else 0.0

    @property
    def stalled(self) -> bool:
        """An item has waited longer than the deadline: its waiter has given up on the model."""
        return self.deadline_s is not None and self.oldest_age_s() > self.deadline_s

    async def submit(self, item: Item) -> Batched[Result]:
        """Handle `item` in the next batch; ModelTimeout past the deadline."""
        loop = asyncio.get_running_loop()
        waiter: _Waiter[Item, Result] = _Waiter(item, loop.create_future(), loop, time.perf_counter())
        with self._condition:
            if self._closed:
                raise QueueClosed()
            if len(self._waiters) >= self.max_pending:
                raise Overloaded()
            self._waiters.append(waiter)
            self._condition.notify()
        try:
            async with asyncio.timeout(self.deadline_s):
                return await waiter.future
        except TimeoutError:
            self._discard(waiter)
            raise ModelTimeout() from None
        except asyncio.CancelledError:
            self._discard(waiter)
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
            handle = self._load_handler()
        except BaseException as error:  # reported by wait_ready and /healthz
            logger.exception("loading the model failed")
            self._startup_error = error
            self._ready.set()
            return
        self._ready.set()
        while (batch := self._take_batch()) is not None:
            self._running_since = batch[0].submitted_at
            try:
                self._handle(handle, batch)
            finally:
                self._running_since = None

    def _take_batch(self) -> list[_Waiter[Item, Result]] | None:
        with self._condition:
            while not self._waiters:
                if self._closed:
                    return None
                self._condition.wait()
            batch = [self._waiters.popleft()]
            deadline = time.perf_counter() + self.max_wait_s
            while len(batch) < self.max_batch_size:
                if self._waiters:
                    batch.append(self._waiters.popleft())
                    continue
                remaining = deadline - time.perf_counter()
                if remaining <= 0 or self._closed:
                    break
                self._condition.wait(remaining)
            return batch

    def _handle(self, handle: BatchHandler[Item, Result], batch: list[_Waiter[Item, Result]]) -> None:
        started = time.perf_counter()
        self._metrics.batch_size.observe(len(batch))
        try:
            results = handle([waiter.item for waiter in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"the handler answered {len(results)} of {len(batch)} items")
        except Exception:
            logger.exception("the model failed on a batch of %d", len(batch))
            _settle([(waiter, BatchFailed()) for waiter in batch])
            return
        outcomes: list[Outcome] = []
        for waiter, result in zip(batch, results):
            queue_ms = (started - waiter.submitted_at) * 1000
            self._metrics.queue_wait.observe(queue_ms / 1000)
            outcome = result if isinstance(result, ClientError) else Batched(result, queue_ms, len(batch))
            outcomes.append((waiter, outcome))
        _settle(outcomes)

    def _discard(self, waiter: _Waiter[Item, Result]) -> None:
        with self._condition:
            try:
                self._waiters.remove(waiter)
            except ValueError:
                pass  # already taken by the worker


def _settle(outcomes: list[Outcome]) -> None:
    """Resolve each waiter on its own loop: one wake-up per loop for the whole batch, not one
    per item (each wake-up is a write to the loop's self-pipe and a pass of the loop)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
    for waiter, outcome in outcomes:
        by_loop.setdefault(waiter.loop, []).append((waiter, outcome))
    for loop, settled in by_loop.items():
        try:
            loop.call_soon_threadsafe(_resolve, settled)
        except RuntimeError:
            pass  # the waiters' loop is closed; nobody is left to answer


def _resolve(settled: list[Outcome]) -> None:
    for waiter, outcome in settled:
        if waiter.future.done():
            continue  # the waiter was cancelled
        if isinstance(outcome, BaseException):
            waiter.future.set_exception(outcome)
        else:
            waiter.future.set_result(outcome)
