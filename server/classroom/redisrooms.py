"""Rooms in Redis (`--redis-url`): several server processes serve one class. Rooms, seats,
prompts, tiles, rate limits and expiry live in Redis (scripts.py shows the layout); dashboard
updates and teacher commands travel over pub/sub (bus.py). Each process beats a heartbeat
(heartbeat.py), so when one dies the others mark its students away until they rejoin elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff

from server.classifier import Classification
from server.classroom import fanout, messages, scripts
from server.classroom.bus import Bus, Outage, dash_channel, seats_channel
from server.classroom.codes import new_code, new_secret, normalize_code
from server.classroom.heartbeat import Heartbeat, process_key
from server.classroom.names import MAX_NAME_LENGTH
from server.classroom.records import digest, text, tile_of, tile_record
from server.classroom.rooms import (
    ClassroomUnavailable,
    Deliver,
    Departure,
    RoomFull,
    RoomGone,
    Seat,
    TooManyRooms,
    TooManyRoomsHere,
    View,
    Watch,
    name_key,
    unique_names,
)
from server.classroom.tilebatch import TileBatch

REDIS_TIMEOUT_S = 2.0
REDIS_CONNECTIONS = 32
ACTIVE, UNCLAIMED, AWAY = "ds:active", "ds:unclaimed", "ds:away"


class RedisRoom:
    def __init__(self, rooms: RedisRooms, code: str) -> None:
        self.code = code
        self.max_students = rooms.max_students
        self._rooms = rooms
        self._bus = rooms.bus
        self._dash, self._seat_events = dash_channel(code), seats_channel(code)
        key = f"ds:room:{code}"
        self._key = key
        self._seats, self._tiles, self._holders = f"{key}:seats", f"{key}:tiles", f"{key}:holders"
        self._tokens, self._names = f"{key}:tokens", f"{key}:names"

    async def authenticate(self, secret: object) -> bool:
        if not isinstance(secret, str):
            return False
        claimed = await self._rooms.run("claim", [self._key, UNCLAIMED], [digest(secret), self.code])
        return bool(claimed)

    async def join(self, name: str, deliver: Deliver, rejoin: object = None) -> Seat:
        rooms = self._rooms
        holder = f"{rooms.heartbeat.process}:{secrets.token_hex(8)}"
        names = [
            part
            for candidate in unique_names(name, self.max_students, MAX_NAME_LENGTH)
            for part in (candidate, name_key(candidate))
        ]
        here = self._bus.fanout(self.code)
        here.expect(holder, deliver)
        try:
            # Listening before Redis seats it, so no event after that is missed.
            await self._bus.sync(self.code)
            result = await rooms.run(
                "join",
                [self._key, self._seats, self._tiles, self._holders, self._tokens, self._names, ACTIVE, AWAY],
                [
                    rejoin if isinstance(rejoin, str) else "",
                    secrets.token_hex(6),
                    secrets.token_urlsafe(18),
                    holder,
                    self.max_students,
                    rooms.clock(),
                    self.code,
                    self._dash,
                    self._seat_events,
                    *names,
                ],
            )
        except ClassroomUnavailable:
            await self._stop_listening(None, holder)
            raise
        status = text(result[0])
        if status != "ok":
            await self._stop_listening(None, holder)
            raise RoomGone() if status == "gone" else RoomFull()
        student, name, token, prompt = (text(part) for part in result[1:])
        here.answered(holder, student)
        seat = Seat(self, student, name, token, holder, int(prompt) if prompt else None)
        try:
            await rooms.heartbeat.hold(self.code, student)
        except ClassroomUnavailable:
            # Redis holds the seat for a connection that is refused: it goes, away for the
            # retried rejoin, or at once if it was new.
            await self._stop_listening(student, holder)
            rejoined = isinstance(rejoin, str) and rejoin != ""
            rooms.pending_releases.append((seat, Departure.DROPPED if rejoined else Departure.LEFT))
            raise
        return seat

    async def _stop_listening(self, student: str | None, holder: str) -> None:
        self._bus.fanout(self.code).let_go(student, holder)
        with contextlib.suppress(ClassroomUnavailable):
            await self._bus.sync(self.code)

    async def update(self, seat: Seat, result: Classification) -> None:
        await self._rooms.tiles.write(
            f"{self.code} {seat.id}",
            [self._holders, self._tiles, ACTIVE, self._seats, AWAY, self._rooms.heartbeat.seats],
            [
                seat.id,
                seat.holder,
                tile_record(result),
                self._rooms.clock(),
                self.code,
                self._dash,
                json.dumps(fanout.tiles(changed=[seat.id])),
            ],
        )

    async def release(self, seat: Seat, departure: Departure) -> None:
        await self._stop_listening(seat.id, seat.holder)
        try:
            if departure is Departure.LEFT:
                await self._vacate(seat.id, "holder", seat.holder)
            else:
                await self._rooms.drop(self.code, seat.id, seat.holder, reclaimable=False)
            # A page that reconnected here took the seat back while this socket lingered: the
            # seat is still this process's to have marked away if it dies.
            if not self._bus.holds(self.code, seat.id):
                await self._rooms.heartbeat.let_go(self.code, seat.id)
        except ClassroomUnavailable:
            self._rooms.pending_releases.append((seat, departure))
            raise

    async def view(self) -> View:
        async with self._rooms.outage.guard(), self._rooms.client.pipeline(transaction=True) as pipe:
            pipe.hget(self._key, "prompt")
            pipe.hgetall(self._seats)
            pipe.hgetall(self._tiles)
            prompt, seats, tiles = await pipe.execute()
        if prompt is None:
            raise RoomGone()
        ordered = sorted(
            ((text(student), json.loads(raw)) for student, raw in seats.items()), key=lambda item: item[1]["order"]
        )
        return View(
            self.code,
            self.max_students,
            [tile_of(student, seat, tiles.get(student.encode())) for student, seat in ordered],
            int(prompt) if prompt else None,
        )

    async def watch(self) -> Watch:
        watch = Watch()
        self._bus.fanout(self.code).watches.add(watch)
        try:
            await self._bus.sync(self.code)
        except ClassroomUnavailable:
            await self.unwatch(watch)
            raise
        return watch

    async def unwatch(self, watch: Watch) -> None:
        self._bus.fanout(self.code).watches.discard(watch)
        with contextlib.suppress(ClassroomUnavailable):
            await self._bus.sync(self.code)

    async def set_prompt(self, digit: int | None) -> None:
        await self._rooms.run(
            "prompt",
            [self._key, ACTIVE],
            [
                "" if digit is None else str(digit),
                self._rooms.clock(),
                self.code,
                self._seat_events,
                json.dumps(fanout.tell(messages.prompt(digit))),
                self._dash,
                json.dumps(fanout.notify()),
            ],
        )

    async def clear_all(self) -> None:
        students = await self._rooms.run(
            "clear", [self._key, self._seats, self._tiles, ACTIVE], [self._rooms.clock(), self.code]
        )
        if students:
            await self._rooms.publish(self._dash, fanout.tiles(changed=[text(s) for s in students]))
            await self._rooms.publish(self._seat_events, fanout.tell(messages.clear_pad()))

    async def remove(self, student: str) -> bool:
        if not await self._vacate(student, "any", ""):
            return False
        await self._rooms.publish(self._seat_events, fanout.tell(messages.removed(), to=student))
        return True

    async def close(self, reason: str = "closed") -> bool:
        keys = [self._key, self._seats, self._tiles, self._holders, self._tokens, self._names, ACTIVE, UNCLAIMED, AWAY]
        closed = await self._rooms.run(
            "close", keys, [self.code, self._dash, self._seat_events, json.dumps(fanout.closed(reason))]
        )
        return bool(closed)

    async def _vacate(self, student: str, mode: str, holder: str) -> bool:
        keys = [self._seats, self._tiles, self._holders, self._tokens, self._names, AWAY]
        event = json.dumps(fanout.tiles(removed=[student]))
        vacated = await self._rooms.run(
            "vacate", keys, [student, mode, holder, self.code, self._rooms.clock(), self._dash, event]
        )
        return bool(vacated)


SCRIPTS = {
    "join": scripts.JOIN,
    "update": scripts.UPDATE,
    "drop": scripts.DROP,
    "vacate": scripts.VACATE,
    "close": scripts.CLOSE,
    "bucket": scripts.BUCKET,
    "claim": scripts.CLAIM,
    "prompt": scripts.PROMPT,
    "clear": scripts.CLEAR,
}


class RedisRooms:
    def __init__(
        self,
        url: str,
        *,
        max_students: int,
        idle_s: float,
        max_rooms: int,
        grace_s: float,
        unclaimed_s: float,
        rooms_per_address: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_students = max_students
        self.idle_s = idle_s
        self.max_rooms = max_rooms
        self.grace_s = grace_s
        self.unclaimed_s = unclaimed_s
        self.rooms_per_address = rooms_per_address
        self.clock = clock
        # A bounded pool that queues: a class's worth of tile writes at once wait their turn
        # instead of failing. Few, quick retries: while Redis is away a join hears so at once.
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=REDIS_CONNECTIONS,
            timeout=REDIS_TIMEOUT_S,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 2),
        )
        self.client = redis.Redis.from_pool(pool)
        # The subscription never retries: redis-py would reconnect and resubscribe quietly, and
        # the events published meanwhile would be lost unnoticed. Its failure reaches Bus.run,
        # which redraws what they would have changed.
        self._events = redis.Redis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT_S, retry=Retry(NoBackoff(), 0))
        self.outage = Outage(url)
        self.heartbeat = Heartbeat(self.client, self.outage, clock, self._drop_for_dead)
        self.bus = Bus(self._events, self.outage, process_key(self.heartbeat.process), self._missing)
        self._scripts = {name: self.client.register_script(source) for name, source in SCRIPTS.items()}
        self.tiles = TileBatch(self.client, self._scripts["update"], self.outage)
        self._tasks: list[asyncio.Task[None]] = []
        # Releases Redis missed while it was away: a held seat nobody releases is never swept.
        self.pending_releases: list[tuple[Seat, Departure]] = []

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self.bus.run(), name="digitstream-room-events"),
            asyncio.create_task(self.heartbeat.beat(), name="digitstream-heartbeat"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.heartbeat.stop()
        await self.bus.close()
        await self._events.aclose()
        await self.client.aclose()

    async def run(self, script: str, keys: list[str], args: list[Any]) -> Any:
        async with self.outage.guard():
            return await self._scripts[script](keys=keys, args=args)

    async def publish(self, channel: str, event: fanout.Event) -> None:
        async with self.outage.guard():
            await self.client.publish(channel, json.dumps(event))

    async def create(self, address: str) -> tuple[RedisRoom, str]:
        now = self.clock()
        by_address = f"ds:address:{address}"
        async with self.outage.guard():
            if await self.client.zcard(ACTIVE) >= self.max_rooms:
                raise TooManyRooms()
            if await self._open_rooms(by_address) >= self.rooms_per_address:
                raise TooManyRoomsHere()
            secret = new_secret()
            while not await self.client.hsetnx(f"ds:room:{(code := new_code())}", "secret", digest(secret)):
                pass
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.hset(f"ds:room:{code}", mapping={"address": address, "prompt": "", "claimed": "0", "next": 0})
                pipe.zadd(ACTIVE, {code: now})
                pipe.zadd(UNCLAIMED, {code: now + self.unclaimed_s})
                pipe.sadd(by_address, code)
                pipe.expire(by_address, int(self.idle_s + self.unclaimed_s) + 60)
                await pipe.execute()
        return RedisRoom(self, code), secret

    async def get(self, code: object) -> RedisRoom | None:
        normalized = normalize_code(code)
        if normalized is None:
            return None
        async with self.outage.guard():
            exists = await self.client.exists(f"ds:room:{normalized}")
        return RedisRoom(self, normalized) if exists else None

    async def sweep(self) -> int:
        while self.pending_releases:
            seat, departure = self.pending_releases.pop()
            await seat.release(departure)  # pending again if Redis is still away
        now = self.clock()
        async with self.outage.guard():
            stale = await self.client.zrangebyscore(ACTIVE, "-inf", now - self.idle_s)
            unclaimed = await self.client.zrangebyscore(UNCLAIMED, "-inf", now)
            away = await self.client.zrangebyscore(AWAY, "-inf", now)
        closed = 0
        # without withscores Redis answers plain members; redis-py's annotation also allows (member, score)
        for code in {text(code) for code in stale + unclaimed}:  # type: ignore[arg-type]
            closed += await RedisRoom(self, code).close("expired")
        for member in away:
            code, student = text(member).split(" ")  # type: ignore[arg-type]
            await RedisRoom(self, code)._vacate(student, "away", "")
        await self.heartbeat.mark_dead_away()
        return closed

    async def drop(self, code: str, student: str, holder_prefix: str, *, reclaimable: bool) -> None:
        """The seat goes away; `reclaimable`: its holder's next tile write takes it back."""
        room = RedisRoom(self, code)
        await self.run(
            "drop",
            [room._holders, room._seats, AWAY],
            [
                student,
                holder_prefix,
                self.clock() + self.grace_s,
                code,
                room._dash,
                json.dumps(fanout.tiles(changed=[student])),
                "1" if reclaimable else "0",
            ],
        )

    async def _drop_for_dead(self, code: str, student: str, holder_prefix: str) -> None:
        await self.drop(code, student, holder_prefix, reclaimable=True)

    async def _open_rooms(self, by_address: str) -> int:
        codes = [text(code) for code in await self.client.smembers(by_address)]
        gone = await self._missing(codes)
        if gone:
            await self.client.srem(by_address, *gone)
        return len(codes) - len(gone)

    async def _missing(self, codes: list[str]) -> list[str]:
        async with self.outage.guard(), self.client.pipeline(transaction=False) as pipe:
            for code in codes:
                pipe.exists(f"ds:room:{code}")
            exists = await pipe.execute()
        return [code for code, there in zip(codes, exists) if not there]
