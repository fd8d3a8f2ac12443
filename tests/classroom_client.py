"""A teacher and students as the tests see them: plain `websockets` and `httpx` clients of a real
server, each from a chosen loopback address (127.0.0.x), so tests that guess wrong spend their
own address's budget."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import websockets

from tests.support import ServerProcess, receive, receive_type


async def create_room(server: ServerProcess, address: str = "127.0.0.1") -> dict[str, Any]:
    async with httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(local_address=address)) as client:
        response = await client.post(f"{server.base_url}/api/rooms")
    assert response.status_code == 201, response.text
    return response.json()


def connect(server: ServerProcess, path: str = "/ws", address: str = "127.0.0.1") -> websockets.connect:
    return websockets.connect(server.ws_url.replace("/ws", path), local_addr=(address, 0), max_size=None)


async def join(ws: websockets.ClientConnection, room: dict[str, Any], name: str, **extra: Any) -> dict[str, Any]:
    await ws.send(json.dumps({"type": "join", "room": room["room"], "name": name, **extra}))
    return await receive_type(ws, "joined")


class Board:
    """A teacher's dashboard as a test sees it: tiles kept up to date from snapshot and deltas."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.tiles: dict[str, dict] = {}
        self.last: dict[str, Any] = {}
        self.deltas = 0

    @classmethod
    async def open(cls, server: ServerProcess, room: dict[str, Any], address: str = "127.0.0.1") -> Board:
        ws = await connect(server, "/ws/teacher", address)
        await ws.send(json.dumps({"type": "auth", "room": room["room"], "secret": room["secret"]}))
        board = cls(ws)
        snapshot = await receive(ws)
        assert snapshot["type"] == "snapshot" and snapshot["room"] == room["room"], snapshot
        board.apply(snapshot)
        return board

    def apply(self, message: dict[str, Any]) -> None:
        self.last = message
        if message["type"] == "snapshot":
            self.tiles = {tile["id"]: tile for tile in message["tiles"]}
        elif message["type"] == "tiles":
            self.deltas += 1
            self.tiles.update({tile["id"]: tile for tile in message["changed"]})
            for student in message["removed"]:
                self.tiles.pop(student, None)
            assert message["students"] == len(self.tiles)

    async def until(self, done: Callable[[Board], bool]) -> None:
        while not done(self):
            message = await receive(self.ws)
            if message["type"] in ("closed", "error"):
                self.last = message
                return
            self.apply(message)

    async def command(self, **command: Any) -> None:
        await self.ws.send(json.dumps(command))
