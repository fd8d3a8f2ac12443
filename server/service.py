"""What one server process runs: metrics, the batching queue and its classifier, and the
set of open connections that a graceful shutdown drains."""

from __future__ import annotations

import asyncio
import enum
import gc
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from server.batching import BatchingQueue
from server.classifier import Classification, Classifier, Predictor, batch_classifier
from server.config import Settings
from server.debug_inputs import InputRecorder
from server.metrics import Metrics
from server.predictor import DEFAULT_SERVED_MODEL_PATH, LiteRTPredictor
from server.preprocess import Prepared

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


def model_predictor(path: Path | None, threads: int = 1) -> Callable[[], Predictor]:
    """Load the served model on the queue's worker thread, running on `threads` threads."""

    def load() -> Predictor:
        return LiteRTPredictor(path or DEFAULT_SERVED_MODEL_PATH, threads)

    return load


class Service:
    def __init__(self, settings: Settings, load_predictor: Callable[[], Predictor] | None = None) -> None:
        self.settings = settings
        self.metrics = Metrics()
        recorder = InputRecorder(settings.save_inputs) if settings.save_inputs else None
        self.queue: BatchingQueue[bytes, Prepared, Classification] = BatchingQueue(
            batch_classifier(
                load_predictor or model_predictor(settings.model, settings.model_threads),
                self.metrics,
                max_batch_size=settings.max_batch_size,
                record_input=recorder.record if recorder else None,
            ),
            max_batch_size=settings.max_batch_size,
            max_wait_s=settings.max_batch_wait_ms / 1000,
            max_fill_s=settings.max_batch_fill_ms / 1000,
            deadline_s=settings.model_deadline_s,
            metrics=self.metrics,
        )
        self.classifier = Classifier(self.queue)
        self.state = State.STARTING
        self.http_in_flight = 0
        self._drainers: set[Callable[[], Awaitable[None]]] = set()
        self._draining: asyncio.Future[None] | None = None

    async def start(self) -> None:
        self.queue.start()
        await self.queue.wait_ready()
        # What start-up leaves (imports, the compiled recipe, the interpreters) lives as long as
        # the process: frozen, a full collection never walks it again.
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
        again by uvicorn's shutdown and the lifespan: a drain under way is waited for, never cut
        short (a worker hears its process group's signal, then its parent's). It never raises,
        so the lifespan's shutdown always runs."""
        if self.state is State.STOPPED:
            return
        if self._draining is None:
            self.state = State.DRAINING
            self._draining = asyncio.ensure_future(self._drain_connections())
        await asyncio.shield(self._draining)

    async def _drain_connections(self) -> None:
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
