"""`WS /ws`: a connection's frames in, its stream's answers out (docs/protocol.md).

Binary frames are snapshots; text frames are JSON control messages. `clear` and `ping` are
the stream's own; add-ons (the classroom) register more per connection through `Session`s,
so this module knows nothing of what they do.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from starlette.websockets import WebSocket

from server.batching import QueueClosed
from server.connection import Close, Socket, accept, parse_json_object, run_until_first_ends
from server.errors import BadMessage
from server.pace import Pace
from server.service import DRAIN_TIMEOUT_S
from server.stream import AnswerListener, SnapshotStream

ControlHandler = Callable[[dict[str, Any]], Awaitable[None]]


class Session(Protocol):
    """What an add-on keeps for one /ws connection."""

    def controls(self) -> Mapping[str, ControlHandler]:
        """The control message types it answers, by `type`."""
        ...

    def close(self) -> None:
        """The connection has ended."""
        ...


SessionFactory = Callable[["Connection"], Session]


class Connection:
    def __init__(self, socket: Socket, sessions: Sequence[SessionFactory]) -> None:
        self.socket = socket
        self.address = socket.address
        service = socket.service
        settings = service.settings
        pace = Pace(settings.max_snapshot_rate, settings.snapshot_burst)
        classify = functools.partial(service.classifier.classify, sender=socket.address)
        self._stream = SnapshotStream(classify, socket.send, service.metrics, pace, settings.snapshot_burst)
        self._controls: dict[str, ControlHandler] = {"clear": self._clear, "ping": self._pong}
        self._ended = asyncio.Event()
        self._sessions = [make(self) for make in sessions]
        for session in self._sessions:
            self._controls.update(session.controls())
        self._bad_message = BadMessage(
            'A text frame must be a JSON object whose "type" is one of: '
            + ", ".join(sorted(self._controls))
            + " (docs/protocol.md)."
        )

    # -- what sessions use -------------------------------------------------------------

    async def send(self, text: str) -> None:
        await self.socket.send(text)

    def clear(self) -> None:
        """Drop the waiting snapshot; the one already being classified is still answered."""
        self._stream.clear()

    def on_answer(self, listener: AnswerListener) -> None:
        """Call `listener(seq, classification)` after each prediction is sent."""
        self._stream.add_listener(listener)

    # -- serving -------------------------------------------------------------------------

    async def serve(self) -> None:
        service = self.socket.service
        forget = service.track(self.drain)
        try:
            await run_until_first_ends("stream", self._receive_until_closed(), self._stream.run(), self._ended.wait())
        finally:
            forget()
            for session in self._sessions:
                session.close()

    async def drain(self) -> None:
        """Answer what is in flight, close with 1001, and end even if a send is stuck on a
        client that stopped reading."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stream.drained(), DRAIN_TIMEOUT_S)
        await self.socket.close(Close.GOING_AWAY)
        self._ended.set()

    async def _receive_until_closed(self) -> None:
        idle_timeout_s = self.socket.service.settings.idle_timeout_s
        while (frame := await self.socket.receive(idle_timeout_s)) is not None:
            if isinstance(frame, bytes):
                # Once a shutdown began, a snapshot still gets its answer, in its turn: an error.
                self._stream.push(frame, None if self.socket.service.accepting else QueueClosed())
                await self._stream.room()
            else:
                await self._control(frame)

    async def _control(self, text: str) -> None:
        try:
            message = parse_json_object(text)
            kind = message.get("type")
            handler = self._controls.get(kind) if isinstance(kind, str) else None
            if handler is None:
                raise BadMessage()
        except BadMessage:
            await self.socket.send_error(self._bad_message)
            return
        await handler(message)

    async def _clear(self, message: dict[str, Any]) -> None:
        self._stream.clear()

    async def _pong(self, message: dict[str, Any]) -> None:
        await self.socket.send_json({"type": "pong", "t": message.get("t")})


def stream_endpoint(sessions: Sequence[SessionFactory] = ()) -> Callable[[WebSocket], Awaitable[None]]:
    async def endpoint(websocket: WebSocket) -> None:
        socket = await accept(websocket)
        if socket is not None:
            await Connection(socket, sessions).serve()

    return endpoint
