"""Only in Redis: the processes that serve one class through a real redis-server, when one
stops, only seems to (slow, or Redis was away), a connection's last tile write comes late,
Redis misses a release, or the teacher acts the moment a student joins elsewhere. Time is a
test clock, so a heartbeat's lifetime passes exactly."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis

from server.classroom import messages
from server.classroom.bus import Bus, Outage
from server.classroom.heartbeat import PROCESS_TTL_MS, process_key
from server.classroom.redisrooms import RedisRooms
from server.classroom.rooms import ClassroomUnavailable, Departure
from tests.redisserver import RedisServer
from tests.test_rooms import ADDRESS, SIZES, Clock, Inbox, result, tile_in

HEARTBEAT_LIFETIME_S = PROCESS_TTL_MS / 1000


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(Path(tmp_path_factory.mktemp("redis"))).start()
    yield server
    server.stop()


@pytest.fixture
async def processes(redis_server: RedisServer) -> AsyncIterator[tuple[RedisRooms, RedisRooms, Clock]]:
    """Two processes' rooms on one Redis; the second one's sweeps run on the test clock."""
    async with redis.Redis.from_url(redis_server.url) as client:
        await client.flushdb()
    clock = Clock()
    first, second = RedisRooms(redis_server.url, **SIZES), RedisRooms(redis_server.url, **SIZES, clock=clock)
    await first.start()
    await second.start()
    yield first, second, clock
    await first.stop()
    await second.stop()


async def test_seats_of_a_process_that_stops_go_away_and_one_taken_for_dead_takes_them_back(processes) -> None:
    first, second, clock = processes
    room, _ = await first.create(ADDRESS)
    seat = await room.join("Ana", Inbox())
    other_view = await second.get(room.code)
    assert other_view is not None
    # What another process's sweep does once this one's heartbeat lapses.
    await second.drop(room.code, seat.id, f"{first.heartbeat.process}:", reclaimable=True)
    assert (await tile_in(other_view, seat.id)).away
    await seat.update(result(8))  # it was only slow: its next answer takes the seat back
    tile = await tile_in(other_view, seat.id)
    assert (tile.away, tile.digit) == (False, 8)
    await first.stop()  # stops beating: the survivor's sweeps mark the seat away
    await second.sweep()
    assert not (await tile_in(other_view, seat.id)).away, "one missing heartbeat is no proof"
    clock.now += HEARTBEAT_LIFETIME_S
    await second.sweep()
    assert (await tile_in(other_view, seat.id)).away


async def test_a_heartbeat_that_lapsed_while_redis_was_away_marks_no_seat_away(processes, redis_server) -> None:
    first, second, clock = processes
    room, _ = await first.create(ADDRESS)
    seat = await room.join("Ana", Inbox())
    heartbeat = process_key(first.heartbeat.process)
    async with redis.Redis.from_url(redis_server.url) as client:
        await client.delete(heartbeat)  # as it lapses while Redis is away or restarts
        await second.sweep()
        await client.set(heartbeat, "1", px=PROCESS_TTL_MS)  # the live process beats again
    clock.now += HEARTBEAT_LIFETIME_S
    await second.sweep()
    assert not (await tile_in(room, seat.id)).away


async def test_a_tile_written_after_its_connection_ended_leaves_the_seat_away(processes) -> None:
    first, _, _ = processes
    room, _ = await first.create(ADDRESS)
    seat = await room.join("Ana", Inbox())
    await seat.release(Departure.DROPPED)  # the tab closed mid-stroke
    await seat.update(result(3))  # its last answer, written a moment later
    assert (await tile_in(room, seat.id)).away


async def test_a_process_lists_only_the_seats_it_holds(processes, redis_server) -> None:
    first, _, _ = processes
    room, _ = await first.create(ADDRESS)
    async with redis.Redis.from_url(redis_server.url) as client:
        for departure in (Departure.LEFT, Departure.DROPPED, Departure.LEFT):
            seat = await room.join("Ana", Inbox())
            assert await client.scard(first.heartbeat.seats) == 1
            await seat.release(departure)
        assert await client.scard(first.heartbeat.seats) == 0


async def test_a_seat_taken_back_here_while_its_old_socket_lingered_is_still_swept(processes) -> None:
    """A phone reconnects to the same process before the server notices its old socket; when
    that one ends, the seat must stay on the process's list, or its death would leave the
    tile present for good."""
    first, second, clock = processes
    room, _ = await first.create(ADDRESS)
    old = await room.join("Ana", Inbox())
    new = await room.join("Ana", Inbox(), old.rejoin)
    await old.release(Departure.DROPPED)
    assert new.id == old.id and not (await tile_in(room, new.id)).away
    other_view = await second.get(room.code)
    assert other_view is not None
    await first.stop()
    await second.sweep()
    clock.now += HEARTBEAT_LIFETIME_S
    await second.sweep()
    assert (await tile_in(other_view, new.id)).away


async def test_a_room_whose_last_seat_here_went_while_redis_was_asked_is_passed_over(redis_server) -> None:
    async with redis.Redis.from_url(redis_server.url) as client:

        async def rooms_lost(codes: list[str]) -> list[str]:
            await bus.sync("ABCD2345")  # meanwhile its last seat here went: the room is forgotten
            return codes

        bus = Bus(client, Outage(redis_server.url), "ds:process:test", rooms_lost)
        bus.fanout("ABCD2345")
        # Redis came back empty: every room here was lost. A room no longer here must be
        # passed over: an error would end this process's room events for good, unlogged.
        await bus._recovered()


async def unavailable(*args: object, **kwargs: object) -> None:
    raise ClassroomUnavailable()


async def test_a_leave_redis_missed_is_made_by_the_next_sweep(processes, monkeypatch) -> None:
    first, _, _ = processes
    room, _ = await first.create(ADDRESS)
    seat = await room.join("Ana", Inbox())
    with monkeypatch.context() as away:
        away.setattr(first, "run", unavailable)  # Redis answers nothing
        with pytest.raises(ClassroomUnavailable):
            await seat.release(Departure.LEFT)
    assert [tile.id for tile in (await room.view()).tiles] == [seat.id]
    await first.sweep()
    assert (await room.view()).tiles == []


async def test_a_join_refused_after_redis_took_it_leaves_no_seat_held(processes, monkeypatch) -> None:
    first, _, _ = processes
    room, _ = await first.create(ADDRESS)
    with monkeypatch.context() as away:
        away.setattr(first.heartbeat, "hold", unavailable)  # Redis went away mid-join
        with pytest.raises(ClassroomUnavailable):
            await room.join("Ana", Inbox())
    await first.sweep()
    assert (await room.view()).tiles == []
    assert (await room.join("Ana", Inbox())).name == "Ana"  # not "Ana 2"


def act_at(
    rooms: RedisRooms,
    monkeypatch: pytest.MonkeyPatch,
    script: str,
    act: Callable[[], Awaitable[object]],
    *,
    before: bool = False,
) -> None:
    """`act` runs once: just before that process's next `script` runs in Redis, or just after."""
    run = rooms.run

    async def run_and_act(name: str, keys: list[str], args: list[Any]) -> Any:
        if name != script:
            return await run(name, keys, args)
        monkeypatch.setattr(rooms, "run", run)
        if before:
            await act()
        answer = await run(name, keys, args)
        if not before:
            await act()
        return answer

    monkeypatch.setattr(rooms, "run", run_and_act)


