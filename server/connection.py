"""One accepted WebSocket, as both /ws and /ws/teacher use it: the endpoint preamble (origin,
accept, refuse while shutting down), sends that cannot hang, bounded closes, capped and
safely parsed text frames, and the JSON error shape."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import math
from collections.abc import Coroutine
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected, WebSocketState

from server import protocol
from server.errors import BadMessage, ClientError
from server.pace import Pace
from server.service import CLOSE_TIMEOUT_S, Service

logger = logging.getLogger(__name__)

# Sending to a client that has just gone raises any of these; none is a server fault.
CLIENT_GONE = (WebSocketDisconnect, WebSocketDisconnected, OSError, TimeoutError)


class TextTooLong(ClientError):
    code, message, http_status = "too_large", "A control message is at most a few KiB of JSON.", 413


class Close(enum.IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    TRY_AGAIN_LATER = 1013


def address_of(connection: HTTPConnection) -> str:
    """The peer address: whose caps, budgets and share of the model a request counts in. Behind a
    reverse proxy every client shares the proxy's; see docs/classroom.md."""
    return connection.client.host if connection.client else "unknown"


def origin_allowed(headers: Headers, allowed: tuple[str, ...]) -> bool:
    """Browsers always send Origin; tools that send none are not cross-site pages. The page's
    own origin is the one whose host is the request's `Host`, which the allow-list in
    server/hosts.py has checked already, so a rebound name never gets this far."""
    origin = headers.get("origin")
    if origin is None or "*" in allowed:
        return True
    if origin.rstrip("/") in allowed:
        return True
    return urlsplit(origin).netloc.lower() == headers.get("host", "").lower()


def parse_json_object(text: str) -> dict[str, Any]:
    """A JSON object, or BadMessage: never a parser's exception text, never a RecursionError."""
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise BadMessage() from None
    if not isinstance(message, dict):
        raise BadMessage()
    return message


class Socket:
    """Every send goes through one lock with a timeout, so a client that never reads is
    dropped instead of holding memory or a task forever."""

    def __init__(self, websocket: WebSocket, service: Service) -> None:
        self.websocket = websocket
        self.service = service
        self.address = address_of(websocket)
        self._send_lock = asyncio.Lock()
        rate = service.settings.max_control_rate
        self._text_pace = Pace(rate, burst=math.ceil(rate))

    async def send(self, text: str) -> None:
        try:
            async with asyncio.timeout(self.service.settings.send_timeout_s):
                async with self._send_lock:
                    await self.websocket.send_text(text)
        except TimeoutError:
            logger.info("dropping a client that stopped reading")
            await self.close(Close.POLICY_VIOLATION)
            raise

    async def send_json(self, message: dict[str, Any]) -> None:
        await self.send(json.dumps(message))

    async def send_error(self, error: ClientError, **fields: Any) -> None:
        self.service.metrics.errors.labels(error.code).inc()
        await self.send(protocol.error(error, **fields))

    async def receive(self, idle_timeout_s: float | None = None) -> bytes | str | None:
        """The next frame; None once the client has gone, sent a binary frame larger than any
        snapshot (then closed with 1009) or sent nothing for `idle_timeout_s` (then closed with
        1001). A text frame too long to be a control message is answered with an error before
        anything reads it, and the socket stays open."""
        settings = self.service.settings
        while True:
            try:
                async with asyncio.timeout(idle_timeout_s):
                    message = await self.websocket.receive()
            except TimeoutError:
                await self.close(Close.GOING_AWAY)
                return None
            if message["type"] == "websocket.disconnect":
                return None
            data: bytes | None = message.get("bytes")
            if data is not None:
                if len(data) > settings.max_message_bytes:
                    await self.close(Close.MESSAGE_TOO_BIG)
                    return None
                return data
            text: str = message.get("text") or ""
            # Not read on while a frame waits for its turn: a ping flood is slowed by TCP, and
            # costs the event loop no more than a page does.
            if self._text_pace.delay() > 0:
                self.service.metrics.paced_text_frames.inc()
            await self._text_pace.wait()
            # a character is at least one UTF-8 byte: a long text is refused before it is encoded
            if len(text) <= settings.max_text_bytes and len(text.encode()) <= settings.max_text_bytes:
                return text
            await self.send_error(TextTooLong())

    async def close(self, code: int) -> None:
        if self.websocket.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await self.websocket.close(code)


async def accept(websocket: WebSocket) -> Socket | None:
    """The preamble every WebSocket endpoint shares; None when the socket was refused."""
    service: Service = websocket.app.state.service
    if not origin_allowed(websocket.headers, service.settings.allowed_origins):
        await websocket.close(Close.POLICY_VIOLATION)
        return None
    await websocket.accept()
    socket = Socket(websocket, service)
    if not service.accepting:
        await socket.close(Close.GOING_AWAY)
        return None
    return socket


async def run_until_first_ends(name: str, *jobs: Coroutine[Any, Any, object]) -> None:
    """Run a connection's jobs (read, write) together; when one ends, cancel the others.
    A client leaving is not an error; anything else is logged once, never sent."""
    tasks = [asyncio.create_task(job, name=f"digitstream-{name}") for job in jobs]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, Exception) and not isinstance(outcome, CLIENT_GONE):
            logger.error("a %s connection failed", name, exc_info=outcome)
