"""Token buckets: wrong join codes and secrets per address, per code tried and per socket, and
room creation per address. `TokenBuckets` lives in one process; `RedisLimiter` keeps the same
buckets in Redis, so a guesser cannot spread guesses over several processes."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from server.classroom.redisrooms import RedisRooms


def whole_seconds(wait: float) -> int:
    """A wait as HTTP's Retry-After gives it: whole seconds, never 0, so a client that obeys
    it never spins."""
    return max(1, math.ceil(wait))


@dataclass
class Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """Each key holds up to `capacity` tokens, refilled at `per_second`. A full bucket is the
    same as no bucket, so full ones are forgotten when the table grows past `max_keys`."""

    def __init__(
        self,
        capacity: float,
        per_second: float,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = capacity
        self.per_second = per_second
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: dict[str, Bucket] = {}

    def __len__(self) -> int:
        """Keys remembered: full buckets past `max_keys` are forgotten."""
        return len(self._buckets)

    def available(self, key: str) -> bool:
        return self._refilled(key).tokens >= 1

    def take(self, key: str) -> bool:
        """Spend one token; False (and nothing spent) when the bucket is empty."""
        bucket = self._refilled(key)
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        self._buckets[key] = bucket
        self._forget_full()
        return True

    def drain(self, key: str) -> None:
        """Empty `key`'s bucket: it waits a whole refill before its next token."""
        bucket = self._refilled(key)
        bucket.tokens = 0.0
        self._buckets[key] = bucket

    def retry_after(self, key: str) -> float:
        """Seconds until `key` has a token again."""
        missing = 1 - self._refilled(key).tokens
        return max(0.0, missing / self.per_second)

    def _refilled(self, key: str) -> Bucket:
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            return Bucket(self.capacity, now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.per_second)
        bucket.updated = now
        return bucket

    def _forget_full(self) -> None:
        if len(self._buckets) <= self._max_keys:
            return
        for key in [key for key in self._buckets if self._refilled(key).tokens >= self.capacity]:
            del self._buckets[key]
        while len(self._buckets) > self._max_keys:
            del self._buckets[next(iter(self._buckets))]


class Limiter(Protocol):
    """Shared buckets, whichever process asks."""

    async def take(self, key: str) -> float | None:
        """Spend one token: None, or the seconds to wait when there is none (nothing spent)."""


class MemoryLimiter:
    def __init__(self, buckets: TokenBuckets) -> None:
        self.buckets = buckets

    async def take(self, key: str) -> float | None:
        return None if self.buckets.take(key) else self.buckets.retry_after(key)


class RedisLimiter:
    """`Limiter` in Redis: one bucket per key, whichever process asks."""

    def __init__(self, rooms: RedisRooms, name: str, capacity: float, per_second: float) -> None:
        self._rooms = rooms
        self._name = name
        self._capacity = capacity
        self._per_second = per_second

    async def take(self, key: str) -> float | None:
        allowed, wait = await self._rooms.run(
            "bucket", [f"ds:limit:{self._name}:{key}"], [self._capacity, self._per_second, self._rooms.clock()]
        )
        return None if allowed else float(wait)
