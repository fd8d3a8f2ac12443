"""What classroom mode runs in one server process: the rooms, the limits on guessing and on
creating rooms, and the task that closes rooms left idle."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from server.classroom.ratelimit import TokenBuckets
from server.classroom.rooms import MemoryRooms, Rooms
from server.config import Settings

logger = logging.getLogger(__name__)

# Ten wrong codes or secrets at once, then one every three seconds: a class mistyping its code
# never notices, a guesser gets ~1200 guesses an hour against ~10^12 codes.
GUESS_BURST = 10
GUESSES_PER_S = 1 / 3
# Rooms a teacher (one address) may create: twenty at once, then one every six seconds.
CREATE_BURST = 20
CREATES_PER_S = 1 / 6
MAX_EXPIRY_INTERVAL_S = 30.0


class Classroom:
    def __init__(self, rooms: Rooms, *, idle_s: float) -> None:
        self.rooms = rooms
        self.guesses = TokenBuckets(GUESS_BURST, GUESSES_PER_S)
        self.creations = TokenBuckets(CREATE_BURST, CREATES_PER_S)
        self._expiry_interval_s = min(MAX_EXPIRY_INTERVAL_S, idle_s / 4)
        self._expiry: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Classroom:
        idle_s = settings.room_idle_minutes * 60
        return cls(MemoryRooms(max_students=settings.room_max_students, idle_s=idle_s), idle_s=idle_s)

    def guessing_refused(self, address: str) -> bool:
        """True while `address` has used up its wrong guesses; it may not even try a right one."""
        return not self.guesses.available(address)

    def wrong_guess(self, address: str) -> None:
        self.guesses.take(address)

    def start(self) -> None:
        self._expiry = asyncio.create_task(self._expire_forever(), name="digitstream-room-expiry")

    async def stop(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._expiry

    async def _expire_forever(self) -> None:
        while True:
            await asyncio.sleep(self._expiry_interval_s)
            expired = self.rooms.expire_idle()
            if expired:
                logger.info("closed %d idle classroom(s)", expired)
