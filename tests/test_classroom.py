"""Classroom mode (docs/classroom.md): the parts in isolation, then a real server with a teacher
dashboard and 30 student connections.

Wrong-guess tests connect from their own loopback address (127.0.0.x), so they use up their own
rate-limit bucket and never the one the other tests (and test modules) share on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from server.classifier import Classification
from server.classroom import messages
from server.classroom.codes import ALPHABET, CODE_LENGTH, new_code, normalize_code, secret_matches
from server.classroom.dashboard import BadCommand, parse_command
from server.classroom.names import MAX_NAME_LENGTH, BadName, display_name
from server.classroom.ratelimit import TokenBuckets
from server.classroom.rooms import MemoryRooms, RoomFull
from tests.support import ServerProcess, canvas_png, holdout

ANSWER_TIMEOUT_S = 30
STUDENTS = 30
HTML_NAME = '<img src=x onerror=f()>&amp;'


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def result(digit: int | None) -> Classification:
    if digit is None:
        return Classification(empty=True, probabilities=(0.0,) * 10)
    return Classification(False, tuple(0.91 if d == digit else 0.01 for d in range(10)), b"png")


# ---- Codes, names, limits, rooms: no server ----------------------------------------------


def test_join_codes_are_long_and_unambiguous() -> None:
    codes = {new_code() for _ in range(200)}
    assert len(codes) == 200
    assert all(len(code) == CODE_LENGTH and set(code) <= set(ALPHABET) for code in codes)
    assert not set("0O1I") & set(ALPHABET)
    assert len(ALPHABET) ** CODE_LENGTH >= 2**40


def test_codes_are_read_as_people_type_them() -> None:
    assert normalize_code(" abcd-efgh ") == "ABCDEFGH"
    assert normalize_code("ABCD EFGH") == "ABCDEFGH"
    assert normalize_code("ABCDEFG0") is None
    assert normalize_code("ABC") is None
    assert normalize_code(12345678) is None


def test_secrets_compare_exactly() -> None:
    assert secret_matches("s3cret", "s3cret")
    assert not secret_matches("s3cret", "s3cre")
    assert not secret_matches("s3cret", None)


def test_display_names_are_checked_but_never_rewritten_as_html() -> None:
    assert display_name("  Ana   Lucía ") == "Ana Lucía"
    assert display_name(HTML_NAME) == HTML_NAME
    for bad in ("", "   ", None, 42, "x" * (MAX_NAME_LENGTH + 1), "bell\x07", "evil\u202eman", "new\nline"):
        with pytest.raises(BadName):
            display_name(bad)


def test_token_buckets_refill_and_stay_bounded() -> None:
    clock = Clock()
    buckets = TokenBuckets(3, 0.5, max_keys=2, clock=clock)
    assert [buckets.take("a") for _ in range(4)] == [True, True, True, False]
    assert not buckets.available("a") and buckets.available("b")
    assert buckets.retry_after("a") == pytest.approx(2.0)
    clock.now += 2
    assert buckets.take("a")
    for key in "bcdef":
        buckets.take(key)
    assert len(buckets._buckets) <= 2


def test_a_room_caps_its_students() -> None:
    rooms = MemoryRooms(max_students=2)
    room, _ = rooms.create()
    room.join("a", lambda m: None)
    room.join("b", lambda m: None)
    with pytest.raises(RoomFull):
        room.join("c", lambda m: None)


def test_updates_between_ticks_become_one_delta_with_the_changed_tiles() -> None:
    room, _ = MemoryRooms().create()
    seats = [room.join(f"s{i}", lambda m: None) for i in range(5)]
    watch = room.watch()
    for _ in range(10):
        for seat in seats[:3]:
            seat.update(result(7))
    seats[4].leave()
    changed, removed = watch.take()
    delta = messages.delta(room, changed, removed)
    assert [tile["name"] for tile in delta["changed"]] == sorted(["s0", "s1", "s2"], key=lambda n: seats[int(n[1])].tile.id)
    assert delta["removed"] == [seats[4].tile.id]
    assert delta["students"] == 4
    room.set_prompt(7)
    assert messages.counts(room)["matching"] == 3
    assert watch.take() == (set(), set())


def test_idle_rooms_expire_and_tell_everyone() -> None:
    clock = Clock()
    rooms = MemoryRooms(idle_s=60, clock=clock)
    room, _ = rooms.create()
    busy, _ = rooms.create()
    told: list[dict] = []
    room.join("a", told.append)
    watch = room.watch()
    clock.now += 50
    busy.set_prompt(3)
    clock.now += 20
    assert rooms.expire_idle() == 1
    assert told == [{"type": "room_closed", "reason": "expired"}]
    assert watch.closed == "expired"
    assert rooms.get(room.code) is None and rooms.get(busy.code) is busy


def test_teacher_commands_are_validated() -> None:
    assert parse_command('{"type": "prompt", "digit": 7}')["digit"] == 7
    assert parse_command('{"type": "prompt", "digit": null}')["digit"] is None
    for bad in ('{"type": "prompt", "digit": 10}', '{"type": "prompt", "digit": true}', '{"type": "remove"}',
                '{"type": "auth"}', "[]", "nope", "[" * 100_000, None):
        with pytest.raises(BadCommand):
            parse_command(bad)


# ---- A real server --------------------------------------------------------------------------


async def receive(ws: websockets.ClientConnection) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), ANSWER_TIMEOUT_S))


async def receive_type(ws: websockets.ClientConnection, kind: str) -> dict[str, Any]:
    """The next message of `kind`, skipping predictions and pongs on the way."""
    while (message := await receive(ws))["type"] != kind:
        assert message["type"] in ("prediction", "pong"), message
    return message


async def create_room(server: ServerProcess, address: str = "127.0.0.1") -> dict[str, Any]:
    async with httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(local_address=address)) as client:
        response = await client.post(f"{server.base_url}/api/rooms")
    assert response.status_code == 201, response.text
    return response.json()


def connect(server: ServerProcess, path: str = "/ws", address: str = "127.0.0.1") -> websockets.connect:
    return websockets.connect(server.ws_url.replace("/ws", path), local_addr=(address, 0), max_size=None)


class Board:
    """A teacher's dashboard as a test sees it: tiles kept up to date from snapshot and deltas."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.tiles: dict[str, dict] = {}
        self.last: dict[str, Any] = {}
        self.deltas = 0

    @classmethod
    async def open(cls, server: ServerProcess, room: dict[str, Any]) -> Board:
        ws = await connect(server, "/ws/teacher")
        await ws.send(json.dumps({"type": "auth", "room": room["room"], "secret": room["secret"]}))
        board = cls(ws)
        snapshot = await receive(ws)
        assert snapshot["type"] == "snapshot" and snapshot["room"] == room["room"]
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


