"""Classroom HTTP routes and the teacher's WebSocket: creating a room, its QR code, the
dashboard page, and `/ws/teacher`, whose first message must carry the room's secret."""

from __future__ import annotations

import asyncio
import contextlib
import io
from typing import Any

import segno
from starlette.datastructures import URL
from starlette.requests import HTTPConnection, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from server.classroom.dashboard import Dashboard
from server.classroom.ratelimit import whole_seconds
from server.classroom.rooms import (
    ClassroomUnavailable,
    Room,
    TooManyRooms,
    TooManyRoomsHere,
)
from server.classroom.service import Classroom
from server.config import Settings
from server.connection import (
    CLIENT_GONE,
    Close,
    Socket,
    accept,
    address_of,
    origin_allowed,
    parse_json_object,
)
from server.errors import BadMessage, Refusal

AUTH_TIMEOUT_S = 10.0
NO_STORE = {"Cache-Control": "no-store"}


def classroom_of(connection: HTTPConnection) -> Classroom:
    return connection.app.state.classroom


def settings_of(connection: HTTPConnection) -> Settings:
    return connection.app.state.service.settings


def join_url(base_url: URL, code: str) -> str:
    scheme = {"ws": "http", "wss": "https"}.get(base_url.scheme, base_url.scheme)
    return str(base_url.replace(scheme=scheme, path="/", query=f"room={code}", fragment=""))


def retry_after(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(whole_seconds(seconds))}


def refusal(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "code": code}, status_code=status, headers={**NO_STORE, **(headers or {})})


async def dashboard_page(request: Request) -> Response:
    return FileResponse(settings_of(request).web_dir / "classroom.html", headers=NO_STORE)


async def create_room(request: Request) -> Response:
    """The only answer that ever carries the teacher secret."""
    if not origin_allowed(request.headers, settings_of(request).allowed_origins):
        return refusal(403, "bad_origin", "Rooms are created from this server's own page.")
    classroom = classroom_of(request)
    address = address_of(request)
    try:
        if (wait := await classroom.creations.take(address)) is not None:
            return refusal(
                429, "rate_limited", "Too many rooms created from this network; wait a minute.", retry_after(wait)
            )
        room, secret = await classroom.rooms.create(address)
    except TooManyRoomsHere:
        return refusal(
            429,
            "too_many_rooms",
            "This network already has as many open rooms as it may; close one first.",
            retry_after(60),
        )
    except TooManyRooms:
        return refusal(503, "too_many_rooms", "This server has as many open rooms as it can hold.", retry_after(60))
    except ClassroomUnavailable as unavailable:
        return refusal(503, unavailable.code, str(unavailable), retry_after(5))
    body = {
        "room": room.code,
        "secret": secret,
        "join_url": join_url(request.base_url, room.code),
        "qr_svg": f"/api/rooms/{room.code}/qr.svg",
        "max_students": room.max_students,
    }
    return JSONResponse(body, status_code=201, headers=NO_STORE)


async def room_qr(request: Request) -> Response:
    """The join URL as an SVG QR code, for the projector. Unknown codes count as wrong guesses."""
    classroom, address = classroom_of(request), address_of(request)
    try:
        room = await classroom.rooms.get(request.path_params["code"])
        wait = None if room is not None else await classroom.wrong_code(address)
    except ClassroomUnavailable as unavailable:
        return refusal(503, unavailable.code, str(unavailable), retry_after(5))
    if wait is not None:
        return refusal(
            429, "rate_limited", "Too many wrong class codes from this network; wait a minute.", retry_after(wait)
        )
    if room is None:
        return refusal(404, "room_not_found", "No open class has that code.")
    return Response(qr_svg(join_url(request.base_url, room.code)), media_type="image/svg+xml", headers=NO_STORE)


def qr_svg(text: str) -> bytes:
    buffer = io.BytesIO()
    # No width/height attributes: the page sizes the code; quiet zone of 2 modules is plenty on a screen.
    segno.make(text, error="m").save(
        buffer, kind="svg", border=2, xmldecl=False, omitsize=True, dark="#000", light="#fff"
    )
    return buffer.getvalue()


UNAUTHORIZED = Refusal("unauthorized", "That room code and secret do not open a dashboard.")
NOT_AUTH = Refusal("unauthorized", 'The first message must be {"type": "auth", "room": …, "secret": …}.')
GUESSING_REFUSED = Refusal("rate_limited", "Too many wrong codes or secrets; wait a moment and try again.")


async def teacher_endpoint(websocket: WebSocket) -> None:
    socket = await accept(websocket)
    if socket is None:
        return
    try:
        room = await authenticate(socket)
    except CLIENT_GONE:
        return
    except ClassroomUnavailable as unavailable:
        with contextlib.suppress(*CLIENT_GONE):
            await socket.send_error(unavailable)
        await socket.close(Close.TRY_AGAIN_LATER)
        return
    if room is None:
        await socket.close(Close.POLICY_VIOLATION)
        return
    await Dashboard(socket, room, join_url(websocket.base_url, room.code)).serve()


async def authenticate(socket: Socket) -> Room | None:
    """Reads `{"type": "auth", "room": CODE, "secret": SECRET}`; answers an error and returns None otherwise.
    The right secret is checked before any limit: others' wrong guesses never lock a teacher out."""
    classroom = classroom_of(socket.websocket)
    message = await first_message(socket)
    if message is None or message.get("type") != "auth":
        await socket.send_error(NOT_AUTH)
        return None
    room = await classroom.rooms.get(message.get("room"))
    if room is not None and await room.authenticate(message.get("secret")):
        return room
    wait = await classroom.wrong_secret(socket.address, message.get("room"))
    if wait is None:
        await socket.send_error(UNAUTHORIZED)
    else:
        await socket.send_error(GUESSING_REFUSED, retry_after=whole_seconds(wait))
    return None


async def first_message(socket: Socket) -> dict[str, Any] | None:
    try:
        async with asyncio.timeout(AUTH_TIMEOUT_S):
            frame = await socket.receive()
        return parse_json_object(frame) if isinstance(frame, str) else None
    except (TimeoutError, BadMessage):
        return None


ROUTES = [
    Route("/classroom", dashboard_page),
    Route("/api/rooms", create_room, methods=["POST"]),
    Route("/api/rooms/{code}/qr.svg", room_qr),
    WebSocketRoute("/ws/teacher", teacher_endpoint),
]
