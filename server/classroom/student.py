"""A /ws connection as a student: the `join` and `leave` control messages, its predictions
copied to its tile, and the teacher's messages passed back (docs/protocol.md, "Classroom")."""

from __future__ import annotations

import json
from typing import Any

from server import protocol
from server.classifier import Classification
from server.classroom import messages
from server.classroom.names import BadName, display_name
from server.classroom.outbox import Outbox
from server.classroom.rooms import RoomFull, Seat
from server.classroom.service import Classroom
from server.stream import Send, SnapshotStream

CONTROLS = ("join", "leave")
LEAVING = ("removed", "room_closed")


class Student:
    def __init__(self, classroom: Classroom, send: Send, stream: SnapshotStream, address: str) -> None:
        self._classroom = classroom
        self._send = send
        self._stream = stream
        self._address = address
        self._outbox = Outbox(send)
        self._seat: Seat | None = None
        self._last: Classification | None = None
        stream.add_listener(self._on_answer)

    async def control(self, message: dict[str, Any]) -> None:
        if message["type"] == "join":
            await self._join(message)
        else:
            self.leave()

    def leave(self) -> None:
        if self._seat is not None:
            self._seat.leave()
            self._seat = None

    async def _join(self, message: dict[str, Any]) -> None:
        if self._classroom.guessing_refused(self._address):
            await self._refuse("rate_limited", "Too many wrong class codes from this network; wait a minute and try again.")
            return
        room = self._classroom.rooms.get(message.get("room"))
        if room is None:
            self._classroom.wrong_guess(self._address)
            await self._refuse("room_not_found", "No open class has that code.")
            return
        try:
            name = display_name(message.get("name"))
        except BadName as bad:
            await self._refuse("bad_name", str(bad))
            return
        self.leave()
        try:
            seat = room.join(name, lambda event: self._deliver(seat, event))
        except RoomFull:
            await self._refuse("room_full", "This class is full.")
            return
        self._seat = seat
        await self._send(json.dumps(messages.joined(room, seat.tile.id, name)))
        # A student who drew before joining (or whose drawing was answered just before a
        # reconnect's join) shows up with that drawing, not a blank tile.
        if self._last is not None:
            seat.update(self._last)

    async def _refuse(self, code: str, message: str) -> None:
        await self._send(protocol.error(code, message))

    def _on_answer(self, seq: int, result: Classification) -> None:
        self._last = result
        if self._seat is not None:
            self._seat.update(result)

    def _deliver(self, seat: Seat, event: dict[str, Any]) -> None:
        if seat is not self._seat:
            return
        if event["type"] == "clear_pad":
            self._stream.clear()
        elif event["type"] in LEAVING:
            self._seat = None
        self._outbox.post(event)
