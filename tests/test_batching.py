"""Unit tests of the batching queue with a tiny fake handler (no model)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from server.batching import BatchFailed, BatchingQueue, Handler, ModelTimeout, Overloaded, QueueClosed
from server.errors import BadRequest
from server.metrics import Metrics


class FakeHandler:
    """Prepares each item (an int) as itself, refusing a negative one with a BadRequest of its
    own, and answers its square. Records the items in the order it prepared them, the sizes of
    the batches it ran and the threads it ran on."""

    def __init__(self, delay_s: float = 0.0, fail: bool = False) -> None:
        self.delay_s = delay_s
        self.fail = fail
        self.prepared: list[int] = []
        self.batch_sizes: list[int] = []
        self.threads: set[str] = set()

    def load(self) -> Handler[int, int, int]:
        return Handler(self.prepare, self.run)

    def prepare(self, item: int) -> int:
        self.threads.add(threading.current_thread().name)
        self.prepared.append(item)
        if item < 0:
            raise BadRequest("negative")
        return item

    def run(self, items: list[int]) -> list[int]:
        self.batch_sizes.append(len(items))
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError("secret internal detail")
        return [item * item for item in items]


class GatedHandler(FakeHandler):
    """Each batch waits while `gate` is clear, as a model that hangs."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()

    def run(self, items: list[int]) -> list[int]:
        self.gate.wait(30)
        return super().run(items)


class CostlyFirstHandler(FakeHandler):
    """Preparing the first item waits for `gate`: a costly snapshot holding the worker."""

    def __init__(self) -> None:
        super().__init__()
        self.holding = threading.Event()
        self.gate = threading.Event()

    def prepare(self, item: int) -> int:
        if not self.prepared:
            self.holding.set()
            self.gate.wait(30)
        return super().prepare(item)


async def started(handler: FakeHandler, **options: Any) -> BatchingQueue[int, int, int]:
    queue: BatchingQueue[int, int, int] = BatchingQueue(handler.load, **options)
    queue.start()
    await queue.wait_ready()
    return queue


async def test_the_handler_is_loaded_and_called_on_the_worker_thread() -> None:
    loaded_on: list[str] = []
    handler = FakeHandler()

    def load() -> Handler[int, int, int]:
        loaded_on.append(threading.current_thread().name)
        return handler.load()

    queue: BatchingQueue[int, int, int] = BatchingQueue(load)
    queue.start()
    await queue.wait_ready()
    assert (await queue.submit(3, "a")).result == 9
    assert loaded_on == ["digitstream-inference"] and handler.threads == {"digitstream-inference"}
    assert queue.healthy
    queue.close()


async def test_each_waiter_gets_its_own_result() -> None:
    queue = await started(FakeHandler())
    results = await asyncio.gather(*(queue.submit(n, "a") for n in range(25)))
    assert [r.result for r in results] == [n * n for n in range(25)]
    queue.close()


async def test_another_sender_goes_before_the_rest_of_a_costly_senders_items() -> None:
    handler = CostlyFirstHandler()
    queue = await started(handler)
    costly = [asyncio.ensure_future(queue.submit(n, "busy address")) for n in range(1, 10)]
    await asyncio.to_thread(handler.holding.wait)
    cheap = asyncio.ensure_future(queue.submit(100, "another address"))
    while queue.depth < 9:  # all but the first costly item queued
        await asyncio.sleep(0.001)
    handler.gate.set()
    await asyncio.gather(cheap, *costly)
    assert handler.prepared == [1, 100, *range(2, 10)]


async def test_a_batch_takes_no_more_items_once_its_fill_time_has_passed() -> None:
    """The items queued behind a costly one go in the next batch, so their answers are not held
    back until a whole batch of costly items has been prepared."""
    handler = CostlyFirstHandler()
    queue = await started(handler, max_fill_s=0.01)
    pending = [asyncio.ensure_future(queue.submit(n, "a")) for n in range(1, 6)]
    await asyncio.to_thread(handler.holding.wait)
    while queue.depth < 4 or queue.oldest_age_s() <= 0.01:
        await asyncio.sleep(0.001)
    handler.gate.set()
    results = await asyncio.gather(*pending)
    assert [r.result for r in results] == [1, 4, 9, 16, 25]
    assert handler.batch_sizes == [1, 4]


async def test_an_item_the_handler_refuses_fails_alone() -> None:
    queue = await started(FakeHandler(delay_s=0.01), max_wait_s=0.01)
    outcomes = await asyncio.gather(*(queue.submit(n, "a") for n in (2, -1, 3)), return_exceptions=True)
    assert isinstance(outcomes[1], BadRequest)
    assert [o.result for o in (outcomes[0], outcomes[2]) if not isinstance(o, BaseException)] == [4, 9]
    queue.close()


