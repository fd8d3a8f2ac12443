"""Rooms: who is in a class, each student's latest answer, and what every watching dashboard has
not been told yet.

`Rooms` and `Room` are the one seam the rest of the server uses. Two implementations keep the
same contract: `memory.MemoryRooms` holds everything in this process (the default), and
`redisrooms.RedisRooms` keeps it in Redis so that several processes serve one class. Every
method that may reach another process is async; the local parts (a dashboard's `Watch`, the
seats held by this process's connections) live in `fanout.Fanout` for both.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from server.classifier import Classification
from server.errors import ClientError

Deliver = Callable[[dict[str, Any]], None]


class RoomFull(Exception):
    pass


class RoomGone(Exception):
    """The room was closed (or lost) while someone still held it."""


class TooManyRooms(Exception):
    pass


class TooManyRoomsHere(Exception):
    """One address already has as many open rooms as it may."""


class ClassroomUnavailable(ClientError):
    code = "classroom_unavailable"
    message = "Classes are unavailable right now; drawing still works. Try again in a moment."
    http_status = 503


class Departure(enum.Enum):
    LEFT = "left"  # the student sent `leave` or joined another room: the seat goes now
    DROPPED = "dropped"  # the connection ended: the seat waits, away, for a rejoin


@dataclass
class Tile:
    """What a dashboard shows for one student."""

    id: str
    name: str
    digit: int | None = None
    confidence: float = 0.0
    preview_png: bytes | None = None
    away: bool = False


@dataclass
class View:
    """A room as a dashboard draws it: tiles in joining order, and the prompt."""

    code: str
    max_students: int
    tiles: list[Tile]
    prompt: int | None

    @property
    def matching(self) -> int:
        """Students whose current prediction is the prompted digit."""
        if self.prompt is None:
            return 0
        return sum(tile.digit == self.prompt for tile in self.tiles)

    @property
    def ids(self) -> set[str]:
        return {tile.id for tile in self.tiles}

    def tile(self, student: str) -> Tile | None:
        return next((tile for tile in self.tiles if tile.id == student), None)


class Changes(NamedTuple):
    changed: set[str]
    removed: set[str]
    every_tile: bool  # what changed is not known: send every tile


class Watch:
    """One dashboard's view of a room: the tiles changed or removed since its last delta.
    Sets, not queues, so a slow dashboard gets fewer, larger deltas instead of a backlog."""

    def __init__(self) -> None:
        self.changed: set[str] = set()
        self.removed: set[str] = set()
        self.closed: str | None = None
        self._every_tile = False
        self._dirty = asyncio.Event()

    def mark(self) -> None:
        self._dirty.set()

    def redraw(self) -> None:
        """Events may have been lost: the next delta sends every tile again."""
        self._every_tile = True
        self.mark()

    async def wait(self) -> None:
        await self._dirty.wait()

    def take(self) -> Changes:
        changes = Changes(self.changed, self.removed, self._every_tile)
        self.changed, self.removed, self._every_tile = set(), set(), False
        self._dirty.clear()
        return changes


@dataclass
class Seat:
    """A student's place in a room as one connection holds it. `rejoin` is the token that
    gets the same seat back from any process while the seat is kept; `holder` tells this
    connection's hold from a later one's."""

    room: Room
    id: str
    name: str
    rejoin: str
    holder: str = field(repr=False)
    prompt: int | None = None  # the room's prompt when the seat was taken

    async def update(self, result: Classification) -> None:
        await self.room.update(self, result)

    async def release(self, departure: Departure) -> None:
        await self.room.release(self, departure)


class Room(Protocol):
    code: str
    max_students: int

    async def authenticate(self, secret: object) -> bool:
        """The teacher's secret; a right one also marks the room as having had a dashboard."""

    async def join(self, name: str, deliver: Deliver, rejoin: object = None) -> Seat:
        """A seat for `name` (made unique in the room), or the seat `rejoin` names if it is
        still kept. Raises RoomFull, RoomGone."""

    async def update(self, seat: Seat, result: Classification) -> None:
        """The seat's tile shows `result`; ignored once another connection holds the seat."""

    async def release(self, seat: Seat, departure: Departure) -> None: ...

    async def view(self) -> View:
        """Raises RoomGone."""

    async def watch(self) -> Watch: ...

    async def unwatch(self, watch: Watch) -> None: ...

    async def set_prompt(self, digit: int | None) -> None: ...

    async def clear_all(self) -> None:
        """Students clear their pads; the tiles go blank now rather than when each blank answer arrives."""

    async def remove(self, student: str) -> bool: ...

    async def close(self, reason: str = "closed") -> bool:
        """True for the call that closed it."""


class Rooms(Protocol):
    """What the routes and the student connections need from wherever rooms live."""

    max_students: int

    async def create(self, address: str) -> tuple[Room, str]:
        """A new room and its teacher secret. Raises TooManyRooms, TooManyRoomsHere."""

    async def get(self, code: object) -> Room | None:
        """The open room with that code, as typed by a person; None if there is none."""

    async def sweep(self) -> int:
        """Close idle rooms and rooms no dashboard opened in time; remove seats away past their
        grace. Returns how many rooms were closed."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def unique_names(name: str, limit: int, max_length: int) -> list[str]:
    """`name`, then "name 2", "name 3"… (trimmed so each fits `max_length`): the first of
    these nobody in the room has is the student's display name. `limit` + 1 candidates always
    leave one free in a room of `limit` students."""
    candidates = [name]
    for number in range(2, limit + 2):
        suffix = f" {number}"
        candidates.append(name[: max_length - len(suffix)].rstrip() + suffix)
    return candidates


def name_key(name: str) -> str:
    """Two names that differ only in case are the same name on a projector."""
    return name.casefold()
