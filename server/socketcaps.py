"""Caps on open WebSockets, in all and per peer address, counted for each socket's whole life.

A class behind one school NAT shares one address, so the per-address cap is sized for a
hundred students with a spare tab each; it only stops one machine from holding every socket.
"""

from __future__ import annotations

import contextlib
from collections import Counter

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from server import protocol
from server.connection import CLIENT_GONE, Close, address_of
from server.errors import ClientError
from server.metrics import Metrics


class TooManyConnections(ClientError):
    code, message, http_status = (
        "too_many_connections",
        "This server has as many connections as it takes; try again in a moment.",
        503,
    )


class SocketCaps:
    def __init__(self, app: ASGIApp, *, total: int, per_address: int, metrics: Metrics) -> None:
        self.app = app
        self.total = total
        self.per_address = per_address
        self.metrics = metrics
        self.open = 0
        self.by_address: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        address = address_of(HTTPConnection(scope))
        if self.open >= self.total or self.by_address[address] >= self.per_address:
            await refuse(WebSocket(scope, receive, send), self.metrics)
            return
        self.open += 1  # no await since the check: no other handshake can slip in between
        self.by_address[address] += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.open -= 1
            self.by_address[address] -= 1
            if not self.by_address[address]:
                del self.by_address[address]


async def refuse(websocket: WebSocket, metrics: Metrics) -> None:
    """Accepted only to say why, so a script sees an error and a code, not a failed handshake."""
    failure = TooManyConnections()
    metrics.errors.labels(failure.code).inc()
    with contextlib.suppress(*CLIENT_GONE):
        await websocket.accept()
        await websocket.send_text(protocol.error(failure))
        await websocket.close(Close.TRY_AGAIN_LATER)