@pytest.fixture(scope="module")
def digit_pngs() -> list[tuple[bytes, int]]:
    x, y = holdout()
    # holdout() is sorted by label: stride through it for a class that draws every digit.
    return [(canvas_png(x[i], size=140), int(y[i])) for i in range(0, len(y), len(y) // STUDENTS)][:STUDENTS]


@pytest.mark.asyncio(loop_scope="session")
async def test_a_teacher_sees_thirty_students_draw_and_runs_the_class(server: ServerProcess, digit_pngs) -> None:
    room = await create_room(server)
    assert re.fullmatch(f"[{ALPHABET}]{{{CODE_LENGTH}}}", room["room"])
    assert room["join_url"] == f"{server.base_url}/?room={room['room']}"
    board = await Board.open(server, room)
    students = [await connect(server) for _ in range(STUDENTS)]
    try:
        names = [HTML_NAME] + [f"Student {i}" for i in range(1, STUDENTS)]
        ids = []
        for ws, name in zip(students, names):
            await ws.send(json.dumps({"type": "join", "room": room["room"].lower(), "name": name}))
            joined = await receive_type(ws, "joined")
            assert joined["name"] == name and joined["prompt"] is None
            ids.append(joined["student"])
        await board.until(lambda b: len(b.tiles) == STUDENTS)
        assert board.tiles[ids[0]]["name"] == HTML_NAME, "names reach the dashboard verbatim, as JSON text"

        # Everyone draws; each tile ends on that student's own answer, preview included.
        for ws, (png, _) in zip(students, digit_pngs):
            await ws.send(png)
        predicted = [(await receive_type(ws, "prediction"))["digit"] for ws in students]
        assert sum(p == label for p, (_, label) in zip(predicted, digit_pngs)) >= STUDENTS - 3
        await board.until(lambda b: [b.tiles[i]["digit"] for i in ids] == predicted)
        assert all(board.tiles[i]["preview"] and board.tiles[i]["confidence"] > 0 for i in ids)
        assert board.deltas < 2 * STUDENTS, "joins and predictions are aggregated into ticks"

        # A prompt reaches every student, and the dashboard counts who matches it.
        target = predicted[0]
        await board.command(type="prompt", digit=target)
        for ws in students:
            assert (await receive_type(ws, "prompt"))["digit"] == target
        await board.until(lambda b: b.last.get("prompt") == target)
        assert board.last["matching"] == predicted.count(target)

        # Clear everyone's pad: students are told, tiles go blank, nobody matches.
        await board.command(type="clear_all")
        for ws in students:
            await receive_type(ws, "clear_pad")
        await board.until(lambda b: all(t["digit"] is None for t in b.tiles.values()))
        assert board.last["matching"] == 0

        # Remove one student: told, gone from the dashboard, and no longer feeding it.
        await board.command(type="remove", student=ids[1])
        await receive_type(students[1], "removed")
        await board.until(lambda b: ids[1] not in b.tiles)
        await students[1].send(digit_pngs[1][0])
        await receive_type(students[1], "prediction")
        # A student who leaves (closes the tab) disappears too.
        await students[2].close()
        await board.until(lambda b: ids[2] not in b.tiles)
        assert len(board.tiles) == STUDENTS - 2

        # Close the room: every remaining student is told, the dashboard is told and closed.
        await board.command(type="close")
        for ws in students[0:1] + students[3:]:
            assert (await receive_type(ws, "room_closed"))["reason"] == "closed"
        await board.until(lambda b: False)
        assert board.last == {"type": "closed", "reason": "closed"}
        with pytest.raises(ConnectionClosed):
            await receive(board.ws)
    finally:
        for ws in students:
            await ws.close()
        await board.ws.close()


@pytest.mark.asyncio(loop_scope="session")
async def test_a_closed_room_cannot_be_joined(server: ServerProcess) -> None:
    room = await create_room(server)
    board = await Board.open(server, room)
    await board.command(type="close")
    await board.until(lambda b: False)
    async with connect(server, address="127.0.0.4") as ws:
        await ws.send(json.dumps({"type": "join", "room": room["room"], "name": "late"}))
        assert (await receive_type(ws, "error"))["code"] == "room_not_found"


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize("auth", [
    {"type": "auth", "secret": "wrong"},
    {"type": "auth"},
    {"type": "prompt", "digit": 1},
])
async def test_the_dashboard_needs_the_teacher_secret(server: ServerProcess, auth: dict) -> None:
    room = await create_room(server)
    async with connect(server, "/ws/teacher", address="127.0.0.3") as ws:
        await ws.send(json.dumps({"room": room["room"], **auth}))
        assert (await receive(ws))["code"] == "unauthorized"
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)
        assert closed.value.rcvd.code == 1008


@pytest.mark.asyncio(loop_scope="session")
async def test_a_student_sees_nothing_of_other_students_or_rooms(server: ServerProcess, digit_pngs) -> None:
    mine, other = await create_room(server), await create_room(server)
    assert "secret" not in json.dumps(mine["join_url"])
    other_board = await Board.open(server, other)
    async with connect(server) as me, connect(server) as stranger, connect(server) as classmate:
        await me.send(json.dumps({"type": "join", "room": mine["room"], "name": "me"}))
        joined = await receive_type(me, "joined")
        assert set(joined) == {"type", "room", "student", "name", "prompt"}
        await classmate.send(json.dumps({"type": "join", "room": mine["room"], "name": "classmate"}))
        await stranger.send(json.dumps({"type": "join", "room": other["room"], "name": "stranger"}))
        await receive_type(classmate, "joined")
        await receive_type(stranger, "joined")
        await classmate.send(digit_pngs[0][0])
        await stranger.send(digit_pngs[1][0])
        await other_board.command(type="prompt", digit=4)
        await receive_type(stranger, "prompt")
        await me.send(json.dumps({"type": "ping", "t": "last"}))
        # Everything `me` receives is its own pong: nothing about the classmate, the stranger or room B.
        assert await receive(me) == {"type": "pong", "t": "last"}
    # The join code alone does not open the dashboard.
    async with connect(server, "/ws/teacher", address="127.0.0.5") as ws:
        await ws.send(json.dumps({"type": "auth", "room": mine["room"], "secret": other["secret"]}))
        assert (await receive(ws))["code"] == "unauthorized"
    await other_board.ws.close()


@pytest.mark.asyncio(loop_scope="session")
async def test_wrong_codes_are_rate_limited_per_address(server: ServerProcess) -> None:
    room = await create_room(server)
    async with connect(server, address="127.0.0.9") as guesser, connect(server) as student:
        codes = []
        for _ in range(30):
            await guesser.send(json.dumps({"type": "join", "room": new_code(), "name": "guess"}))
            codes.append((await receive_type(guesser, "error"))["code"])
            if codes[-1] == "rate_limited":
                break
        assert codes[0] == "room_not_found" and codes[-1] == "rate_limited"
        assert "room_not_found" not in codes[codes.index("rate_limited"):]
        await guesser.send(json.dumps({"type": "join", "room": room["room"], "name": "guess"}))
        assert (await receive_type(guesser, "error"))["code"] == "rate_limited", "even a right code, while limited"
        await student.send(json.dumps({"type": "join", "room": room["room"], "name": "other address"}))
        assert (await receive_type(student, "joined"))["room"] == room["room"]
    async with httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(local_address="127.0.0.9")) as client:
        response = await client.get(f"{server.base_url}/api/rooms/{room['room']}/qr.svg")
        assert response.status_code == 429
        assert 1 <= int(response.headers["Retry-After"]) <= 3


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize("name", ["", "x" * (MAX_NAME_LENGTH + 1), "tab\there", None])
async def test_bad_display_names_are_refused(server: ServerProcess, name: Any) -> None:
    room = await create_room(server)
    async with connect(server) as ws:
        await ws.send(json.dumps({"type": "join", "room": room["room"], "name": name}))
        error = await receive_type(ws, "error")
        assert error["code"] == "bad_name"


