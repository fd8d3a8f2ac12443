"""A /ws connection as a student: the `join` and `leave` control messages, its predictions
copied to its tile, and the teacher's messages passed back (docs/protocol.md, "Classroom")."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from server import protocol
from server.classifier import Classification
from server.classroom import messages
from server.classroom.names import BadName, display_name
from server.classroom.outbox import Outbox
from server.classroom.rooms import RoomFull, Seat
from server.classroom.service import Classroom
from server.errors import Refusal
from server.ws import Connection, ControlHandler

LEAVING = ("removed", "room_closed")


RATE_LIMITED = Refusal("rate_limited", "Too many wrong class codes from this network; wait a minute and try again.")
ROOM_NOT_FOUND = Refusal("room_not_found", "No open class has that code.")
ROOM_FULL = Refusal("room_full", "This class is full.")


class Student:
    """The classroom's session on one /ws connection."""

    def __init__(self, classroom: Classroom, connection: Connection) -> None:
        self._classroom = classroom
        self._connection = connection
        self._outbox = Outbox(connection.send)
        self._seat: Seat | None = None
        self._last: Classification | None = None
        connection.on_answer(self._on_answer)

    def controls(self) -> Mapping[str, ControlHandler]:
        return {"join": self._join, "leave": self._leave}

    def close(self) -> None:
        if self._seat is not None:
            self._seat.leave()
            self._seat = None

    async def _leave(self, message: dict[str, Any]) -> None:
        self.close()

    async def _join(self, message: dict[str, Any]) -> None:
        address = self._connection.address
        if self._classroom.guessing_refused(address):
            await self._refuse(RATE_LIMITED)
            return
        room = self._classroom.rooms.get(message.get("room"))
        if room is None:
            self._classroom.wrong_guess(address)
            await self._refuse(ROOM_NOT_FOUND)
            return
        try:
            name = display_name(message.get("name"))
        except BadName as bad:
            await self._refuse(Refusal("bad_name", str(bad)))
            return
        self.close()
        try:
            seat = room.join(name, lambda event: self._deliver(seat, event))
        except RoomFull:
            await self._refuse(ROOM_FULL)
            return
        self._seat = seat
        await self._connection.send(json.dumps(messages.joined(room, seat.tile.id, name)))
        # A student who drew before joining (or whose drawing was answered just before a
        # reconnect's join) shows up with that drawing, not a blank tile.
        if self._last is not None:
            seat.update(self._last)

    async def _refuse(self, refusal: Refusal) -> None:
        await self._connection.send(protocol.error(refusal))

    def _on_answer(self, seq: int, result: Classification) -> None:
        self._last = result
        if self._seat is not None:
            self._seat.update(result)

    def _deliver(self, seat: Seat, event: dict[str, Any]) -> None:
        if seat is not self._seat:
            return
        if event["type"] == "clear_pad":
            self._connection.clear()
        elif event["type"] in LEAVING:
            self._seat = None
        self._outbox.post(event)
