"""What one server process runs: metrics, the batching queue, the classifier, and the
set of open connections that a graceful shutdown drains."""

from __future__ import annotations

import asyncio
import enum
import gc
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from server.batching import BatchingQueue, Predictor
from server.classifier import Classifier
from server.config import Settings
from server.debug_inputs import InputRecorder
from server.metrics import Metrics

logger = logging.getLogger(__name__)

# A shutdown answers in-flight snapshots for up to DRAIN_TIMEOUT_S, then spends up to
# CLOSE_TIMEOUT_S closing each socket, all sockets at once; what is left of SHUTDOWN_TIMEOUT_S
# is uvicorn's and the lifespan's, so the process is gone within it whatever clients do.
DRAIN_TIMEOUT_S = 2.0
CLOSE_TIMEOUT_S = 1.0
SHUTDOWN_TIMEOUT_S = 5


class State(enum.Enum):
    STARTING = "starting"
    SERVING = "serving"
    DRAINING = "draining"
    STOPPED = "stopped"


def model_predictor(path: Path | None, threads: int = 0) -> Callable[[], Predictor]:
    """Load the model on the queue's worker thread: TensorFlow is imported there, not here.
    `threads` > 0 caps TensorFlow's thread pools before its runtime starts."""

    def load() -> Predictor:
        import tensorflow as tf

        if threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        from server.model import DEFAULT_MODEL_PATH, BatchPredictor, load_model

        return BatchPredictor(load_model(path or DEFAULT_MODEL_PATH))

    return load


class Service:
    def __init__(self, settings: Settings, load_predictor: Callable[[], Predictor] | None = None) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.queue = BatchingQueue(
            load_predictor or model_predictor(settings.model, settings.model_threads),
            max_batch_size=settings.max_batch_size,
            max_wait_s=settings.max_batch_wait_ms / 1000,
            deadline_s=settings.model_deadline_s,
            metrics=self.metrics,
        )
        recorder = InputRecorder(settings.save_inputs) if settings.save_inputs else None
        self.classifier = Classifier(self.queue, self.metrics, record_input=recorder.record if recorder else None)
        self.state = State.STARTING
        self.http_in_flight = 0
        self._drainers: set[Callable[[], Awaitable[None]]] = set()

    async def start(self) -> None:
        self.queue.start()
        await self.queue.wait_ready()
        # TensorFlow leaves ~300k long-lived objects; a full collection walking them stalls
        # every thread for ~200 ms, which was the whole latency tail. They never die.
        gc.freeze()
        self.state = State.SERVING
        logger.info("model ready; batches of up to %d", self.queue.max_batch_size)

    @property
    def accepting(self) -> bool:
        """False once a shutdown has begun: new connections and snapshots are refused."""
        return self.state is State.SERVING

    def track(self, drain: Callable[[], Awaitable[None]]) -> Callable[[], None]:
        """Register an open connection's drain coroutine; returns the function that forgets it."""
        self._drainers.add(drain)
        self.metrics.connections.set(len(self._drainers))

        def forget() -> None:
            self._drainers.discard(drain)
            self.metrics.connections.set(len(self._drainers))

        return forget

    async def drain(self) -> None:
        """Refuse new connections, answer what is in flight, close every socket with 1001.
        Called on the exit signal before uvicorn's own shutdown (server/exitsignals.py) and
        again by the lifespan, where it finds nothing left to do; it never raises, so the
        lifespan's shutdown always runs."""
        if self.state in (State.DRAINING, State.STOPPED):
            return
        self.state = State.DRAINING
        drains = [asyncio.ensure_future(drain()) for drain in list(self._drainers)]
        if not drains:
            return
        _, late = await asyncio.wait(drains, timeout=DRAIN_TIMEOUT_S + CLOSE_TIMEOUT_S)
        for task in late:
            task.cancel()
        if late:
            logger.warning("%d connection(s) did not close in time during shutdown", len(late))

    def stop(self) -> None:
        self.state = State.STOPPED
        self.queue.close()
        self.classifier.close()