@pytest.mark.asyncio(loop_scope="session")
async def test_the_room_has_a_qr_code_and_the_dashboard_a_page(server: ServerProcess) -> None:
    room = await create_room(server)
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        qr = await client.get(room["qr_svg"])
        assert qr.status_code == 200 and qr.headers["content-type"].startswith("image/svg+xml")
        assert b"<svg" in qr.content
        page = await client.get("/classroom")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert room["secret"] not in page.text


@pytest.mark.asyncio(loop_scope="session")
async def test_bad_teacher_commands_are_answered_and_the_dashboard_stays(server: ServerProcess) -> None:
    room = await create_room(server)
    board = await Board.open(server, room)
    await board.command(type="prompt", digit=12)
    assert (await receive(board.ws))["code"] == "bad_message"
    await board.command(type="remove", student="nobody")
    assert (await receive(board.ws))["code"] == "unknown_student"
    await board.command(type="ping", t=5)
    assert await receive(board.ws) == {"type": "pong", "t": 5}
    await board.ws.close()


@pytest.mark.asyncio(loop_scope="session")
async def test_a_student_who_drew_before_joining_arrives_with_the_drawing(server: ServerProcess, digit_pngs) -> None:
    room = await create_room(server)
    board = await Board.open(server, room)
    async with connect(server) as ws:
        await ws.send(digit_pngs[5][0])
        digit = (await receive_type(ws, "prediction"))["digit"]
        await ws.send(json.dumps({"type": "join", "room": room["room"], "name": "early"}))
        student = (await receive_type(ws, "joined"))["student"]
        await board.until(lambda b: student in b.tiles and b.tiles[student]["digit"] == digit)
    await board.ws.close()
