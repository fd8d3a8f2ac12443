"""Unit tests of the batching queue with a tiny fake model (no TensorFlow)."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from server.batching import BatchFailed, BatchingQueue, ModelTimeout, Overloaded, QueueClosed


class FakeModel:
    """Returns a one-hot row per image, for the digit stored in its first pixel; records batch sizes."""

    def __init__(self, delay_s: float = 0.0, fail: bool = False) -> None:
        self.delay_s = delay_s
        self.fail = fail
        self.batch_shapes: list[tuple[int, ...]] = []
        self.threads: set[str] = set()

    def __call__(self, images: np.ndarray) -> np.ndarray:
        self.batch_shapes.append(images.shape)
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError("secret internal detail")
        digits = images[:, 0, 0, 0].astype(int)
        return np.eye(10, dtype=np.float32)[digits]


class GatedModel(FakeModel):
    """Each batch waits while `gate` is clear, as a model that hangs."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, images: np.ndarray) -> np.ndarray:
        self.gate.wait(30)
        return super().__call__(images)


def image_of(digit: int) -> np.ndarray:
    image = np.zeros((28, 28), np.float32)
    image[0, 0] = digit
    return image


async def started(model: FakeModel, **options: object) -> BatchingQueue:
    queue = BatchingQueue(lambda: model, **options)
    queue.start()
    await queue.wait_ready()
    model.batch_shapes.clear()  # forget the warm-up batches
    return queue


async def test_warm_up_runs_the_smallest_and_largest_batch_on_the_worker_thread() -> None:
    model = FakeModel()
    queue = BatchingQueue(lambda: model, max_batch_size=8)
    queue.start()
    await queue.wait_ready()
    assert [shape[0] for shape in model.batch_shapes] == [1, 8]
    assert model.threads == {"digitstream-inference"}
    assert queue.healthy
    queue.close()


async def test_each_waiter_gets_its_own_row() -> None:
    queue = await started(FakeModel())
    results = await asyncio.gather(*(queue.submit(image_of(d % 10)) for d in range(25)))
    assert [int(np.argmax(r.probabilities)) for r in results] == [d % 10 for d in range(25)]
    queue.close()


async def test_concurrent_submits_are_grouped_into_batches_of_just_their_images() -> None:
    model = FakeModel(delay_s=0.02)
    queue = await started(model, max_batch_size=16, max_wait_s=0.01)
    results = await asyncio.gather(*(queue.submit(image_of(3)) for _ in range(20)))
    sizes = [r.batch_size for r in results]
    assert max(sizes) > 1, "concurrent submits were never batched"
    assert len(model.batch_shapes) < 20
    # the model sees exactly the submitted images: no padding rows
    assert sum(shape[0] for shape in model.batch_shapes) == 20
    assert all(shape[0] <= 16 for shape in model.batch_shapes)
    queue.close()


async def test_a_failing_batch_fails_every_waiter_and_the_worker_lives_on() -> None:
    model = FakeModel(delay_s=0.01)
    queue = await started(model, max_batch_size=8, max_wait_s=0.01)
    model.fail = True
    outcomes = await asyncio.gather(*(queue.submit(image_of(1)) for _ in range(5)), return_exceptions=True)
    assert all(isinstance(outcome, BatchFailed) for outcome in outcomes)
    assert "secret" not in "".join(str(outcome) for outcome in outcomes)
    model.fail = False
    result = await queue.submit(image_of(7))
    assert int(np.argmax(result.probabilities)) == 7
    assert queue.healthy
    queue.close()


async def test_a_full_queue_says_overloaded() -> None:
    queue = await started(FakeModel(delay_s=0.05), max_batch_size=1, max_pending=2)
    outcomes = await asyncio.gather(*(queue.submit(image_of(2)) for _ in range(6)), return_exceptions=True)
    assert any(isinstance(outcome, Overloaded) for outcome in outcomes)
    assert any(not isinstance(outcome, Exception) for outcome in outcomes)
    queue.close()


async def test_close_answers_what_is_queued_then_refuses_new_work() -> None:
    queue = await started(FakeModel(delay_s=0.02), max_batch_size=2)
    pending = [asyncio.ensure_future(queue.submit(image_of(4))) for _ in range(6)]
    await asyncio.sleep(0.005)
    await asyncio.to_thread(queue.close)
    results = await asyncio.gather(*pending)
    assert all(int(np.argmax(r.probabilities)) == 4 for r in results)
    assert not queue.healthy
    with pytest.raises(QueueClosed):
        await queue.submit(image_of(4))


async def test_a_cancelled_waiter_is_removed_from_the_queue() -> None:
    queue = await started(FakeModel(delay_s=0.05), max_batch_size=1)
    first = asyncio.ensure_future(queue.submit(image_of(1)))
    second = asyncio.ensure_future(queue.submit(image_of(2)))
    await asyncio.sleep(0.01)
    second.cancel()
    await asyncio.sleep(0)
    assert queue.depth == 0
    assert int(np.argmax((await first).probabilities)) == 1
    queue.close()


async def test_a_model_that_cannot_load_is_reported() -> None:
    def broken_loader() -> FakeModel:
        raise OSError("no such model")

    queue = BatchingQueue(broken_loader)
    queue.start()
    with pytest.raises(RuntimeError, match="could not be loaded"):
        await queue.wait_ready()
    assert not queue.healthy


async def test_a_hung_model_fails_its_waiters_at_the_deadline_and_the_queue_says_stalled() -> None:
    model = GatedModel()
    queue = await started(model, max_batch_size=2, deadline_s=0.2)
    assert not queue.stalled
    model.gate.clear()
    try:
        outcomes = await asyncio.gather(*(queue.submit(image_of(5)) for _ in range(5)), return_exceptions=True)
        assert all(isinstance(outcome, ModelTimeout) for outcome in outcomes), outcomes
        assert queue.depth == 0, "waiters that gave up must not stay queued"
        assert queue.stalled and queue.oldest_age_s() > 0.2
    finally:
        model.gate.set()
    deadline = time.monotonic() + 10
    while queue.stalled:
        assert time.monotonic() < deadline, "the queue never recovered"
        await asyncio.sleep(0.01)
    assert queue.oldest_age_s() == 0.0
    assert int(np.argmax((await queue.submit(image_of(7))).probabilities)) == 7
    queue.close()
