"""A teacher's /ws/teacher connection once it has authenticated: the room's snapshot, then at
most one delta per tick while anything changes; commands in (docs/protocol.md, "Classroom")."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected, WebSocketState

from server import protocol
from server.classroom import messages
from server.classroom.rooms import Room, Watch
from server.service import Service

logger = logging.getLogger(__name__)
TICK_S = 0.2        # at most five dashboard updates a second, however many students draw
CLOSE_TIMEOUT_S = 1.0
# WebSocketDisconnected: a send after the close (the teacher left while a tick was due).
CLIENT_GONE = (WebSocketDisconnect, WebSocketDisconnected, ConnectionError, TimeoutError)
BAD_COMMAND = (
    'Send {"type": "prompt", "digit": 0-9 or null}, {"type": "clear_all"}, '
    '{"type": "remove", "student": ID}, {"type": "close"} or {"type": "ping"}.'
)


class BadCommand(ValueError):
    pass


class Dashboard:
    def __init__(self, websocket: WebSocket, room: Room, join_url: str, service: Service) -> None:
        self.websocket = websocket
        self.room = room
        self.join_url = join_url
        self._service = service
        self._send_lock = asyncio.Lock()

    async def serve(self) -> None:
        # Tracked like a student's connection, so a shutdown closes it with 1001 at once.
        forget = self._service.track(lambda: close(self.websocket, protocol.CLOSE_GOING_AWAY))
        watch = self.room.watch()
        try:
            await self._send(messages.snapshot(self.room, self.join_url))
            tasks = {asyncio.create_task(self._push(watch)), asyncio.create_task(self._receive())}
            try:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                outcomes = await asyncio.gather(*tasks, return_exceptions=True)
            for outcome in outcomes:
                if isinstance(outcome, Exception) and not isinstance(outcome, CLIENT_GONE):
                    logger.error("a dashboard connection failed", exc_info=outcome)
        except CLIENT_GONE:
            pass
        finally:
            forget()
            self.room.unwatch(watch)
            await close(self.websocket, 1000)

    async def _push(self, watch: Watch) -> None:
        while True:
            await watch.wait()
            if watch.closed is not None:
                await self._send(messages.closed(watch.closed))
                return
            changed, removed = watch.take()
            await self._send(messages.delta(self.room, changed, removed))
            await asyncio.sleep(TICK_S)

    async def _receive(self) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            try:
                await self._command(parse_command(message.get("text")))
            except BadCommand as bad:
                await self._send({"type": "error", "code": "bad_message", "message": str(bad)})

    async def _command(self, command: dict[str, Any]) -> None:
        kind = command["type"]
        if kind == "prompt":
            self.room.set_prompt(command["digit"])
        elif kind == "clear_all":
            self.room.clear_all()
        elif kind == "remove":
            if not self.room.remove(command["student"]):
                await self._send({"type": "error", "code": "unknown_student", "message": "No such student in this room."})
        elif kind == "close":
            self.room.close("closed")
        else:
            await self._send({"type": "pong", "t": command.get("t")})

    async def _send(self, message: dict[str, Any]) -> None:
        async with asyncio.timeout(self._service.settings.send_timeout_s):
            async with self._send_lock:
                await self.websocket.send_text(json.dumps(message))


def parse_command(text: str | None) -> dict[str, Any]:
    try:
        command = json.loads(text) if text is not None else None
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise BadCommand(BAD_COMMAND) from None
    if not isinstance(command, dict):
        raise BadCommand(BAD_COMMAND)
    kind = command.get("type")
    if kind == "prompt":
        digit = command.get("digit")
        if digit is not None and (type(digit) is not int or not 0 <= digit <= 9):
            raise BadCommand(BAD_COMMAND)
    elif kind == "remove":
        if not isinstance(command.get("student"), str):
            raise BadCommand(BAD_COMMAND)
    elif kind not in ("clear_all", "close", "ping"):
        raise BadCommand(BAD_COMMAND)
    return command


async def close(websocket: WebSocket, code: int = protocol.CLOSE_POLICY_VIOLATION) -> None:
    if websocket.application_state == WebSocketState.CONNECTED:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await websocket.close(code)
