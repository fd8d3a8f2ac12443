"""Rooms in memory: who is in a class, each student's latest answer, and what every watching
dashboard has not been told yet.

`Rooms` is the interface the rest of the server uses. `MemoryRooms` keeps everything in this
process, which is enough when one server process serves the class; docs/classroom.md shows how
a shared broadcaster replaces it when several processes do.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from server.classifier import Classification
from server.classroom import messages
from server.classroom.codes import new_code, new_secret, normalize_code, secret_matches

Deliver = Callable[[dict[str, Any]], None]
DEFAULT_MAX_STUDENTS = 100
DEFAULT_IDLE_S = 30 * 60
DEFAULT_MAX_ROOMS = 1000


class RoomFull(Exception):
    pass


class TooManyRooms(Exception):
    pass


@dataclass
class Tile:
    """What a dashboard shows for one student."""

    id: str
    name: str
    digit: int | None = None
    confidence: float = 0.0
    preview_png: bytes | None = None


class Watch:
    """One dashboard's view of a room: the tiles changed or removed since its last delta.
    Sets, not queues, so a slow dashboard gets fewer, larger deltas instead of a backlog."""

    def __init__(self) -> None:
        self.changed: set[str] = set()
        self.removed: set[str] = set()
        self.closed: str | None = None
        self._dirty = asyncio.Event()

    def mark(self) -> None:
        self._dirty.set()

    async def wait(self) -> None:
        await self._dirty.wait()

    def take(self) -> tuple[set[str], set[str]]:
        changed, removed = self.changed, self.removed
        self.changed, self.removed = set(), set()
        self._dirty.clear()
        return changed, removed


class Seat:
    """A student's place in a room, held by their /ws connection."""

    def __init__(self, room: Room, tile: Tile, deliver: Deliver) -> None:
        self.room = room
        self.tile = tile
        self.deliver = deliver

    def update(self, result: Classification) -> None:
        self.room.update(self, result)

    def leave(self) -> None:
        self.room.leave(self.tile.id)


class Room:
    def __init__(self, code: str, secret: str, *, max_students: int, clock: Callable[[], float]) -> None:
        self.code = code
        self.max_students = max_students
        self.prompt: int | None = None
        self.closed: str | None = None
        self._secret = secret
        self._clock = clock
        self.last_active = clock()
        self._seats: dict[str, Seat] = {}
        self._watches: set[Watch] = set()

    @property
    def tiles(self) -> list[Tile]:
        return [seat.tile for seat in self._seats.values()]

    @property
    def matching(self) -> int:
        """Students whose current prediction is the prompted digit."""
        if self.prompt is None:
            return 0
        return sum(tile.digit == self.prompt for tile in self.tiles)

    def tile(self, student: str) -> Tile | None:
        seat = self._seats.get(student)
        return seat.tile if seat else None

    def authenticate(self, secret: object) -> bool:
        return self.closed is None and secret_matches(self._secret, secret)

    def join(self, name: str, deliver: Deliver) -> Seat:
        if len(self._seats) >= self.max_students:
            raise RoomFull()
        seat = Seat(self, Tile(secrets.token_hex(6), name), deliver)
        self._seats[seat.tile.id] = seat
        self._touch()
        self._changed(seat.tile.id)
        return seat

    def watch(self) -> Watch:
        watch = Watch()
        self._watches.add(watch)
        self._touch()
        return watch

    def unwatch(self, watch: Watch) -> None:
        self._watches.discard(watch)

    def set_prompt(self, digit: int | None) -> None:
        self.prompt = digit
        self._touch()
        self._tell_students(messages.prompt(digit))
        self._notify()

    def clear_all(self) -> None:
        """Students clear their pads; the tiles go blank now rather than when each blank answer arrives."""
        for seat in self._seats.values():
            seat.tile.digit, seat.tile.confidence, seat.tile.preview_png = None, 0.0, None
            self._changed(seat.tile.id)
        self._touch()
        self._tell_students(messages.clear_pad())

    def remove(self, student: str) -> bool:
        seat = self._seats.get(student)
        if seat is None:
            return False
        seat.deliver(messages.removed())
        self._touch()
        self.leave(student)
        return True

    def close(self, reason: str = "closed") -> None:
        if self.closed is not None:
            return
        self.closed = reason
        self._tell_students(messages.room_closed(reason))
        self._seats.clear()
        for watch in self._watches:
            watch.closed = reason
            watch.mark()

    def update(self, seat: Seat, result: Classification) -> None:
        if self._seats.get(seat.tile.id) is not seat:
            return
        tile = seat.tile
        tile.digit, tile.confidence, tile.preview_png = result.digit, result.confidence, result.preview_png
        self._touch()
        self._changed(tile.id)

    def leave(self, student: str) -> None:
        if self._seats.pop(student, None) is None:
            return
        self._touch()
        for watch in self._watches:
            watch.changed.discard(student)
            watch.removed.add(student)
            watch.mark()

    def _changed(self, student: str) -> None:
        for watch in self._watches:
            watch.changed.add(student)
            watch.mark()

    def _notify(self) -> None:
        """Something besides the tiles changed (the prompt): dashboards send a delta anyway."""
        for watch in self._watches:
            watch.mark()

    def _tell_students(self, message: dict[str, Any]) -> None:
        for seat in list(self._seats.values()):
            seat.deliver(message)

    def _touch(self) -> None:
        self.last_active = self._clock()


class Rooms(Protocol):
    """What the routes and the student connections need from wherever rooms live."""

    def create(self) -> tuple[Room, str]:
        """A new room and its teacher secret. Raises TooManyRooms."""

    def get(self, code: object) -> Room | None:
        """The open room with that code, as typed by a person; None if there is none."""

    def expire_idle(self) -> int:
        """Close rooms inactive for too long; returns how many."""


class MemoryRooms:
    def __init__(
        self, *, max_students: int = DEFAULT_MAX_STUDENTS, idle_s: float = DEFAULT_IDLE_S,
        max_rooms: int = DEFAULT_MAX_ROOMS, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_students = max_students
        self.idle_s = idle_s
        self.max_rooms = max_rooms
        self._clock = clock
        self._rooms: dict[str, Room] = {}

    def create(self) -> tuple[Room, str]:
        self.expire_idle()
        if len(self._rooms) >= self.max_rooms:
            raise TooManyRooms()
        code = new_code()
        while code in self._rooms:
            code = new_code()
        secret = new_secret()
        room = Room(code, secret, max_students=self.max_students, clock=self._clock)
        self._rooms[code] = room
        return room, secret

    def get(self, code: object) -> Room | None:
        normalized = normalize_code(code)
        room = self._rooms.get(normalized) if normalized else None
        if room is not None and room.closed is not None:
            del self._rooms[room.code]
            return None
        return room

    def expire_idle(self) -> int:
        deadline = self._clock() - self.idle_s
        expired = 0
        for room in list(self._rooms.values()):
            if room.closed is None and room.last_active < deadline:
                room.close("expired")
                expired += 1
            if room.closed is not None:
                del self._rooms[room.code]
        return expired
