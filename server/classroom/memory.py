"""Rooms in this process's memory: enough when one server process serves every class, and what
`make run` uses. `redisrooms.py` keeps the same contract across processes."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from server.classifier import Classification
from server.classroom import fanout, messages
from server.classroom.codes import new_code, new_secret, normalize_code, secret_matches
from server.classroom.fanout import Fanout
from server.classroom.names import MAX_NAME_LENGTH
from server.classroom.rooms import (
    Deliver,
    Departure,
    RoomFull,
    RoomGone,
    Seat,
    Tile,
    TooManyRooms,
    TooManyRoomsHere,
    View,
    Watch,
    name_key,
    unique_names,
)

Clock = Callable[[], float]


@dataclass
class Place:
    """A seat as the room keeps it: held by a connection, or away until `away_until`."""

    tile: Tile
    rejoin: str
    holder: str | None
    away_until: float | None = None

    def hold(self, holder: str) -> None:
        self.holder, self.away_until, self.tile.away = holder, None, False

    def wait_until(self, deadline: float) -> None:
        """Away: nobody holds the seat, and it is kept for its student until `deadline`."""
        self.holder, self.away_until, self.tile.away = None, deadline, True


class MemoryRoom:
    def __init__(
        self, code: str, secret: str, address: str, *, max_students: int, grace_s: float, clock: Clock
    ) -> None:
        self.code = code
        self.max_students = max_students
        self.address = address
        self.prompt: int | None = None
        self.closed: str | None = None
        self.claimed = False
        self._secret = secret
        self._grace_s = grace_s
        self._clock = clock
        self.created = self.last_active = clock()
        self._places: dict[str, Place] = {}
        self._names: dict[str, str] = {}
        self._tokens: dict[str, str] = {}
        self._fanout = Fanout()

    async def authenticate(self, secret: object) -> bool:
        if self.closed is None and secret_matches(self._secret, secret):
            self.claimed = True
            return True
        return False

    async def join(self, name: str, deliver: Deliver, rejoin: object = None) -> Seat:
        if self.closed is not None:
            raise RoomGone()
        holder = secrets.token_hex(8)
        student = self._tokens.get(rejoin) if isinstance(rejoin, str) else None
        if student is None:
            if len(self._places) >= self.max_students:
                raise RoomFull()
            name = next(
                n for n in unique_names(name, self.max_students, MAX_NAME_LENGTH) if name_key(n) not in self._names
            )
            student, token = secrets.token_hex(6), secrets.token_urlsafe(18)
            self._places[student] = Place(Tile(student, name), token, holder)
            self._names[name_key(name)] = self._tokens[token] = student
        place = self._places[student]
        place.hold(holder)
        self._fanout.hold(student, holder, deliver)
        self._touch()
        self._fanout.dispatch(fanout.tiles(changed=[student]))
        return Seat(self, student, place.tile.name, place.rejoin, holder, self.prompt)

    async def update(self, seat: Seat, result: Classification) -> None:
        place = self._held(seat)
        if place is None:
            return
        tile = place.tile
        tile.digit, tile.confidence, tile.preview_png = result.digit, result.confidence, result.preview_png
        self._touch()
        self._fanout.dispatch(fanout.tiles(changed=[seat.id]))

    async def release(self, seat: Seat, departure: Departure) -> None:
        place = self._held(seat)
        if place is None:
            return
        self._touch()
        if departure is Departure.LEFT:
            self._vacate(seat.id)
            return
        place.wait_until(self._clock() + self._grace_s)
        self._fanout.let_go(seat.id, seat.holder)
        self._fanout.dispatch(fanout.tiles(changed=[seat.id]))

    async def view(self) -> View:
        if self.closed is not None:
            raise RoomGone()
        return View(self.code, self.max_students, [place.tile for place in self._places.values()], self.prompt)

    async def watch(self) -> Watch:
        watch = Watch()
        self._fanout.watches.add(watch)
        self._touch()
        return watch

    async def unwatch(self, watch: Watch) -> None:
        self._fanout.watches.discard(watch)

    async def set_prompt(self, digit: int | None) -> None:
        self.prompt = digit
        self._touch()
        self._fanout.dispatch(fanout.tell(messages.prompt(digit)))
        self._fanout.dispatch(fanout.notify())

    async def clear_all(self) -> None:
        for place in self._places.values():
            place.tile.digit, place.tile.confidence, place.tile.preview_png = None, 0.0, None
        self._touch()
        self._fanout.dispatch(fanout.tiles(changed=list(self._places)))
        self._fanout.dispatch(fanout.tell(messages.clear_pad()))

    async def remove(self, student: str) -> bool:
        if student not in self._places:
            return False
        self._fanout.dispatch(fanout.tell(messages.removed(), to=student))
        self._touch()
        self._vacate(student)
        return True

    async def close(self, reason: str = "closed") -> bool:
        if self.closed is not None:
            return False
        self.closed = reason
        self._fanout.dispatch(fanout.closed(reason))
        self._places.clear()
        return True

    def remove_away(self, now: float) -> None:
        for student, place in list(self._places.items()):
            if place.away_until is not None and place.away_until <= now:
                self._vacate(student)

    def _held(self, seat: Seat) -> Place | None:
        place = self._places.get(seat.id)
        return place if place is not None and place.holder == seat.holder else None

    def _vacate(self, student: str) -> None:
        place = self._places.pop(student)
        self._names.pop(name_key(place.tile.name), None)
        self._tokens.pop(place.rejoin, None)
        if place.holder is not None:
            self._fanout.let_go(student, place.holder)
        self._fanout.dispatch(fanout.tiles(removed=[student]))

    def _touch(self) -> None:
        self.last_active = self._clock()


class MemoryRooms:
    def __init__(
        self,
        *,
        max_students: int,
        idle_s: float,
        max_rooms: int,
        grace_s: float,
        unclaimed_s: float,
        rooms_per_address: int,
        clock: Clock = time.monotonic,
    ) -> None:
        self.max_students = max_students
        self.idle_s = idle_s
        self.max_rooms = max_rooms
        self.grace_s = grace_s
        self.unclaimed_s = unclaimed_s
        self.rooms_per_address = rooms_per_address
        self._clock = clock
        self._rooms: dict[str, MemoryRoom] = {}

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def create(self, address: str) -> tuple[MemoryRoom, str]:
        await self.sweep()
        if len(self._rooms) >= self.max_rooms:
            raise TooManyRooms()
        if sum(room.address == address for room in self._rooms.values()) >= self.rooms_per_address:
            raise TooManyRoomsHere()
        code = new_code()
        while code in self._rooms:
            code = new_code()
        secret = new_secret()
        room = MemoryRoom(
            code, secret, address, max_students=self.max_students, grace_s=self.grace_s, clock=self._clock
        )
        self._rooms[code] = room
        return room, secret

    async def get(self, code: object) -> MemoryRoom | None:
        normalized = normalize_code(code)
        room = self._rooms.get(normalized) if normalized else None
        return room if room is not None and room.closed is None else None

    async def sweep(self) -> int:
        now = self._clock()
        closed = 0
        for room in list(self._rooms.values()):
            idle = room.last_active < now - self.idle_s
            unclaimed = not room.claimed and room.created < now - self.unclaimed_s
            if room.closed is None and (idle or unclaimed):
                await room.close("expired")
                closed += 1
            if room.closed is not None:
                del self._rooms[room.code]
            else:
                room.remove_away(now)
        return closed
