"""Which of the processes serving classes through Redis are alive. Each beats a heartbeat and
lists the seats its connections hold; when one stops beating, a survivor's sweep marks those
seats away, so they wait for their students to rejoin through another process.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable

import redis.asyncio as redis

from server.classroom.bus import Outage
from server.classroom.records import text
from server.classroom.rooms import ClassroomUnavailable

HEARTBEAT_S = 2.0
PROCESS_TTL_MS = 6000  # three missed heartbeats and a process counts as dead
PROCESSES = "ds:processes"

# (room code, student, holder prefix): the seat goes away, for its holder to take back
DropSeat = Callable[[str, str, str], Awaitable[None]]


def process_key(process: str) -> str:
    """The process's heartbeat; with `:seats`, the seats it holds."""
    return f"ds:process:{process}"


class Heartbeat:
    def __init__(self, client: redis.Redis, outage: Outage, clock: Callable[[], float], drop: DropSeat) -> None:
        self.process = secrets.token_hex(6)
        self._client, self._outage, self._clock, self._drop = client, outage, clock, drop
        self._key = process_key(self.process)
        self._lapsed: dict[str, float] = {}  # process → when this one first saw its heartbeat missing

    @property
    def seats(self) -> str:
        """The seats this process holds, for whoever marks them away if it dies."""
        return f"{self._key}:seats"

    async def hold(self, code: str, student: str) -> None:
        async with self._outage.guard():
            await self._client.sadd(self.seats, f"{code} {student}")

    async def let_go(self, code: str, student: str) -> None:
        async with self._outage.guard():
            await self._client.srem(self.seats, f"{code} {student}")

    async def beat(self) -> None:
        """Beats until cancelled; Redis being away only skips beats."""
        while True:
            with contextlib.suppress(ClassroomUnavailable):
                async with self._outage.guard(), self._client.pipeline(transaction=False) as pipe:
                    pipe.set(self._key, "1", px=PROCESS_TTL_MS)
                    pipe.sadd(PROCESSES, self.process)
                    await pipe.execute()
            await asyncio.sleep(HEARTBEAT_S)

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self._client.delete(self._key)

    async def mark_dead_away(self) -> None:
        """Seats held by a process that stopped beating wait, away, for their students."""
        async with self._outage.guard():
            processes = [text(p) for p in await self._client.smembers(PROCESSES)]
            async with self._client.pipeline(transaction=False) as pipe:
                for process in processes:
                    pipe.exists(process_key(process))
                alive = await pipe.execute()
        now = self._clock()
        lapsed, self._lapsed = self._lapsed, {}
        for process, beating in zip(processes, alive):
            if beating or process == self.process:
                continue
            # Every heartbeat lapses while Redis is away, or restarts: a missing one counts only
            # once it has stayed missing for a heartbeat's lifetime, time for a live process to beat.
            since = lapsed.get(process, now)
            if now - since < PROCESS_TTL_MS / 1000:
                self._lapsed[process] = since
            else:
                await self._mark_away(process)

    async def _mark_away(self, process: str) -> None:
        async with self._outage.guard():
            if not await self._client.srem(PROCESSES, process):
                return  # another process is handling it
            seats = await self._client.smembers(f"{process_key(process)}:seats")
        for member in seats:
            code, student = text(member).split(" ")
            await self._drop(code, student, f"{process}:")
        async with self._outage.guard():
            await self._client.delete(f"{process_key(process)}:seats")
