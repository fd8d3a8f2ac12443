"""Whose snapshot the model's worker takes next: every sender (a peer address) in turn, by
the worker time its snapshots have cost.

One address may hold hundreds of sockets (a class behind one school NAT must be allowed as
many), and snapshots differ a hundredfold in cost: a page frame takes ~0.1 ms to prepare, a
megapixel colour photo ~20 ms. First come, first served, one address sending costly images
would make every other sender wait behind all of them. So each sender keeps a running total
of the worker time its snapshots took, and the worker takes the oldest snapshot of the sender
whose total is smallest (start-time fair queueing, the rule Linux's CFS schedules threads by).
A sender on its own has the whole worker; cheap senders never wait behind a costly one for
more than the one snapshot being prepared.

A sender that starts sending, or comes back, starts at the `clock` (the total of the sender
served last): time spent idle is not saved up to be spent in a burst, and a debt it ran up
is kept until the clock has passed it.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

Entry = TypeVar("Entry")

# Idle senders whose totals are kept beyond those queued before a sweep drops the ones the clock has passed.
IDLE_SENDERS_KEPT = 64


class FairShare(Generic[Entry]):
    """Entries queued per sender. Not thread-safe: its owner holds one lock around every call.

    `take()` hands out one entry at a time: its sender gets no further turn until
    `charge(sender, cost_s)` says what the entry cost.
    """

    def __init__(self) -> None:
        self._queued: dict[Hashable, deque[Entry]] = {}  # senders with a turn to come, or being served
        self._spent: dict[Hashable, float] = {}
        self._turns: list[tuple[float, int, Hashable]] = []  # (spent, arrival, sender): a heap
        self._arrivals = itertools.count()  # equal totals: whoever queued first goes first
        self._clock = 0.0
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, sender: Hashable, entry: Entry) -> None:
        queued = self._queued.get(sender)
        if queued is None:
            queued = self._queued[sender] = deque()
            spent = self._spent[sender] = max(self._spent.get(sender, 0.0), self._clock)
            heapq.heappush(self._turns, (spent, next(self._arrivals), sender))
        queued.append(entry)
        self._count += 1

    def take(self) -> Entry | None:
        """The oldest entry of the sender that has cost the least; None when nothing is queued."""
        while self._turns:
            spent, _, sender = heapq.heappop(self._turns)
            queued = self._queued[sender]
            if queued:
                self._clock = spent
                self._count -= 1
                return queued.popleft()
            del self._queued[sender]  # its entries were all removed
        return None

    def charge(self, sender: Hashable, cost_s: float) -> None:
        """Add what the entry taken last cost its sender, and give the sender its next turn."""
        spent = self._spent[sender] = self._spent[sender] + cost_s
        if self._queued[sender]:
            heapq.heappush(self._turns, (spent, next(self._arrivals), sender))
            return
        del self._queued[sender]
        if len(self._spent) > len(self._queued) + IDLE_SENDERS_KEPT:
            self._spent = {s: t for s, t in self._spent.items() if s in self._queued or t > self._clock}

    def remove(self, sender: Hashable, entry: Entry) -> None:
        """Forget a queued entry (its waiter gave up); nothing happens if it was taken already."""
        try:
            self._queued[sender].remove(entry)
        except (KeyError, ValueError):
            return
        self._count -= 1

    def firsts(self) -> Iterator[Entry]:
        """Each queued sender's oldest entry."""
        return (queued[0] for queued in self._queued.values() if queued)
