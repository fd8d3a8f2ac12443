"""What one process holds of a room: the dashboards watching it here and the seats its
connections hold here, and the room events that reach them.

Events are plain JSON-able dicts, the same whether a `MemoryRoom` dispatches them directly or
a `RedisRoom` publishes them and every subscribed process dispatches them:

- `{"e": "tiles", "changed": [ids], "removed": [ids]}`: dashboards send those tiles next tick
- `{"e": "notify"}`: something besides tiles changed (the prompt); dashboards send a delta
- `{"e": "tell", "to": id or null, "message": {...}}`: to one seat, or to every seat
- `{"e": "seated", "id": id, "holder": h}`: that connection holds that seat now
- `{"e": "closed", "reason": r}`: the room is gone
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from server.classroom import messages
from server.classroom.rooms import Deliver, Watch

Event = dict[str, Any]


def tiles(changed: Iterable[str] = (), removed: Iterable[str] = ()) -> Event:
    return {"e": "tiles", "changed": list(changed), "removed": list(removed)}


def notify() -> Event:
    return {"e": "notify"}


def tell(message: dict[str, Any], to: str | None = None) -> Event:
    return {"e": "tell", "to": to, "message": message}


def closed(reason: str) -> Event:
    return {"e": "closed", "reason": reason}


@dataclass
class Joining:
    deliver: Deliver
    student: str | None = None  # known once the join is answered


class Fanout:
    def __init__(self) -> None:
        self.watches: set[Watch] = set()
        self.seats: dict[str, tuple[str, Deliver]] = {}  # student id → (holder, deliver)
        # Joins under way, by holder. A join's seat is held from its `seated` event on, so it
        # hears exactly the events that came after Redis seated it, in the order Redis sent them.
        self.joining: dict[str, Joining] = {}

    @property
    def empty(self) -> bool:
        return not self.watches and not self.seats and not self.joining

    def hold(self, student: str, holder: str, deliver: Deliver) -> None:
        self.seats[student] = (holder, deliver)

    def expect(self, holder: str, deliver: Deliver) -> None:
        self.joining[holder] = Joining(deliver)

    def answered(self, holder: str, student: str) -> None:
        if (joining := self.joining.get(holder)) is not None:
            joining.student = student

    def settle(self) -> None:
        """Room events were lost (Redis was away): answered joins hold their seats unannounced."""
        for holder, joining in list(self.joining.items()):
            if joining.student is not None:
                self._seat(joining.student, holder)

    def holds(self, student: str) -> bool:
        """A connection here holds the seat, or has been answered that it takes it back."""
        return student in self.seats or any(joining.student == student for joining in self.joining.values())

    def let_go(self, student: str | None, holder: str) -> None:
        self.joining.pop(holder, None)
        if student is not None and self.seats.get(student, ("", None))[0] == holder:
            del self.seats[student]

    def dispatch(self, event: Event) -> None:
        kind = event.get("e")
        if kind == "tiles":
            for watch in self.watches:
                watch.removed.update(event["removed"])
                watch.changed.difference_update(event["removed"])
                watch.changed.update(event["changed"])
                watch.mark()
        elif kind == "notify":
            for watch in self.watches:
                watch.mark()
        elif kind == "tell":
            self._tell(event["message"], event["to"])
        elif kind == "seated":
            self._seat(event["id"], event["holder"])
        elif kind == "closed":
            self._tell(messages.room_closed(event["reason"]), None)
            self.seats.clear()
            for watch in self.watches:
                watch.closed = event["reason"]
                watch.mark()

    def _seat(self, student: str, holder: str) -> None:
        if (joining := self.joining.pop(holder, None)) is not None:
            self.seats[student] = (holder, joining.deliver)
        elif self.seats.get(student, (holder, None))[0] != holder:
            del self.seats[student]  # another connection rejoined it

    def _tell(self, message: dict[str, Any], to: str | None) -> None:
        targets = list(self.seats) if to is None else [to] if to in self.seats else []
        for student in targets:
            _, deliver = self.seats[student]
            if message["type"] in messages.LEAVING:
                del self.seats[student]
            deliver(message)
