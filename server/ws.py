"""`WS /ws`: a connection's frames in, its stream's answers out (docs/protocol.md)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import urlsplit

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected, WebSocketState

from server import protocol
from server.classroom.student import CONTROLS as ROOM_CONTROLS
from server.classroom.student import Student
from server.service import DRAIN_TIMEOUT_S, Service
from server.stream import SnapshotStream

logger = logging.getLogger(__name__)

# Sending to a client that has just gone raises any of these; none is a server fault.
CLIENT_GONE = (WebSocketDisconnect, WebSocketDisconnected, OSError, TimeoutError)
CLOSE_TIMEOUT_S = 1.0


def origin_allowed(websocket: WebSocket, allowed: tuple[str, ...]) -> bool:
    """Browsers always send Origin; tools that send none are not cross-site pages."""
    origin = websocket.headers.get("origin")
    if origin is None or "*" in allowed:
        return True
    if origin.rstrip("/") in allowed:
        return True
    return urlsplit(origin).netloc == websocket.headers.get("host")


class Connection:
    """Reads frames, feeds binary snapshots to a SnapshotStream, answers control messages.
    Every send goes through one lock with a timeout, so a client that never reads is
    dropped instead of holding memory or a task forever."""

    def __init__(self, websocket: WebSocket, service: Service) -> None:
        self.websocket = websocket
        self.service = service
        self.stream = SnapshotStream(service.classifier, self.send, service.metrics)
        self._send_lock = asyncio.Lock()
        address = websocket.client.host if websocket.client else "unknown"
        self.student = Student(websocket.app.state.classroom, self.send, self.stream, address)

    async def serve(self) -> None:
        forget = self.service.track(self.drain)
        receiving = asyncio.create_task(self._receive_until_closed(), name="digitstream-receive")
        answering = asyncio.create_task(self.stream.run(), name="digitstream-stream")
        try:
            await asyncio.wait({receiving, answering}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            forget()
            self.student.leave()
            receiving.cancel()
            answering.cancel()
            outcomes = await asyncio.gather(receiving, answering, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, Exception) and not isinstance(outcome, CLIENT_GONE):
                logger.error("a connection failed", exc_info=outcome)

    async def send(self, text: str) -> None:
        try:
            async with asyncio.timeout(self.service.settings.send_timeout_s):
                async with self._send_lock:
                    await self.websocket.send_text(text)
        except TimeoutError:
            logger.info("dropping a client that stopped reading")
            await self._close(protocol.CLOSE_POLICY_VIOLATION)
            raise

    async def drain(self) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.stream.drained(), DRAIN_TIMEOUT_S)
        await self._close(protocol.CLOSE_GOING_AWAY)

    async def _receive_until_closed(self) -> None:
        max_bytes = self.service.settings.max_message_bytes
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            data, text = message.get("bytes"), message.get("text")
            if data is not None:
                if len(data) > max_bytes:
                    await self._close(protocol.CLOSE_MESSAGE_TOO_BIG)
                    return
                if not self.service.closing:
                    self.stream.push(data)
            elif text is not None:
                await self._control(text)

    async def _control(self, text: str) -> None:
        try:
            message = protocol.parse_control(text)
        except protocol.BadMessage as bad:
            self.service.metrics.errors.labels("bad_message").inc()
            await self.send(protocol.error("bad_message", str(bad)))
            return
        if message["type"] == "clear":
            self.stream.clear()
        elif message["type"] in ROOM_CONTROLS:
            await self.student.control(message)
        else:
            await self.send(protocol.pong(message))

    async def _close(self, code: int) -> None:
        if self.websocket.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await self.websocket.close(code)


async def stream_endpoint(websocket: WebSocket) -> None:
    service: Service = websocket.app.state.service
    if not origin_allowed(websocket, service.settings.allowed_origins):
        await websocket.close(protocol.CLOSE_POLICY_VIOLATION)
        return
    await websocket.accept()
    if service.closing:
        await websocket.close(protocol.CLOSE_GOING_AWAY)
        return
    await Connection(websocket, service).serve()
