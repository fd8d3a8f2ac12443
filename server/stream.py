"""One connection's snapshots, latest wins.

At most one snapshot of a connection is being classified and at most one waits. A newer
snapshot replaces the waiting one, so a fast drawer never queues up stale work, and the
newest snapshot is always answered, so the bars settle on the final drawing. Answers
leave in strictly increasing `seq` because one task answers them one after another.

A connection's answers are paced (`Pace`): past its rate, snapshots wait as the newest one
instead of being classified, so a client sending as fast as it can costs the model and the
preprocessing threads no more than a page drawing does. Once `max_replaced` snapshots were
dropped unanswered (replaced, or cleared) since the last answer's turn, `room()` holds the
reader until the next turn: the socket is not read meanwhile, so TCP slows the sender down
instead of the server reading frames only to drop them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from server import protocol
from server.classifier import Classification
from server.errors import ClientError
from server.metrics import Metrics
from server.pace import Pace

logger = logging.getLogger(__name__)

Send = Callable[[str], Awaitable[None]]
Classify = Callable[[bytes], Awaitable[Classification]]
AnswerListener = Callable[[int, Classification], None]


@dataclass(frozen=True)
class Snapshot:
    seq: int
    data: bytes
    received_at: float
    refusal: ClientError | None  # answered with this in its turn instead of being classified


class SnapshotStream:
    def __init__(self, classify: Classify, send: Send, metrics: Metrics, pace: Pace, max_replaced: int) -> None:
        self._classify = classify
        self._send = send
        self._metrics = metrics
        self._pace = pace
        self._max_replaced = max_replaced
        self._replaced = 0  # snapshots the waiting one has replaced
        self._room = asyncio.Event()
        self._room.set()
        self._listeners: list[AnswerListener] = []
        self._last_seq = 0
        self._waiting: Snapshot | None = None
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    def push(self, data: bytes, refusal: ClientError | None = None) -> int:
        """Number the snapshot and make it the one to answer next (with `refusal`, when given:
        the error keeps its place in `seq` order); returns its `seq`."""
        self._last_seq += 1
        if self._waiting is not None:
            self._metrics.coalesced.inc()
            self._dropped()
        self._waiting = Snapshot(self._last_seq, data, time.perf_counter(), refusal)
        self._idle.clear()
        self._wakeup.set()
        return self._last_seq

    def clear(self) -> None:
        """Drop the waiting snapshot; the one already being classified is still answered."""
        if self._waiting is not None:
            self._waiting = None
            self._dropped()  # or a snapshot and a clear, again and again, would be read unpaced

    async def room(self) -> None:
        """Wait while the waiting snapshot has replaced as many as a connection may send ahead."""
        await self._room.wait()

    def add_listener(self, listener: AnswerListener) -> None:
        """Call `listener(seq, classification)` after each prediction is sent."""
        self._listeners.append(listener)

    async def drained(self) -> None:
        """Wait until every pushed snapshot has been answered or dropped."""
        await self._idle.wait()

    async def run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            # Newer snapshots keep replacing the waiting one meanwhile; a cleared one spends its turn too.
            await self._pace.wait()
            snapshot, self._waiting = self._waiting, None
            self._make_room()
            if snapshot is not None:
                await self._answer(snapshot)
            if self._waiting is None:
                self._idle.set()

    def _dropped(self) -> None:
        self._replaced += 1
        if self._replaced >= self._max_replaced:
            self._room.clear()

    def _make_room(self) -> None:
        self._replaced = 0
        self._room.set()

    async def _answer(self, snapshot: Snapshot) -> None:
        if snapshot.refusal is not None:
            await self._fail(snapshot, snapshot.refusal)
            return
        try:
            result = await self._classify(snapshot.data)
        except ClientError as failure:
            await self._fail(snapshot, failure)
            return
        except Exception:
            logger.exception("classifying snapshot %d failed", snapshot.seq)
            await self._fail(snapshot, ClientError())
            return
        total_s = time.perf_counter() - snapshot.received_at
        await self._send(protocol.prediction(snapshot.seq, result, total_s * 1000))
        self._metrics.predictions.labels("ws").inc()
        self._metrics.latency.observe(total_s)
        for listener in self._listeners:
            listener(snapshot.seq, result)

    async def _fail(self, snapshot: Snapshot, failure: ClientError) -> None:
        self._metrics.errors.labels(failure.code).inc()
        await self._send(protocol.error(failure, snapshot.seq))
