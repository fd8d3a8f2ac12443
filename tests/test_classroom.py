"""Classroom mode (docs/classroom.md): the parts in isolation, then a real server with a teacher
dashboard and 30 student connections.

Wrong-guess tests connect from their own loopback address (127.0.0.x), so they use up their own
rate-limit bucket and never the one the other tests (and test modules) share on 127.0.0.1.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from server.classroom.codes import (
    ALPHABET,
    CODE_LENGTH,
    new_code,
    normalize_code,
    secret_matches,
)
from server.classroom.dashboard import BadCommand, parse_command
from server.classroom.names import MAX_NAME_LENGTH, BadName, display_name
from server.classroom.ratelimit import TokenBuckets
from server.config import Settings
from tests.classroom_client import (
    Board,
    connect,
    create_room,
    join,
    receive,
    receive_type,
)
from tests.support import ServerProcess, canvas_png, holdout

STUDENTS = 30
HTML_NAME = "<img src=x onerror=f()>&amp;"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


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
    assert len(buckets) <= 2


def test_teacher_commands_are_validated() -> None:
    assert parse_command('{"type": "prompt", "digit": 7}')["digit"] == 7
    assert parse_command('{"type": "prompt", "digit": null}')["digit"] is None
    for bad in (
        '{"type": "prompt", "digit": 10}',
        '{"type": "prompt", "digit": true}',
        '{"type": "remove"}',
        '{"type": "auth"}',
        "[]",
        "nope",
        "[" * 100_000,
        None,
    ):
        with pytest.raises(BadCommand):
            parse_command(bad)


# ---- A real server --------------------------------------------------------------------------


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
        # A student who leaves disappears too; one whose tab closes stays, away, for a rejoin.
        await students[2].send(json.dumps({"type": "leave"}))
        await board.until(lambda b: ids[2] not in b.tiles)
        await students[3].close()
        await board.until(lambda b: b.tiles[ids[3]]["away"])
        assert len(board.tiles) == STUDENTS - 2

        # Close the room: every remaining student is told, the dashboard is told and closed.
        await board.command(type="close")
        for ws in students[0:1] + students[4:]:
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
@pytest.mark.parametrize(
    "auth",
    [
        {"type": "auth", "secret": "wrong"},
        {"type": "auth"},
        {"type": "prompt", "digit": 1},
    ],
)
async def test_the_dashboard_needs_the_teacher_secret(server: ServerProcess, auth: dict) -> None:
    room = await create_room(server)
    async with connect(server, "/ws/teacher", address="127.0.0.3") as ws:
        await ws.send(json.dumps({"room": room["room"], **auth}))
        assert (await receive(ws))["code"] == "unauthorized"
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


@pytest.mark.asyncio(loop_scope="session")
async def test_a_student_sees_nothing_of_other_students_or_rooms(server: ServerProcess, digit_pngs) -> None:
    mine, other = await create_room(server), await create_room(server)
    assert "secret" not in json.dumps(mine["join_url"])
    other_board = await Board.open(server, other)
    async with connect(server) as me, connect(server) as stranger, connect(server) as classmate:
        await me.send(json.dumps({"type": "join", "room": mine["room"], "name": "me"}))
        joined = await receive_type(me, "joined")
        assert set(joined) == {"type", "room", "student", "name", "prompt", "rejoin"}
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
async def test_a_socket_that_keeps_guessing_waits_but_its_classmates_do_not(server: ServerProcess) -> None:
    room = await create_room(server)
    async with connect(server, address="127.0.0.9") as guesser, connect(server, address="127.0.0.9") as classmate:
        codes = []
        for _ in range(10):
            await guesser.send(json.dumps({"type": "join", "room": new_code(), "name": "guess"}))
            error = await receive_type(guesser, "error")
            codes.append(error["code"])
            if error["code"] == "rate_limited":
                assert 1 <= error["retry_after"] <= 3
                break
        assert codes == ["room_not_found"] * 5 + ["rate_limited"]
        await guesser.send(json.dumps({"type": "join", "room": room["room"], "name": "guess"}))
        assert (await receive_type(guesser, "error"))["code"] == "rate_limited", "its own guesses: even a right code"
        assert (await join(classmate, room, "classmate"))["room"] == room["room"], "not its classmate's"
    async with httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(local_address="127.0.0.9")) as client:
        assert (await client.get(f"{server.base_url}/api/rooms/{room['room']}/qr.svg")).status_code == 200
        assert (await client.get(f"{server.base_url}/api/rooms/{new_code()}/qr.svg")).status_code == 404


@pytest.mark.asyncio(loop_scope="session")
async def test_a_socket_that_keeps_joining_waits_and_keeps_its_seat(server: ServerProcess) -> None:
    room = await create_room(server)
    board = await Board.open(server, room)
    async with connect(server, address="127.0.0.11") as rejoiner:
        for _ in range(Settings().joins_per_socket):
            seat = await join(rejoiner, room, "again")
        await rejoiner.send(json.dumps({"type": "join", "room": room["room"], "name": "again"}))
        refusal = await receive_type(rejoiner, "error")
        assert refusal["code"] == "rate_limited" and refusal["retry_after"] >= 1
        await board.until(lambda b: set(b.tiles) == {seat["student"]})
    await board.ws.close()


@pytest.mark.asyncio(loop_scope="session")
async def test_a_class_behind_one_address_joins_though_some_mistype(server: ServerProcess) -> None:
    """40 students share the school's address; 10 of them mistype the code 3 times first."""
    address = "127.0.0.10"
    room = await create_room(server, address)
    board = await Board.open(server, room, address)
    students = [await connect(server, address=address) for _ in range(40)]
    try:
        for ws in students[:10]:
            for _ in range(3):
                await ws.send(json.dumps({"type": "join", "room": new_code(), "name": "typo"}))
                assert (await receive_type(ws, "error"))["code"] == "room_not_found"
        ids = [(await join(ws, room, f"Student {i}"))["student"] for i, ws in enumerate(students)]
        await board.until(lambda b: set(b.tiles) == set(ids))
        await board.command(type="ping", t=1)
        await board.until(lambda b: b.last.get("type") == "pong")
        assert board.last == {"type": "pong", "t": 1}, "the dashboard stays connected"
    finally:
        for ws in students:
            await ws.close()
        await board.ws.close()