async def test_a_prompt_set_the_moment_a_student_joins_on_another_process_reaches_them(processes, monkeypatch) -> None:
    first, second, _ = processes
    room, _ = await first.create(ADDRESS)
    there = await second.get(room.code)
    assert there is not None
    act_at(second, monkeypatch, "join", lambda: room.set_prompt(3))
    inbox = Inbox()
    seat = await there.join("Ana", inbox)
    assert seat.prompt is None  # Redis seated Ana before the teacher set it
    await room.set_prompt(5)
    await inbox.until(lambda m: messages.prompt(5) in m)
    assert inbox.messages == [messages.prompt(3), messages.prompt(5)]


async def test_a_class_closed_the_moment_a_student_joins_on_another_process_tells_them(processes, monkeypatch) -> None:
    first, second, _ = processes
    room, _ = await first.create(ADDRESS)
    there = await second.get(room.code)
    assert there is not None
    act_at(second, monkeypatch, "join", room.close)
    inbox = Inbox()
    await there.join("Ana", inbox)
    await inbox.until(lambda m: m != [])
    assert inbox.messages == [messages.room_closed("closed")]


async def test_a_seat_rejoined_elsewhere_just_before_a_join_here_is_this_joins(processes, monkeypatch) -> None:
    first, second, _ = processes
    room, _ = await first.create(ADDRESS)
    there = await second.get(room.code)
    assert there is not None
    old = await there.join("Ana", Inbox())
    earlier, latest = Inbox(), Inbox()
    # Redis announces the earlier rejoin before this one: only the latest connection is Ana's.
    act_at(second, monkeypatch, "join", lambda: room.join("Ana", earlier, rejoin=old.rejoin), before=True)
    seat = await there.join("Ana", latest, rejoin=old.rejoin)
    assert seat.id == old.id
    await room.set_prompt(4)
    await latest.until(lambda m: messages.prompt(4) in m)
    assert earlier.messages == []
