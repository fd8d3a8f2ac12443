"""One connection's snapshots (server/stream.py): what its reader may read ahead of the answers."""

from __future__ import annotations

import asyncio
import json

from server.classifier import EMPTY, Classification
from server.metrics import Metrics
from server.pace import Pace
from server.stream import SnapshotStream

MAX_REPLACED = 3


class HeldClassifier:
    """Classifies nothing until released, so the first snapshot stays in flight."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.released = asyncio.Event()

    async def classify(self, data: bytes) -> Classification:
        self.started.set()
        await self.released.wait()
        return EMPTY


async def test_snapshots_dropped_by_clear_count_against_what_the_reader_may_read_ahead() -> None:
    classifier, sent = HeldClassifier(), list[str]()

    async def send(text: str) -> None:
        sent.append(text)

    stream = SnapshotStream(classifier.classify, send, Metrics(), Pace(rate=30, burst=10), MAX_REPLACED)
    answering = asyncio.create_task(stream.run())
    try:
        stream.push(b"first")
        await classifier.started.wait()
        for _ in range(MAX_REPLACED):  # read and dropped, never answered: like replaced ones
            stream.push(b"dropped")
            stream.clear()
        reader = asyncio.ensure_future(stream.room())
        await asyncio.sleep(0)  # one turn of the loop: room() would have returned by now
        assert not reader.done(), "the reader may read on while nothing is answered"
        classifier.released.set()
        await reader  # the next answer's turn makes room
        stream.push(b"last")
        await stream.drained()
        assert [json.loads(text)["seq"] for text in sent] == [1, MAX_REPLACED + 2]
    finally:
        answering.cancel()
