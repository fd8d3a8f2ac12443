"""One class across three real server processes that share a real redis-server: a teacher on
one process, students on the others. Then a process is killed mid-class and its students come
back through another, and Redis itself goes away and returns.

The processes are shared by the whole module (each loads the model and the compiled recipe),
so the test that kills one and the test that stops Redis come last, in that order.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis.asyncio as redis
import websockets

from server.classroom.bus import seats_channel
from server.classroom.codes import new_code
from tests.classroom_client import (
    Board,
    connect,
    create_room,
    join,
    receive,
    receive_type,
)
from tests.redisserver import RedisServer
from tests.support import STARTUP_TIMEOUT_S, ServerProcess, canvas_png, holdout

pytestmark = pytest.mark.asyncio(loop_scope="session")

GRACE_S = 60
UNCLAIMED_MINUTES = 0.2  # long enough for every other test to open its dashboard first
GUESSES_PER_ADDRESS = 6


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(Path(tmp_path_factory.mktemp("redis"))).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def servers(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServerProcess]]:
    logs = Path(tmp_path_factory.mktemp("servers"))
    args = [
        "--redis-url",
        redis_server.url,
        "--seat-grace-s",
        str(GRACE_S),
        "--rooms-per-address",
        "3",
        "--room-unclaimed-minutes",
        str(UNCLAIMED_MINUTES),
        "--guesses-per-address",
        str(GUESSES_PER_ADDRESS),
    ]
    processes = [ServerProcess(args=args, log_path=logs / f"server{i}.log") for i in range(3)]
    try:
        with ThreadPoolExecutor(len(processes)) as pool:
            list(pool.map(ServerProcess.start, processes))
        yield processes
    finally:
        for process in processes:
            process.stop()


@pytest.fixture(scope="module")
def digits() -> list[tuple[bytes, int]]:
    x, y = holdout()
    return [(canvas_png(x[i], size=140), int(y[i])) for i in range(0, len(y), len(y) // 12)][:12]


async def test_a_teacher_on_one_process_runs_students_on_the_others(servers, digits) -> None:
    teacher_side, *student_sides = servers
    room = await create_room(teacher_side)
    board = await Board.open(teacher_side, room)
    students = [await connect(student_sides[i % 2]) for i in range(6)]
    try:
        ids = [(await join(ws, room, "Ana"))["student"] for ws in students]
        await board.until(lambda b: set(b.tiles) == set(ids))
        assert sorted(tile["name"] for tile in board.tiles.values()) == ["Ana"] + [f"Ana {n}" for n in range(2, 7)]

        for ws, (png, _) in zip(students, digits):
            await ws.send(png)
        predicted = [(await receive_type(ws, "prediction"))["digit"] for ws in students]
        await board.until(lambda b: [b.tiles[i]["digit"] for i in ids] == predicted)

        await board.command(type="prompt", digit=predicted[0])
        for ws in students:
            assert (await receive_type(ws, "prompt"))["digit"] == predicted[0]
        await board.until(lambda b: b.last.get("prompt") == predicted[0])
        assert board.last["matching"] == predicted.count(predicted[0])

        await board.command(type="clear_all")
        for ws in students:
            await receive_type(ws, "clear_pad")
        await board.until(lambda b: all(t["digit"] is None for t in b.tiles.values()) and b.last["matching"] == 0)

        await board.command(type="remove", student=ids[1])
        await receive_type(students[1], "removed")
        await board.until(lambda b: ids[1] not in b.tiles)

        await board.command(type="close")
        for ws in students[:1] + students[2:]:
            assert (await receive_type(ws, "room_closed"))["reason"] == "closed"
        await board.until(lambda b: False)
        assert board.last == {"type": "closed", "reason": "closed"}
        async with connect(student_sides[0]) as late:
            await late.send(json.dumps({"type": "join", "room": room["room"], "name": "late"}))
            assert (await receive_type(late, "error"))["code"] == "room_not_found"
    finally:
        for ws in students:
            await ws.close()
        await board.ws.close()


async def test_a_dashboard_on_any_process_opens_the_room_and_codes_work_everywhere(servers) -> None:
    room = await create_room(servers[1])
    boards = [await Board.open(server, room) for server in servers]
    async with connect(servers[2]) as ws:
        student = (await join(ws, room, "Ben"))["student"]
        for board in boards:
            await board.until(lambda b: student in b.tiles)
    async with httpx.AsyncClient() as client:
        qr = await client.get(f"{servers[0].base_url}{room['qr_svg']}")
        assert qr.status_code == 200 and b"<svg" in qr.content
    for board in boards:
        await board.ws.close()


async def test_open_rooms_per_address_are_counted_over_every_process(servers) -> None:
    address = "127.0.0.30"
    rooms = [await create_room(server, address) for server in servers]
    boards = [await Board.open(servers[0], room) for room in rooms]
    async with httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(local_address=address)) as client:
        refused = await client.post(f"{servers[1].base_url}/api/rooms")
    assert refused.status_code == 429 and refused.json()["code"] == "too_many_rooms"
    for board in boards:
        await board.command(type="close")
        await board.until(lambda b: False)
    await create_room(servers[2], address)


async def test_a_room_no_dashboard_opened_closes_on_its_own(servers) -> None:
    room = await create_room(servers[0])
    async with connect(servers[1]) as ws:
        await join(ws, room, "early")
        assert (await receive_type(ws, "room_closed", timeout=UNCLAIMED_MINUTES * 60 + 30))["reason"] == "expired"


async def test_wrong_guesses_from_one_address_count_on_every_process(servers) -> None:
    sockets = [await connect(server, address="127.0.0.31") for server in servers[:2]]
    codes = []
    try:
        for ws in sockets * 4:  # eight guesses over two processes, within each socket's own budget
            await ws.send(json.dumps({"type": "join", "room": new_code(), "name": "guess"}))
            codes.append((await receive_type(ws, "error"))["code"])
    finally:
        for ws in sockets:
            await ws.close()
    assert codes == ["room_not_found"] * GUESSES_PER_ADDRESS + ["rate_limited"] * (8 - GUESSES_PER_ADDRESS)


async def test_a_dropped_subscription_redraws_every_dashboard_tile(servers, redis_server, digits) -> None:
    """Redis drops a subscriber on a network blip or past its output buffer limit, and the events
    published until it resubscribes are lost. A process must notice even when it reconnects at
    once, and redraw its dashboards from what Redis holds: every tile, not only the missing ones."""
    teacher_side, student_side = servers[:2]
    room = await create_room(teacher_side, address="127.0.0.52")  # the module's address has its rooms
    board = await Board.open(teacher_side, room)
    async with connect(student_side) as student:
        ana = (await join(student, room, "Ana"))["student"]
        image, label = digits[4]
        await student.send(image)
        await board.until(lambda b: ana in b.tiles and b.tiles[ana]["digit"] == label)
        deltas = board.deltas
        admin = redis.Redis.from_url(redis_server.url)
        try:
            assert await admin.client_kill_filter(_type="pubsub") >= 2
        finally:
            await admin.aclose()
        await board.until(lambda b: b.deltas > deltas and ana in {t["id"] for t in b.last["changed"]})
        assert board.tiles[ana]["digit"] == label
    await board.ws.close()


async def test_an_event_no_process_can_read_is_skipped_and_the_next_ones_arrive(servers, redis_server) -> None:
    teacher_side, student_side = servers[:2]
    room = await create_room(teacher_side, address="127.0.0.53")  # the module's address has its rooms
    board = await Board.open(teacher_side, room)
    async with connect(student_side) as student:
        await join(student, room, "Ana")
        admin = redis.Redis.from_url(redis_server.url)
        try:
            assert await admin.publish(seats_channel(room["room"]), b"not an event") >= 1
        finally:
            await admin.aclose()
        await board.command(type="prompt", digit=6)
        assert (await receive_type(student, "prompt"))["digit"] == 6
    await board.ws.close()
    assert "could not be handled (JSONDecodeError)" in student_side.log_text()


async def test_students_of_a_killed_process_come_back_through_another(servers, digits) -> None:
    teacher_side, survivor, doomed = servers
    room = await create_room(teacher_side)
    board = await Board.open(teacher_side, room)
    students = [await connect(doomed) for _ in range(3)] + [await connect(survivor)]
    joined = [await join(ws, room, f"S{i}") for i, ws in enumerate(students)]
    ids = [j["student"] for j in joined]
    await board.until(lambda b: set(b.tiles) == set(ids))

    doomed.stop(signal.SIGKILL)
    for ws in students[:3]:
        with pytest.raises(websockets.ConnectionClosed):
            await receive(ws)
    # Two pages reconnect to another process and rejoin with their tokens; the third never does.
    back = [await connect(survivor) for _ in range(2)]
    try:
        for ws, before in zip(back, joined):
            again = await join(ws, room, "someone else", rejoin=before["rejoin"])
            assert (again["student"], again["name"]) == (before["student"], before["name"])
        for ws, (png, _) in zip(back, digits):
            await ws.send(png)
            await receive_type(ws, "prediction")
        await board.until(lambda b: all(b.tiles[i]["digit"] is not None for i in ids[:2]))
        # The one that did not come back is shown away once the dead process misses its heartbeats.
        await board.until(lambda b: b.tiles[ids[2]]["away"])
        assert [b_tile["away"] for b_tile in (board.tiles[i] for i in ids[:2] + ids[3:])] == [False] * 3
        await board.command(type="prompt", digit=5)
        for ws in back + students[3:]:
            assert (await receive_type(ws, "prompt"))["digit"] == 5
    finally:
        for ws in back + students:
            await ws.close()
        await board.ws.close()


async def test_without_redis_drawing_goes_on_and_classes_come_back_with_it(servers, redis_server, digits) -> None:
    teacher_side, student_side = servers[:2]
    room = await create_room(teacher_side)
    board = await Board.open(teacher_side, room)
    async with connect(student_side) as student, connect(student_side) as newcomer:
        await join(student, room, "present")
        outages_logged = [server.log_text().count("is unreachable") for server in (teacher_side, student_side)]
        redis_server.stop()
        await student.send(digits[0][0])
        assert (await receive_type(student, "prediction"))["digit"] == digits[0][1], "drawing needs no Redis"
        await newcomer.send(json.dumps({"type": "join", "room": room["room"], "name": "late"}))
        unavailable = await receive_type(newcomer, "error")
        assert unavailable["code"] == "classroom_unavailable" and "Traceback" not in unavailable["message"]
        async with httpx.AsyncClient() as client:
            refused = await client.post(f"{teacher_side.base_url}/api/rooms")
        assert refused.status_code == 503 and refused.json()["code"] == "classroom_unavailable"

        redis_server.start()  # empty: it kept nothing, so this class is gone
        assert (await receive_type(student, "room_closed", timeout=30))["reason"] == "expired"
        await board.until(lambda b: False)
        assert board.last == {"type": "closed", "reason": "expired"}
        again = await create_room(teacher_side)
        await join(newcomer, again, "late")
    for server, logged in zip((teacher_side, student_side), outages_logged):
        log = server.log_text()
        assert log.count("is unreachable") == logged + 1, "the outage is logged once per process"
        assert "reachable again" in log
        assert "Traceback" not in log


async def test_with_more_than_one_worker_redis_is_required(tmp_path: Path) -> None:
    process = ServerProcess(args=["--workers", "2"], log_path=tmp_path / "workers.log")
    with pytest.raises(RuntimeError):
        process.start()
    assert "--workers 2 needs --redis-url" in process.log_text()


async def test_workers_that_cannot_start_stop_the_server_instead_of_restarting_for_ever(
    redis_server, tmp_path: Path
) -> None:
    process = ServerProcess(
        args=["--workers", "2", "--redis-url", redis_server.url, "--model", str(tmp_path / "missing.tflite")],
        log_path=tmp_path / "workers.log",
    )
    with pytest.raises(RuntimeError, match="exited with 1"):
        process.start()
    assert "a worker could not start" in process.log_text()


def wait_for_log(process: ServerProcess, text: str, count: int) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while process.log_text().count(text) < count:
        assert time.monotonic() < deadline, f"{count} × {text!r} not in {process.log_path}"
        time.sleep(0.2)


async def test_workers_share_one_port_and_serve_one_class(redis_server, tmp_path: Path, digits) -> None:
    workers = ServerProcess(args=["--workers", "2", "--redis-url", redis_server.url], log_path=tmp_path / "workers.log")
    workers.start()
    try:
        wait_for_log(workers, "model ready", 2)
        room = await create_room(workers)
        board = await Board.open(workers, room)
        students = [await connect(workers) for _ in range(8)]
        ids = [(await join(ws, room, f"W{i}"))["student"] for i, ws in enumerate(students)]
        for ws, (png, _) in zip(students, digits):
            await ws.send(png)
        predicted = [(await receive_type(ws, "prediction"))["digit"] for ws in students]
        await board.until(lambda b: [b.tiles.get(i, {}).get("digit") for i in ids] == predicted)
        for ws in students:
            await ws.close()
        await board.ws.close()
    finally:
        assert workers.stop() == 0, "SIGTERM to the parent stops every worker gracefully"
    assert workers.log_text().count("Application shutdown complete") == 2
