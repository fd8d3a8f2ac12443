"""How often one connection is served: a token bucket, for its snapshots' answers and for the
text frames it sends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class Pace:
    """A token bucket: `burst` at once, then `rate` a second."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()

    def delay(self) -> float:
        """Seconds until the next one may go; 0 when it may go now."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        return max(0.0, (1 - self._tokens) / self._rate)

    def take(self) -> None:
        self._tokens -= 1

    async def wait(self) -> None:
        """Take the next turn, once it comes."""
        while (delay := self.delay()) > 0:
            await asyncio.sleep(delay)
        self.take()
