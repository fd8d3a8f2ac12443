"""Room events between processes over Redis pub/sub, and what a process does while Redis is away.

Each process keeps one subscription connection. It subscribes to a room's dashboard channel
while a dashboard here watches that room and to its seats channel while a connection here holds
a seat in it, so a process hears only the rooms it serves. Events go to the room's `Fanout`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import redis.asyncio as redis
from redis.exceptions import RedisError

from server.classroom.fanout import Fanout, closed
from server.classroom.rooms import ClassroomUnavailable

logger = logging.getLogger(__name__)

RECONNECT_S = 0.5
REDIS_FAILURES = (RedisError, OSError, TimeoutError)


# Events for dashboards (tiles, notify, closed) and for students (tell, seated, closed) travel
# apart, so a process holding only students of a room never hears its tile traffic.
def dash_channel(code: str) -> str:
    return f"ds:events:{code}:dash"


def seats_channel(code: str) -> str:
    return f"ds:events:{code}:seats"


class Outage:
    """Says once that Redis went away and once that it came back, however many calls fail."""

    def __init__(self, url: str) -> None:
        self.down = False
        self._where = url.rsplit("@", 1)[-1]  # never log a password from the URL

    def failed(self, error: BaseException) -> None:
        if not self.down:
            self.down = True
            logger.error(
                "Redis at %s is unreachable (%s): classes are unavailable until it returns; drawing goes on",
                self._where,
                type(error).__name__,
            )

    def succeeded(self) -> None:
        if self.down:
            self.down = False
            logger.warning("Redis at %s is reachable again: classes are available", self._where)

    @contextlib.asynccontextmanager
    async def guard(self) -> AsyncIterator[None]:
        """Any Redis failure inside becomes ClassroomUnavailable, the one error clients see."""
        try:
            yield
        except REDIS_FAILURES as error:
            self.failed(error)
            raise ClassroomUnavailable() from None
        self.succeeded()


class Bus:
    def __init__(
        self,
        client: redis.Redis,
        outage: Outage,
        own_channel: str,
        rooms_lost: Callable[[list[str]], Awaitable[list[str]]],
    ) -> None:
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        self._outage = outage
        self._own_channel = own_channel
        self._rooms_lost = rooms_lost
        self._fanouts: dict[str, Fanout] = {}
        self._subscribed: set[str] = set()
        self._forgetting: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        await self._pubsub.aclose()

    def holds(self, code: str, student: str) -> bool:
        """A connection on this process holds the seat."""
        fanout = self._fanouts.get(code)
        return fanout is not None and fanout.holds(student)

    def fanout(self, code: str) -> Fanout:
        return self._fanouts.setdefault(code, Fanout())

    async def sync(self, code: str) -> None:
        """Subscribe to what this process needs of the room now, and nothing more."""
        async with self._lock:
            fanout = self._fanouts.get(code)
            wanted = set()
            if fanout is not None:
                wanted |= {dash_channel(code)} if fanout.watches else set()
                wanted |= {seats_channel(code)} if fanout.seats or fanout.joining else set()
                if fanout.empty:
                    del self._fanouts[code]
            have = {channel for channel in (dash_channel(code), seats_channel(code)) if channel in self._subscribed}
            if wanted == have:
                return  # no I/O, so nothing learnt about Redis either way
            async with self._outage.guard():
                if wanted - have:
                    await self._pubsub.subscribe(*(wanted - have))
                    self._subscribed |= wanted - have
                if have - wanted:
                    await self._pubsub.unsubscribe(*(have - wanted))
                    self._subscribed -= have - wanted

    async def run(self) -> None:
        # Always subscribed to one channel of its own: a pubsub with none cannot be read.
        lost = False
        while True:
            try:
                if not self._pubsub.subscribed:
                    await self._pubsub.subscribe(self._own_channel)
                message = await self._pubsub.get_message(timeout=1.0)
            except REDIS_FAILURES as error:
                self._outage.failed(error)
                lost = True
                await asyncio.sleep(RECONNECT_S)
                continue
            if lost:
                lost = False
                await self._recovered()
            if message is not None and message["type"] == "message":
                try:
                    self._dispatch(message["channel"], message["data"])
                except Exception as error:  # one bad event must not end every room's events here
                    logger.error(
                        "a room event on %s could not be handled (%s)", message["channel"], type(error).__name__
                    )

    def _dispatch(self, channel: bytes, data: bytes) -> None:
        code = channel.decode().split(":")[2]
        fanout = self._fanouts.get(code)
        if fanout is None:
            return
        fanout.dispatch(json.loads(data))
        if fanout.empty:  # the room closed, or its last student here was removed: stop listening
            task = asyncio.create_task(self._forget(code), name="digitstream-unsubscribe")
            self._forgetting.add(task)
            task.add_done_callback(self._forgetting.discard)

    async def _forget(self, code: str) -> None:
        with contextlib.suppress(ClassroomUnavailable):
            await self.sync(code)

    async def _recovered(self) -> None:
        """Events sent while the subscription was down are lost: dashboards redraw every tile
        from Redis, and rooms Redis no longer has (it restarted empty) close here as they
        closed there."""
        self._outage.succeeded()
        for fanout in self._fanouts.values():
            fanout.settle()
            for watch in fanout.watches:
                watch.redraw()
        with contextlib.suppress(ClassroomUnavailable):
            for code in await self._rooms_lost(list(self._fanouts)):
                # its last seat or dashboard here may have gone while Redis was asked
                if (lost := self._fanouts.get(code)) is not None:
                    lost.dispatch(closed("expired"))
            for code in list(self._fanouts):
                await self.sync(code)
