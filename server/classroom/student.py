"""A /ws connection as a student: the `join` and `leave` control messages, its predictions
copied to its tile, and the teacher's messages passed back (docs/protocol.md, "Classroom")."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from server.classifier import Classification
from server.classroom import messages
from server.classroom.dashboard import TICK_S
from server.classroom.names import BadName, display_name
from server.classroom.outbox import Outbox
from server.classroom.ratelimit import whole_seconds
from server.classroom.rooms import (
    ClassroomUnavailable,
    Departure,
    RoomFull,
    RoomGone,
    Seat,
)
from server.classroom.service import Classroom
from server.errors import ClientError, Refusal
from server.ws import Connection, ControlHandler

logger = logging.getLogger(__name__)


RATE_LIMITED = Refusal("rate_limited", "Too many wrong class codes; wait a moment and try again.")
JOINING_TOO_OFTEN = Refusal("rate_limited", "This page joined too often; wait a moment and try again.")
ROOM_NOT_FOUND = Refusal("room_not_found", "No open class has that code.")
ROOM_FULL = Refusal("room_full", "This class is full.")


class TileWriter:
    """At most one tile write per student in flight, and none sooner than a dashboard tick after
    the last: a newer answer replaces one still waiting. Dashboards show a tile at most once a
    tick anyway, so a student drawing at 20 Hz costs the room store 5 writes a second, not 20."""

    def __init__(self) -> None:
        self._next: tuple[Seat, Classification] | None = None
        self._task: asyncio.Task[None] | None = None

    def push(self, seat: Seat, result: Classification) -> None:
        self._next = (seat, result)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._write(), name="digitstream-tile")

    async def _write(self) -> None:
        while self._next is not None:
            seat, result = self._next
            self._next = None
            try:
                await seat.update(result)
            except ClassroomUnavailable:
                pass  # logged once where Redis failed; the tile catches up with the next answer
            except Exception:
                logger.exception("a tile update failed")
            await asyncio.sleep(TICK_S)


class Student:
    """The classroom's session on one /ws connection."""

    def __init__(self, classroom: Classroom, connection: Connection) -> None:
        self._classroom = classroom
        self._connection = connection
        self._outbox = Outbox(connection.send)
        self._guesses = classroom.socket_guesses()
        self._joins = classroom.socket_joins()
        self._writer = TileWriter()
        self._seat: Seat | None = None
        self._ticket: object | None = None  # which seat room messages are for
        # Room messages that came while the join was in flight: they are newer than what
        # `joined` says (a prompt set meanwhile), so they follow it.
        self._early: list[dict[str, Any]] | None = None
        self._last: Classification | None = None
        connection.on_answer(self._on_answer)

    def controls(self) -> Mapping[str, ControlHandler]:
        return {"join": self._join, "leave": self._leave}

    def close(self) -> None:
        """The connection ended: the seat waits, away, for this student to rejoin."""
        seat, self._seat, self._ticket = self._seat, None, None
        if seat is not None:
            self._classroom.spawn(seat.release(Departure.DROPPED))

    async def _leave(self, message: dict[str, Any]) -> None:
        try:
            await self._release()
        except ClassroomUnavailable:
            pass  # the rooms release it once Redis is back

    async def _release(self) -> None:
        seat, self._seat, self._ticket = self._seat, None, None
        if seat is not None:
            await seat.release(Departure.LEFT)

    async def _join(self, message: dict[str, Any]) -> None:
        try:
            await self._try_join(message)
        except ClassroomUnavailable as unavailable:
            await self._refuse(unavailable)

    async def _try_join(self, message: dict[str, Any]) -> None:
        classroom = self._classroom
        if (wait := classroom.join_wait(self._joins)) is not None:
            await self._refuse(JOINING_TOO_OFTEN, retry_after=whole_seconds(wait))
            return
        # A right code is looked up before any limit but this socket's own joins and wrong guesses.
        if (wait := classroom.socket_wait(self._guesses)) is not None:
            await self._refuse(RATE_LIMITED, retry_after=whole_seconds(wait))
            return
        room = await classroom.rooms.get(message.get("room"))
        if room is None:
            wait = await classroom.wrong_code(self._connection.address, self._guesses)
            if wait is None:
                await self._refuse(ROOM_NOT_FOUND)
            else:
                await self._refuse(RATE_LIMITED, retry_after=whole_seconds(wait))
            return
        try:
            name = display_name(message.get("name"))
        except BadName as bad:
            await self._refuse(Refusal("bad_name", str(bad)))
            return
        current = self._seat
        if current is not None and current.room.code == room.code and message.get("rejoin") == current.rejoin:
            self._seat = None  # its own seat again: the join below takes it over
        else:
            await self._release()
        ticket = self._ticket = object()
        early = self._early = []
        try:
            seat = await room.join(name, lambda event: self._deliver(ticket, event), message.get("rejoin"))
        except RoomFull:
            await self._refuse(ROOM_FULL)
            return
        except RoomGone:
            await self._refuse(ROOM_NOT_FOUND)
            return
        finally:
            self._early = None
        if ticket is not self._ticket:
            await seat.release(Departure.LEFT)  # a room message ended this seat before it was ours
            return
        self._seat = seat
        self._outbox.post(messages.joined(room.code, seat))
        for event in early:
            self._pass_on(event)
        # A student who drew before joining (or whose drawing was answered just before a
        # reconnect's join) shows up with that drawing, not a blank tile.
        if self._last is not None:
            self._writer.push(seat, self._last)

    async def _refuse(self, error: ClientError, **fields: Any) -> None:
        await self._connection.socket.send_error(error, **fields)

    def _on_answer(self, seq: int, result: Classification) -> None:
        self._last = result
        if self._seat is not None:
            self._writer.push(self._seat, result)

    def _deliver(self, ticket: object, event: dict[str, Any]) -> None:
        if ticket is not self._ticket:
            return
        if event["type"] in messages.LEAVING:
            self._seat, self._ticket = None, None
        elif self._early is not None:
            self._early.append(event)
            return
        self._pass_on(event)

    def _pass_on(self, event: dict[str, Any]) -> None:
        if event["type"] == "clear_pad":
            self._connection.clear()
        self._outbox.post(event)
