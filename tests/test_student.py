"""One student connection's classroom session (`Student`), against real in-memory rooms and a
stand-in for its WebSocket: the order of what the page is told when the room moves mid-join."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

import pytest

from server.classroom.rooms import Deliver, Room, Seat
from server.classroom.service import Classroom
from server.classroom.student import Student
from server.config import Settings
from server.errors import ClientError
from server.ws import Connection

ANSWER_TIMEOUT_S = 10


class Page:
    """What the student's page is sent."""

    address = "192.0.2.7"

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.socket = self

    async def send(self, text: str) -> None:
        self.sent.append(json.loads(text))

    async def send_error(self, error: ClientError, **fields: Any) -> None:
        self.sent.append({"type": "error", "code": error.code, **fields})

    def on_answer(self, listener: object) -> None:
        pass

    def clear(self) -> None:
        pass

    async def until_sent(self, count: int) -> list[dict[str, Any]]:
        async with asyncio.timeout(ANSWER_TIMEOUT_S):
            while len(self.sent) < count:
                await asyncio.sleep(0)
        return self.sent


class PromptWhileJoining:
    """A room whose teacher asks for a 7 while a join is still on its way back (with Redis, it
    awaits round trips after the seat is taken; room messages reach the seat meanwhile)."""

    def __init__(self, room: Room) -> None:
        self.room = room
        self.code = room.code

    async def join(self, name: str, deliver: Deliver, rejoin: object = None) -> Seat:
        seat = await self.room.join(name, deliver, rejoin)
        await self.room.set_prompt(7)
        for _ in range(10):  # the round trips still to come: whatever was posted goes out
            await asyncio.sleep(0)
        return seat


async def test_a_prompt_set_while_joining_follows_joined(monkeypatch: pytest.MonkeyPatch) -> None:
    classroom = Classroom.from_settings(Settings())
    room, _ = await classroom.rooms.create("192.0.2.1")

    async def get(code: object) -> PromptWhileJoining:
        return PromptWhileJoining(room)

    monkeypatch.setattr(classroom.rooms, "get", get)
    page = Page()
    student = Student(classroom, cast(Connection, page))
    await student.controls()["join"]({"type": "join", "room": room.code, "name": "Ana"})
    joined, prompt = await page.until_sent(2)
    assert (joined["type"], joined["prompt"]) == ("joined", None)
    assert prompt == {"type": "prompt", "digit": 7}, "the newer prompt is the one the page keeps"
