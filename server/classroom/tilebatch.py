"""Tile writes from one process to Redis, grouped: writes that arrive while one round trip is in
flight go together in the next pipeline. A class drawing at once then costs Redis a few round
trips per tick instead of one per student, and each write still returns only once it is stored."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import redis.asyncio as redis
from redis.commands.core import AsyncScript

from server.classroom.bus import Outage
from server.classroom.rooms import ClassroomUnavailable

logger = logging.getLogger(__name__)

Write = tuple[list[str], list[Any]]  # the script's keys and arguments


class TileBatch:
    def __init__(self, client: redis.Redis, script: AsyncScript, outage: Outage) -> None:
        self._client = client
        self._script = script
        self._outage = outage
        self._writes: dict[str, Write] = {}
        self._stored: asyncio.Future[None] | None = None
        self._flusher: asyncio.Task[None] | None = None

    async def write(self, tile: str, keys: list[str], args: list[Any]) -> None:
        """Store one tile (a newer write of the same tile waiting in the batch replaces it)."""
        if self._stored is None:
            self._stored = asyncio.get_running_loop().create_future()
        stored = self._stored
        self._writes[tile] = (keys, args)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="digitstream-tile-batch")
        await asyncio.shield(stored)

    async def _flush(self) -> None:
        while self._writes:
            writes, stored = self._writes, self._stored
            self._writes, self._stored = {}, None
            assert stored is not None
            try:
                async with self._outage.guard(), self._client.pipeline(transaction=False) as pipe:
                    for keys, args in writes.values():
                        await self._script(keys=keys, args=args, client=pipe)
                    await pipe.execute()
            except ClassroomUnavailable as unavailable:
                fail(stored, unavailable)
            except Exception as error:
                logger.exception("writing tiles to Redis failed")
                fail(stored, error)
            else:
                stored.set_result(None)


def fail(stored: asyncio.Future[None], error: Exception) -> None:
    """Every writer in the batch gets the error; one that stopped waiting must not log it again."""
    stored.set_exception(error)
    stored.exception()
