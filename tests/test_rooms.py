"""The `Rooms` contract, run against both implementations: in memory, and in a real
redis-server (tests/redisserver.py). Time is a test clock, so expiry and grace are exact."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis

from server.classifier import EMPTY, Classification
from server.classroom import messages
from server.classroom.memory import MemoryRooms
from server.classroom.names import MAX_NAME_LENGTH
from server.classroom.redisrooms import RedisRooms
from server.classroom.rooms import (
    Departure,
    Room,
    RoomFull,
    Rooms,
    Seat,
    Tile,
    TooManyRooms,
    TooManyRoomsHere,
    View,
    Watch,
)
from tests.redisserver import RedisServer

EVENT_TIMEOUT_S = 10
ADDRESS = "192.0.2.1"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def result(digit: int | None) -> Classification:
    if digit is None:
        return EMPTY
    return Classification.of(tuple(0.91 if d == digit else 0.01 for d in range(10)), b"png")


class Inbox:
    """What a student connection is told, and a way to wait for it."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()

    def __call__(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        self._arrived.set()

    async def until(self, done: Callable[[list[dict[str, Any]]], bool]) -> None:
        async with asyncio.timeout(EVENT_TIMEOUT_S):
            while not done(self.messages):
                self._arrived.clear()
                await self._arrived.wait()

    @property
    def types(self) -> list[str]:
        return [message["type"] for message in self.messages]


class Seen:
    """A dashboard's watch, read the way the dashboard reads it, until some state arrives."""

    def __init__(self, watch: Watch) -> None:
        self.watch = watch
        self.changed: set[str] = set()
        self.removed: set[str] = set()

    async def until(self, done: Callable[[Seen], bool]) -> None:
        async with asyncio.timeout(EVENT_TIMEOUT_S):
            while not done(self):
                await self.watch.wait()
                changed, removed, _ = self.watch.take()
                self.changed = (self.changed - removed) | changed
                self.removed |= removed


async def tile_in(room: Room, student: str) -> Tile:
    """The student's tile as a dashboard would see it now."""
    tile = (await room.view()).tile(student)
    assert tile is not None, f"no tile for {student}"
    return tile


# A room's limits for these tests: roomy enough that only the tests about a limit reach it.
SIZES: dict[str, Any] = {
    "max_students": 100,
    "idle_s": 600,
    "max_rooms": 1000,
    "grace_s": 60,
    "unclaimed_s": 300,
    "rooms_per_address": 20,
}


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(Path(tmp_path_factory.mktemp("redis"))).start()
    yield server
    server.stop()


@pytest.fixture(params=["memory", "redis"])
async def make_rooms(request: pytest.FixtureRequest) -> AsyncIterator[Callable[..., Awaitable[Rooms]]]:
    made: list[Rooms] = []
    if request.param == "redis":
        url = request.getfixturevalue("redis_server").url
        async with redis.Redis.from_url(url) as client:
            await client.flushdb()

    async def make(**limits: Any) -> Rooms:
        sizes: dict[str, Any] = {**SIZES, "clock": Clock()}
        sizes.update(limits)
        rooms: Rooms = RedisRooms(url, **sizes) if request.param == "redis" else MemoryRooms(**sizes)
        await rooms.start()
        made.append(rooms)
        return rooms

    yield make
    for rooms in made:
        await rooms.stop()


async def test_a_room_caps_its_students(make_rooms) -> None:
    rooms = await make_rooms(max_students=2)
    room, _ = await rooms.create(ADDRESS)
    await room.join("a", Inbox())
    await room.join("b", Inbox())
    with pytest.raises(RoomFull):
        await room.join("c", Inbox())


async def test_rooms_are_found_by_code_as_people_type_it(make_rooms) -> None:
    rooms = await make_rooms()
    room, secret = await rooms.create(ADDRESS)
    found = await rooms.get(f" {room.code[:4].lower()}-{room.code[4:]} ")
    assert found is not None and found.code == room.code
    assert await rooms.get("23456789") is None and await rooms.get(None) is None
    assert await found.authenticate(secret)
    assert not await found.authenticate(secret + "x") and not await found.authenticate(None)


async def test_updates_between_ticks_become_one_delta_with_the_changed_tiles(make_rooms) -> None:
    rooms = await make_rooms()
    room, _ = await rooms.create(ADDRESS)
    seats = [await room.join(f"s{i}", Inbox()) for i in range(5)]
    seen = Seen(await room.watch())
    for _ in range(10):
        for seat in seats[:3]:
            await seat.update(result(7))
    await seats[4].release(Departure.LEFT)
    await seen.until(lambda s: s.changed == {seat.id for seat in seats[:3]} and s.removed == {seats[4].id})
    view = await room.view()
    delta = messages.delta(view, seen.changed, seen.removed, shown={seat.id for seat in seats})
    assert [tile["name"] for tile in delta["changed"]] == ["s0", "s1", "s2"], "in joining order"
    assert all(tile["digit"] == 7 and tile["preview"] for tile in delta["changed"])
    assert delta["removed"] == [seats[4].id] and delta["students"] == 4
    assert [tile.name for tile in view.tiles] == ["s0", "s1", "s2", "s3"], "tiles keep the joining order"


def test_a_delta_leaves_the_page_holding_the_views_tiles_whatever_the_events_said() -> None:
    # With Redis, the view can be ahead of the events a process has heard: c joined and b left
    # already, but the only event so far says a changed, and x, removed, was never shown.
    view = View("ABCD2345", 100, [Tile("a", "A", digit=3), Tile("c", "C")], prompt=3)
    delta = messages.delta(view, changed={"a"}, removed={"x"}, shown={"a", "b"})
    page: dict[str, object] = {"a": {}, "b": {}}
    page.update({tile["id"]: tile for tile in delta["changed"]})
    for student in delta["removed"]:
        page.pop(student, None)
    assert sorted(page) == ["a", "c"] and delta["students"] == 2 and delta["matching"] == 1
    assert [tile["id"] for tile in delta["changed"]] == ["a", "c"] and delta["removed"] == ["b", "x"]


async def test_updates_from_a_whole_class_at_once_all_land(make_rooms) -> None:
    rooms = await make_rooms()
    room, _ = await rooms.create(ADDRESS)
    seats = [await room.join(f"s{i}", Inbox()) for i in range(40)]
    await asyncio.gather(*(seat.update(result(i % 10)) for i, seat in enumerate(seats)))
    await asyncio.gather(*(seat.update(result(9 - i % 10)) for i, seat in enumerate(seats)))
    assert [tile.digit for tile in (await room.view()).tiles] == [9 - i % 10 for i in range(40)]


async def test_a_prompt_reaches_every_student_and_counts_who_matches(make_rooms) -> None:
    rooms = await make_rooms()
    room, _ = await rooms.create(ADDRESS)
    inboxes = [Inbox() for _ in range(3)]
    seats = [await room.join(f"s{i}", inbox) for i, inbox in enumerate(inboxes)]
    await seats[0].update(result(4))
    await seats[1].update(result(4))
    await seats[2].update(result(1))
    await room.set_prompt(4)
    for inbox in inboxes:
        await inbox.until(lambda m: {"type": "prompt", "digit": 4} in m)
    view = await room.view()
    assert view.prompt == 4 and view.matching == 2
    late = await room.join("late", Inbox())
    assert late.prompt == 4, "a student who joins now is told the prompt in `joined`"
    await room.clear_all()
    for inbox in inboxes:
        await inbox.until(lambda m: {"type": "clear_pad"} in m)
    view = await room.view()
    assert all(tile.digit is None and tile.preview_png is None for tile in view.tiles) and view.matching == 0


async def test_names_are_made_unique_in_a_room(make_rooms) -> None:
    rooms = await make_rooms()
    room, _ = await rooms.create(ADDRESS)
    seats = [await room.join(name, Inbox()) for name in ("Ana", "Ana", "ana", "Ben")]
    assert [seat.name for seat in seats] == ["Ana", "Ana 2", "ana 3", "Ben"]
    await seats[1].release(Departure.LEFT)
    assert (await room.join("Ana", Inbox())).name == "Ana 2", "a name that was given up is free again"
    long = "x" * MAX_NAME_LENGTH
    first, second = await room.join(long, Inbox()), await room.join(long, Inbox())
    assert first.name == long and second.name == "x" * (MAX_NAME_LENGTH - 2) + " 2"


async def test_a_dropped_seat_waits_away_and_comes_back_with_its_token(make_rooms) -> None:
    clock = Clock()
    rooms = await make_rooms(grace_s=60, clock=clock)
    room, _ = await rooms.create(ADDRESS)
    await room.join("first", Inbox())
    seat = await room.join("Ana", Inbox())
    await room.join("last", Inbox())
    seen = Seen(await room.watch())
    await seat.release(Departure.DROPPED)
    await seen.until(lambda s: seat.id in s.changed)
    assert [(t.name, t.away) for t in (await room.view()).tiles] == [("first", False), ("Ana", True), ("last", False)]

    clock.now += 59
    await rooms.sweep()
    inbox = Inbox()
    again = await room.join("someone else", inbox, rejoin=seat.rejoin)
    assert (again.id, again.name, again.rejoin) == (seat.id, "Ana", seat.rejoin)
    assert [(t.name, t.away) for t in (await room.view()).tiles][1] == ("Ana", False), "same place in the order"
    await seat.update(result(3))  # the old connection no longer feeds the tile
    await again.update(result(5))
    assert (await tile_in(room, seat.id)).digit == 5
    await room.set_prompt(2)
    await inbox.until(lambda m: bool(m) and m[-1] == {"type": "prompt", "digit": 2})

    await again.release(Departure.DROPPED)
    clock.now += 61
    await rooms.sweep()
    await seen.until(lambda s: seat.id in s.removed)
    assert [t.name for t in (await room.view()).tiles] == ["first", "last"]
    fresh = await room.join("Ana", Inbox(), rejoin=seat.rejoin)
    assert fresh.id != seat.id, "a seat whose grace ran out is not given back"


async def test_a_student_who_leaves_or_is_removed_is_gone_at_once(make_rooms) -> None:
    rooms = await make_rooms()
    room, _ = await rooms.create(ADDRESS)
    leaver, removed_inbox = await room.join("leaver", Inbox()), Inbox()
    removed = await room.join("removed", removed_inbox)
    seen = Seen(await room.watch())
    await leaver.release(Departure.LEFT)
    assert await room.remove(removed.id)
    assert not await room.remove("nobody")
    await removed_inbox.until(lambda m: {"type": "removed"} in m)
    await seen.until(lambda s: s.removed == {leaver.id, removed.id})
    assert (await room.view()).tiles == []
    assert (await room.join("x", Inbox(), rejoin=leaver.rejoin)).id != leaver.id


async def test_closing_tells_everyone_and_the_code_stops_working(make_rooms) -> None:
    rooms = await make_rooms()
    room, _ = await rooms.create(ADDRESS)
    inbox = Inbox()
    await room.join("a", inbox)
    watch = await room.watch()
    assert await room.close("closed")
    assert not await room.close("closed"), "only one close tells anyone"
    await inbox.until(lambda m: m == [{"type": "room_closed", "reason": "closed"}])
    async with asyncio.timeout(EVENT_TIMEOUT_S):
        await watch.wait()
    assert watch.closed == "closed"
    assert await rooms.get(room.code) is None


async def test_idle_rooms_and_rooms_no_dashboard_opened_expire(make_rooms) -> None:
    clock = Clock()
    rooms = await make_rooms(idle_s=60, unclaimed_s=30, clock=clock)
    idle, idle_secret = await rooms.create(ADDRESS)
    busy, busy_secret = await rooms.create(ADDRESS)
    unclaimed, _ = await rooms.create(ADDRESS)
    assert await idle.authenticate(idle_secret) and await busy.authenticate(busy_secret)
    inbox = Inbox()
    await idle.join("a", inbox)
    watch = await idle.watch()
    clock.now += 31
    assert await rooms.sweep() == 1, "the room nobody opened a dashboard for"
    assert await rooms.get(unclaimed.code) is None
    clock.now += 20
    await busy.set_prompt(3)
    clock.now += 20
    assert await rooms.sweep() == 1
    await inbox.until(lambda m: m == [{"type": "room_closed", "reason": "expired"}])
    async with asyncio.timeout(EVENT_TIMEOUT_S):
        await watch.wait()
    assert watch.closed == "expired"
    assert await rooms.get(idle.code) is None and await rooms.get(busy.code) is not None


async def test_open_rooms_are_capped_per_address_and_in_all(make_rooms) -> None:
    rooms = await make_rooms(rooms_per_address=2, max_rooms=3)
    first, _ = await rooms.create(ADDRESS)
    await rooms.create(ADDRESS)
    with pytest.raises(TooManyRoomsHere):
        await rooms.create(ADDRESS)
    await first.close()
    await rooms.create(ADDRESS)
    await rooms.create("192.0.2.2")
    with pytest.raises(TooManyRooms):
        await rooms.create("192.0.2.3")


async def test_a_seat_held_by_a_newer_connection_ignores_the_older(make_rooms) -> None:
    rooms = await make_rooms()
    room, _ = await rooms.create(ADDRESS)
    old_inbox, new_inbox = Inbox(), Inbox()
    old = await room.join("Ana", old_inbox)
    new = await room.join("Ana", new_inbox, rejoin=old.rejoin)
    await old.release(Departure.LEFT)  # the old connection closing late must not free the seat
    assert [t.id for t in (await room.view()).tiles] == [old.id]
    await room.set_prompt(6)
    await new_inbox.until(lambda m: {"type": "prompt", "digit": 6} in m)
    assert old_inbox.messages == []
    assert isinstance(new, Seat)