@pytest.mark.asyncio(loop_scope="session")
async def test_an_address_out_of_guesses_still_lets_right_codes_and_secrets_in(server: ServerProcess) -> None:
    address = "127.0.0.11"
    room = await create_room(server, address)
    waits: list[float] = []
    while not waits:  # five wrong guesses per socket until the address's budget is spent
        async with connect(server, address=address) as ws:
            for _ in range(5):
                await ws.send(json.dumps({"type": "join", "room": new_code(), "name": "guess"}))
                error = await receive_type(ws, "error")
                if error["code"] == "rate_limited":
                    waits.append(error["retry_after"])
                    break
    assert 1 <= waits[0] <= 3
    async with connect(server, address=address) as student:
        assert (await join(student, room, "on time"))["name"] == "on time"
    board = await Board.open(server, room, address)
    await board.ws.close()


@pytest.mark.asyncio(loop_scope="session")
async def test_wrong_secrets_for_one_room_wait_and_the_right_one_does_not(server: ServerProcess) -> None:
    room = await create_room(server)
    errors: list[dict[str, Any]] = []
    while not errors or errors[-1]["code"] != "rate_limited":
        async with connect(server, "/ws/teacher", address="127.0.0.12") as ws:
            await ws.send(json.dumps({"type": "auth", "room": room["room"], "secret": "guess"}))
            errors.append(await receive(ws))
    assert [e["code"] for e in errors] == ["unauthorized"] * 10 + ["rate_limited"]
    assert 1 <= errors[-1]["retry_after"] <= 3
    board = await Board.open(server, room, "127.0.0.12")
    await board.ws.close()


@pytest.mark.asyncio(loop_scope="session")
async def test_rooms_are_created_only_from_this_sites_pages(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        refused = await client.post("/api/rooms", headers={"Origin": "https://elsewhere.example"})
        assert refused.status_code == 403 and refused.json()["code"] == "bad_origin"
        assert (await client.post("/api/rooms", headers={"Origin": server.base_url})).status_code == 201


@pytest.mark.asyncio(loop_scope="session")
async def test_a_dropped_student_rejoins_the_same_seat(server: ServerProcess, digit_pngs) -> None:
    room = await create_room(server)
    board = await Board.open(server, room)
    async with connect(server) as first, connect(server) as namesake:
        joined = await join(first, room, "Ana")
        assert (await join(namesake, room, "Ana"))["name"] == "Ana 2"
        await first.send(digit_pngs[3][0])
        digit = (await receive_type(first, "prediction"))["digit"]
    await board.until(lambda b: b.tiles.get(joined["student"], {}).get("away") is True)
    assert board.tiles[joined["student"]]["digit"] == digit, "an away tile keeps its drawing"
    async with connect(server) as again:
        rejoined = await join(again, room, "Ana", rejoin=joined["rejoin"])
        assert {k: rejoined[k] for k in ("student", "name", "rejoin")} == {
            k: joined[k] for k in ("student", "name", "rejoin")
        }
        await board.until(lambda b: b.tiles[joined["student"]]["away"] is False)
        repeated = await join(again, room, "Ana", rejoin=joined["rejoin"])
        assert repeated["student"] == joined["student"], "joining again on the same connection keeps the seat"
    await board.ws.close()


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
