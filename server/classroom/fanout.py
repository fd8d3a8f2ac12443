"""What one process holds of a room: the dashboards watching it here and the seats its
connections hold here, and the room events that reach them.

Events are plain JSON-able dicts, the same whether a `MemoryRoom` dispatches them directly or
a `RedisRoom` publishes them and every subscribed process dispatches them:

- `{"e": "tiles", "changed": [ids], "removed": [ids]}`: dashboards send those tiles next tick
- `{"e": "notify"}`: something besides tiles changed (the prompt); dashboards send a delta
- `{"e": "tell", "to": id or null, "message": {...}}`: to one seat, or to every seat
- `{"e": "taken", "id": id, "holder": h}`: another connection holds that seat now
- `{"e": "closed", "reason": r}`: the room is gone
"""

from __future__ import annotations

from collections.abc import Iterable
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


class Fanout:
    def __init__(self) -> None:
        self.watches: set[Watch] = set()
        self.seats: dict[str, tuple[str, Deliver]] = {}  # student id → (holder, deliver)

    @property
    def empty(self) -> bool:
        return not self.watches and not self.seats

    def hold(self, student: str, holder: str, deliver: Deliver) -> None:
        self.seats[student] = (holder, deliver)

    def let_go(self, student: str, holder: str) -> None:
        if self.seats.get(student, ("", None))[0] == holder:
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
        elif kind == "taken":
            holder, _ = self.seats.get(event["id"], (event["holder"], None))
            if holder != event["holder"]:
                del self.seats[event["id"]]
        elif kind == "closed":
            self._tell(messages.room_closed(event["reason"]), None)
            self.seats.clear()
            for watch in self.watches:
                watch.closed = event["reason"]
                watch.mark()

    def _tell(self, message: dict[str, Any], to: str | None) -> None:
        targets = list(self.seats) if to is None else [to] if to in self.seats else []
        for student in targets:
            _, deliver = self.seats[student]
            if message["type"] in messages.LEAVING:
                del self.seats[student]
            deliver(message)
