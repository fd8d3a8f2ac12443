"""A teacher's /ws/teacher connection once it has authenticated: the room's snapshot, then at
most one delta per tick while anything changes; commands in (docs/protocol.md, "Classroom")."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from server.classroom import messages
from server.classroom.rooms import ClassroomUnavailable, Room, RoomGone, Watch
from server.connection import (
    CLIENT_GONE,
    Close,
    Socket,
    parse_json_object,
    run_until_first_ends,
)
from server.errors import BadMessage, ClientError

TICK_S = 0.2  # at most five dashboard updates a second, however many students draw


class BadCommand(BadMessage):
    message = (
        'Send {"type": "prompt", "digit": 0-9 or null}, {"type": "clear_all"}, '
        '{"type": "remove", "student": ID}, {"type": "close"} or {"type": "ping"}.'
    )


class UnknownStudent(ClientError):
    code, message, http_status = "unknown_student", "No such student in this room.", 404


class Dashboard:
    def __init__(self, socket: Socket, room: Room, join_url: str) -> None:
        self.socket = socket
        self.room = room
        self.join_url = join_url
        self._close_code = Close.NORMAL
        self._shown: set[str] = set()  # the students whose tiles the page holds

    async def serve(self) -> None:
        # Tracked like a student's connection, so a shutdown closes it with 1001 at once.
        forget = self.socket.service.track(lambda: self.socket.close(Close.GOING_AWAY))
        watch: Watch | None = None
        try:
            watch = await self.room.watch()
            view = await self.room.view()
            await self.socket.send_json(messages.snapshot(view, self.join_url))
            self._shown = view.ids
            await run_until_first_ends("dashboard", self._push(watch), self._receive())
        except CLIENT_GONE:
            pass  # the teacher left before the snapshot went out
        except (RoomGone, ClassroomUnavailable) as ended:
            with contextlib.suppress(*CLIENT_GONE):
                await self._ended(ended)
        finally:
            forget()
            if watch is not None:
                await self.room.unwatch(watch)
            await self.socket.close(self._close_code)

    async def _push(self, watch: Watch) -> None:
        try:
            while True:
                await watch.wait()
                if watch.closed is not None:
                    await self.socket.send_json(messages.closed(watch.closed))
                    return
                changes = watch.take()
                view = await self.room.view()
                changed = view.ids if changes.every_tile else changes.changed
                await self.socket.send_json(messages.delta(view, changed, changes.removed, self._shown))
                self._shown = view.ids
                await asyncio.sleep(TICK_S)
        except (RoomGone, ClassroomUnavailable) as ended:
            await self._ended(ended)

    async def _ended(self, ended: Exception) -> None:
        """The room is gone (the dashboard is told it closed) or Redis is: the page should
        come back with its secret a little later."""
        if isinstance(ended, ClassroomUnavailable):
            self._close_code = Close.TRY_AGAIN_LATER
            await self.socket.send_error(ended)
        else:
            await self.socket.send_json(messages.closed("expired"))

    async def _receive(self) -> None:
        while (frame := await self.socket.receive()) is not None:
            try:
                command = parse_command(frame)
            except BadMessage:
                await self.socket.send_error(BadCommand())
                continue
            try:
                await self._command(command)
            except ClassroomUnavailable as unavailable:
                await self.socket.send_error(unavailable)

    async def _command(self, command: dict[str, Any]) -> None:
        kind = command["type"]
        if kind == "prompt":
            await self.room.set_prompt(command["digit"])
        elif kind == "clear_all":
            await self.room.clear_all()
        elif kind == "remove":
            if not await self.room.remove(command["student"]):
                await self.socket.send_error(UnknownStudent())
        elif kind == "close":
            await self.room.close("closed")
        else:
            await self.socket.send_json({"type": "pong", "t": command.get("t")})


def parse_command(frame: object) -> dict[str, Any]:
    """A valid teacher command, or BadMessage."""
    if not isinstance(frame, str):
        raise BadCommand()
    try:
        command = parse_json_object(frame)
    except BadMessage:
        raise BadCommand() from None
    kind = command.get("type")
    if kind == "prompt":
        digit = command.get("digit")
        if digit is not None and (type(digit) is not int or not 0 <= digit <= 9):
            raise BadCommand()
    elif kind == "remove":
        if not isinstance(command.get("student"), str):
            raise BadCommand()
    elif kind not in ("clear_all", "close", "ping"):
        raise BadCommand()
    return command
