"""One batching queue: submit an item, await its result.

The queue owns a worker thread, and that thread owns the handler: it loads it (the model,
warmed up) and runs it on every batch, so neither decoding, preprocessing nor the model ever
runs on the event loop. The worker takes items one at a time, each sender in turn by the
worker time its items have cost (server/fairshare.py), and prepares each as it takes it. A
batch takes queued items until it holds `max_batch_size`, waiting for more at most `max_wait_s`
after its first, and takes none once `max_fill_s` has passed since its first was taken: one
costly item closes its batch instead of holding back the answers of the cheap ones in it. The
batch's prepared items then go through the handler's `run` together, and the waiters of a batch
are resolved with one wake-up of each waiter's event loop.

A ClientError that `prepare` raises is that item's answer. If `prepare` fails otherwise, its
item alone fails; if `run` fails, every item it was given fails with BatchFailed. Either way
the worker lives on.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from server.errors import ClientError
from server.fairshare import FairShare
from server.metrics import Metrics

logger = logging.getLogger(__name__)

Item = TypeVar("Item")
Prepared = TypeVar("Prepared")
Result = TypeVar("Result")


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
class Handler(Generic[Item, Prepared, Result]):
    """What the worker runs: `prepare` on each item as it is taken (raising ClientError for an
    item it refuses), then `run` on the prepared items of a batch, answering each in order."""

    prepare: Callable[[Item], Prepared]
    run: Callable[[list[Prepared]], Sequence[Result]]


@dataclass(frozen=True)
class Batched(Generic[Result]):
    result: Result
    queue_ms: float  # from submit until the worker took it
    batch_size: int


@dataclass(eq=False)  # identity: removing a waiter must not compare items
class _Waiter(Generic[Item, Result]):
    item: Item
    sender: Hashable
    future: asyncio.Future[Batched[Result]]
    loop: asyncio.AbstractEventLoop
    submitted_at: float
    taken_at: float = 0.0


Outcome = tuple[_Waiter, Batched | BaseException]


class BatchingQueue(Generic[Item, Prepared, Result]):
    def __init__(
        self,
        load_handler: Callable[[], Handler[Item, Prepared, Result]],
        *,
        max_batch_size: int = 32,
        max_wait_s: float = 0.002,
        max_fill_s: float = 0.01,
        max_pending: int = 4096,
        deadline_s: float | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.max_fill_s = max_fill_s
        self.max_pending = max_pending
        self.deadline_s = deadline_s
        self._load_handler = load_handler
        self._metrics = metrics or Metrics()
        self._waiters: FairShare[_Waiter[Item, Result]] = FairShare()
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
            submitted = [waiter.submitted_at for waiter in self._waiters.firsts()]
        if (running_since := self._running_since) is not None:
            submitted.append(running_since)
        return time.perf_counter() - min(submitted) if submitted else 0.0

    @property
    def stalled(self) -> bool:
        """An item has waited longer than the deadline: its waiter has given up on the model."""
        return self.deadline_s is not None and self.oldest_age_s() > self.deadline_s

    async def submit(self, item: Item, sender: Hashable) -> Batched[Result]:
        """Handle `item` in a coming batch, in `sender`'s turn; ModelTimeout past the deadline."""
        loop = asyncio.get_running_loop()
        waiter: _Waiter[Item, Result] = _Waiter(item, sender, loop.create_future(), loop, time.perf_counter())
        with self._condition:
            if self._closed:
                raise QueueClosed()
            if len(self._waiters) >= self.max_pending:
                raise Overloaded()
            self._waiters.add(sender, waiter)
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
            handler = self._load_handler()
        except BaseException as error:  # reported by wait_ready and /healthz
            logger.exception("loading the model failed")
            self._startup_error = error
            self._ready.set()
            return
        self._ready.set()
        while (first := self._take(until=None)) is not None:
            try:
                self._serve_batch(handler, first)
            finally:
                self._running_since = None

    def _take(self, until: float | None) -> _Waiter[Item, Result] | None:
        """The next item in fair turn, waiting for one until `until` (None: until one comes or
        the queue closes)."""
        with self._condition:
            while (waiter := self._waiters.take()) is None:
                remaining = None if until is None else until - time.perf_counter()
                if self._closed or (remaining is not None and remaining <= 0):
                    return None
                self._condition.wait(remaining)
        waiter.taken_at = time.perf_counter()
        return waiter

    def _serve_batch(self, handler: Handler[Item, Prepared, Result], first: _Waiter[Item, Result]) -> None:
        wait_until = first.taken_at + min(self.max_wait_s, self.max_fill_s)
        fill_until = first.taken_at + self.max_fill_s
        self._running_since = first.submitted_at
        batch = [first]
        prepared: list[tuple[_Waiter[Item, Result], Prepared]] = []
        refused: list[Outcome] = []
        waiter: _Waiter[Item, Result] | None = first
        while waiter is not None:
            self._running_since = min(self._running_since, waiter.submitted_at)
            try:
                prepared.append((waiter, handler.prepare(waiter.item)))
            except ClientError as refusal:
                refused.append((waiter, refusal))
            except Exception:
                logger.exception("preparing an item failed")  # it must not fail its batch
                refused.append((waiter, ClientError()))
            finally:
                with self._condition:
                    self._waiters.charge(waiter.sender, time.perf_counter() - waiter.taken_at)
            if len(batch) == self.max_batch_size or time.perf_counter() >= fill_until:
                break
            if (waiter := self._take(wait_until)) is not None:
                batch.append(waiter)
        self._metrics.batch_size.observe(len(batch))
        for waiter in batch:
            self._metrics.queue_wait.observe(waiter.taken_at - waiter.submitted_at)
        _settle(refused + self._run_batch(handler, prepared, len(batch)))

    def _run_batch(
        self,
        handler: Handler[Item, Prepared, Result],
        prepared: list[tuple[_Waiter[Item, Result], Prepared]],
        batch_size: int,
    ) -> list[Outcome]:
        if not prepared:
            return []
        try:
            results = handler.run([item for _, item in prepared])
            if len(results) != len(prepared):
                raise RuntimeError(f"the handler answered {len(results)} of {len(prepared)} items")
        except Exception:
            logger.exception("the model failed on a batch of %d", len(prepared))
            return [(waiter, BatchFailed()) for waiter, _ in prepared]
        return [
            (waiter, Batched(result, (waiter.taken_at - waiter.submitted_at) * 1000, batch_size))
            for (waiter, _), result in zip(prepared, results)
        ]

    def _discard(self, waiter: _Waiter[Item, Result]) -> None:
        with self._condition:
            self._waiters.remove(waiter.sender, waiter)


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
