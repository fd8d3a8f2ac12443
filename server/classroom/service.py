"""What classroom mode runs in one server process: the rooms (in memory, or in Redis when
`--redis-url` is set), the limits on guessing and on creating rooms, and the task that sweeps
away idle rooms and seats whose students did not come back.

Guessing: a right code or secret is looked up before any limit, so others' wrong guesses never
keep a student or a teacher out. Wrong guesses spend the socket's own budget, the address's
(sized for a class behind one NAT) and, for teacher secrets, the room's; a socket that spent its
own, or guessed while its address had none left, waits before it may try again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

from server.classroom.codes import normalize_code
from server.classroom.memory import MemoryRooms
from server.classroom.ratelimit import Limiter, MemoryLimiter, TokenBuckets
from server.classroom.rooms import ClassroomUnavailable, Rooms
from server.config import Settings

logger = logging.getLogger(__name__)

MAX_SWEEP_INTERVAL_S = 5.0
FINISH_TIMEOUT_S = 2.0
SOCKET = "socket"


class Classroom:
    def __init__(
        self, rooms: Rooms, settings: Settings, *, guesses: Limiter, secret_guesses: Limiter, creations: Limiter
    ) -> None:
        self.rooms = rooms
        self.guesses = guesses  # wrong codes and secrets, per address
        self.secret_guesses = secret_guesses  # wrong secrets, per room code tried
        self.creations = creations
        self._per_socket = settings.guesses_per_socket
        self._joins_per_socket = settings.joins_per_socket
        self._refill_per_s = 1 / settings.guess_refill_s
        limits = (settings.room_idle_minutes * 60, settings.seat_grace_s, settings.room_unclaimed_minutes * 60)
        self._sweep_s = min(MAX_SWEEP_INTERVAL_S, *(limit / 4 for limit in limits))
        self._sweeper: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[Any]] = set()

    @classmethod
    def from_settings(cls, settings: Settings) -> Classroom:
        sizes: dict[str, Any] = {
            "max_students": settings.room_max_students,
            "idle_s": settings.room_idle_minutes * 60,
            "max_rooms": settings.max_rooms,
            "grace_s": settings.seat_grace_s,
            "unclaimed_s": settings.room_unclaimed_minutes * 60,
            "rooms_per_address": settings.rooms_per_address,
        }
        refill = 1 / settings.guess_refill_s
        if not settings.redis_url:
            return cls(
                MemoryRooms(**sizes),
                settings,
                guesses=MemoryLimiter(TokenBuckets(settings.guesses_per_address, refill)),
                secret_guesses=MemoryLimiter(TokenBuckets(settings.guesses_per_room, refill)),
                creations=MemoryLimiter(
                    TokenBuckets(settings.room_creation_burst, 1 / settings.room_creation_refill_s)
                ),
            )
        from server.classroom.ratelimit import RedisLimiter
        from server.classroom.redisrooms import RedisRooms

        rooms = RedisRooms(settings.redis_url, **sizes)
        return cls(
            rooms,
            settings,
            guesses=RedisLimiter(rooms, "guesses", settings.guesses_per_address, refill),
            secret_guesses=RedisLimiter(rooms, "secrets", settings.guesses_per_room, refill),
            creations=RedisLimiter(
                rooms, "creations", settings.room_creation_burst, 1 / settings.room_creation_refill_s
            ),
        )

    # -- guessing -------------------------------------------------------------------------

    def socket_guesses(self) -> TokenBuckets:
        """One connection's own budget of wrong codes."""
        return TokenBuckets(self._per_socket, self._refill_per_s, max_keys=1)

    def socket_joins(self) -> TokenBuckets:
        """One connection's budget of joins, right or wrong: each costs the room store a seat."""
        return TokenBuckets(self._joins_per_socket, self._refill_per_s, max_keys=1)

    def join_wait(self, joins: TokenBuckets) -> float | None:
        """Spend one of a connection's joins; the seconds to wait once they are spent, or None."""
        return None if joins.take(SOCKET) else joins.retry_after(SOCKET)

    def socket_wait(self, socket: TokenBuckets) -> float | None:
        """Seconds this socket must wait before its next try, or None."""
        return None if socket.available(SOCKET) else socket.retry_after(SOCKET)

    async def wrong_code(self, address: str, socket: TokenBuckets | None = None) -> float | None:
        """Spend a wrong guess; the seconds to wait (answer `rate_limited`) once a budget is spent."""
        if socket is not None:
            socket.take(SOCKET)
        wait = await self.guesses.take(address)
        if socket is not None and wait is not None:
            socket.drain(SOCKET)
        return wait

    async def wrong_secret(self, address: str, code: object) -> float | None:
        normalized = normalize_code(code)
        per_room = await self.secret_guesses.take(normalized) if normalized else None
        per_address = await self.guesses.take(address)
        waits = [wait for wait in (per_room, per_address) if wait is not None]
        return max(waits) if waits else None

    # -- lifecycle ------------------------------------------------------------------------

    def spawn(self, job: Coroutine[Any, Any, Any]) -> None:
        """Room I/O a connection starts but cannot wait for (its seat going away when it closes)."""
        task = asyncio.create_task(self._quietly(job), name="digitstream-room-io")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def start(self) -> None:
        await self.rooms.start()
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="digitstream-room-sweep")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=FINISH_TIMEOUT_S)
        await self.rooms.stop()

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_s)
            try:
                expired = await self.rooms.sweep()
            except ClassroomUnavailable:
                continue  # logged once by the rooms; sweeping resumes when Redis does
            except Exception:
                logger.exception("sweeping classrooms failed")
                continue
            if expired:
                logger.info("closed %d idle or unclaimed classroom(s)", expired)

    @staticmethod
    async def _quietly(job: Coroutine[Any, Any, Any]) -> None:
        try:
            await job
        except ClassroomUnavailable:
            pass  # logged once where Redis failed
        except Exception:
            logger.exception("a classroom update failed")