async def test_concurrent_submits_are_grouped_into_batches_of_just_their_items() -> None:
    handler = FakeHandler(delay_s=0.02)
    queue = await started(handler, max_batch_size=16, max_wait_s=0.01)
    results = await asyncio.gather(*(queue.submit(3, "a") for _ in range(20)))
    sizes = [r.batch_size for r in results]
    assert max(sizes) > 1, "concurrent submits were never batched"
    assert len(handler.batch_sizes) < 20
    assert sum(handler.batch_sizes) == 20
    assert all(size <= 16 for size in handler.batch_sizes)
    queue.close()


async def test_a_failing_batch_fails_every_waiter_and_the_worker_lives_on() -> None:
    handler = FakeHandler(delay_s=0.01)
    queue = await started(handler, max_batch_size=8, max_wait_s=0.01)
    handler.fail = True
    outcomes = await asyncio.gather(*(queue.submit(1, "a") for _ in range(5)), return_exceptions=True)
    assert all(isinstance(outcome, BatchFailed) for outcome in outcomes)
    assert "secret" not in "".join(str(outcome) for outcome in outcomes)
    handler.fail = False
    assert (await queue.submit(7, "a")).result == 49
    assert queue.healthy
    queue.close()


async def test_a_full_queue_says_overloaded() -> None:
    queue = await started(FakeHandler(delay_s=0.05), max_batch_size=1, max_pending=2)
    outcomes = await asyncio.gather(*(queue.submit(2, "a") for _ in range(6)), return_exceptions=True)
    assert any(isinstance(outcome, Overloaded) for outcome in outcomes)
    assert any(not isinstance(outcome, Exception) for outcome in outcomes)
    queue.close()


async def test_close_answers_what_is_queued_then_refuses_new_work() -> None:
    queue = await started(FakeHandler(delay_s=0.02), max_batch_size=2)
    pending = [asyncio.ensure_future(queue.submit(4, "a")) for _ in range(6)]
    await asyncio.sleep(0.005)
    await asyncio.to_thread(queue.close)
    results = await asyncio.gather(*pending)
    assert all(r.result == 16 for r in results)
    assert not queue.healthy
    with pytest.raises(QueueClosed):
        await queue.submit(4, "a")


async def test_a_cancelled_waiter_is_removed_from_the_queue() -> None:
    queue = await started(FakeHandler(delay_s=0.05), max_batch_size=1)
    first = asyncio.ensure_future(queue.submit(1, "a"))
    second = asyncio.ensure_future(queue.submit(2, "a"))
    await asyncio.sleep(0.01)
    second.cancel()
    await asyncio.sleep(0)
    assert queue.depth == 0
    assert (await first).result == 1
    queue.close()


async def test_the_depth_gauge_counts_what_waits_behind_a_busy_model() -> None:
    handler, metrics = GatedHandler(), Metrics()
    queue = await started(handler, max_batch_size=1, metrics=metrics)
    handler.gate.clear()
    try:
        pending = [asyncio.ensure_future(queue.submit(1, "a"))]
        while queue.depth or not queue.oldest_age_s():  # the model holds the first item
            await asyncio.sleep(0.001)
        pending += [asyncio.ensure_future(queue.submit(2, "a")) for _ in range(5)]
        while queue.depth < 5:
            await asyncio.sleep(0.001)
        assert metrics.registry.get_sample_value("digitstream_queue_depth") == 5
    finally:
        handler.gate.set()
    await asyncio.gather(*pending)
    assert metrics.registry.get_sample_value("digitstream_queue_depth") == 0
    queue.close()


async def test_a_model_that_cannot_load_is_reported() -> None:
    def broken_loader() -> Handler[int, int, int]:
        raise OSError("no such model")

    queue: BatchingQueue[int, int, int] = BatchingQueue(broken_loader)
    queue.start()
    with pytest.raises(RuntimeError, match="could not be loaded"):
        await queue.wait_ready()
    assert not queue.healthy


async def test_a_hung_model_fails_its_waiters_at_the_deadline_and_the_queue_says_stalled() -> None:
    handler = GatedHandler()
    queue = await started(handler, max_batch_size=2, deadline_s=0.2)
    assert not queue.stalled
    handler.gate.clear()
    try:
        outcomes = await asyncio.gather(*(queue.submit(5, "a") for _ in range(5)), return_exceptions=True)
        assert all(isinstance(outcome, ModelTimeout) for outcome in outcomes), outcomes
        assert queue.depth == 0, "waiters that gave up must not stay queued"
        assert queue.stalled and queue.oldest_age_s() > 0.2
    finally:
        handler.gate.set()
    deadline = time.monotonic() + 10
    while queue.stalled:
        assert time.monotonic() < deadline, "the queue never recovered"
        await asyncio.sleep(0.01)
    assert queue.oldest_age_s() == 0.0
    assert (await queue.submit(7, "a")).result == 49
    queue.close()
