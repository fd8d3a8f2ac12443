"""The limits of docs/security.md against real servers: huge control frames, hostile display
names and secrets, rebinding host names, socket caps, idle sockets, a flooding socket and an
address sending the costliest snapshots.

Each test proves an outcome a client can see (an error code, a close code, an answer that
still arrives); none measures time. Tests that spend wrong guesses connect from their own
loopback address, so the address the other modules share keeps its rate-limit budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import websockets
from PIL import Image
from websockets.exceptions import ConnectionClosed, InvalidStatus

from server.classroom.names import MAX_NAME_LENGTH, BadName, display_name
from server.config import MIB, Settings
from server.pace import Pace
from tests.inprocess import InProcessServer
from tests.support import ANSWER_TIMEOUT_S, ServerProcess, canvas_png, closed_with, holdout, receive, receive_type


async def create_room(server: ServerProcess) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{server.base_url}/api/rooms", headers={"Origin": server.base_url})
    assert response.status_code == 201, response.text
    return response.json()


def connect(server: ServerProcess, path: str = "/ws", address: str = "127.0.0.1", **options: Any) -> websockets.connect:
    return websockets.connect(server.ws_url.replace("/ws", path), local_addr=(address, 0), **options)


@pytest.fixture(scope="module")
def digit() -> tuple[bytes, int]:
    x, y = holdout()
    return canvas_png(x[5], size=128), int(y[5])


# -- huge control frames ------------------------------------------------------------------


async def test_a_one_mib_join_is_refused_unread_and_another_socket_is_answered(server: ServerProcess, digit) -> None:
    png, label = digit
    room = await create_room(server)
    huge = json.dumps({"type": "join", "room": room["room"], "name": "A" * (MIB - 200)})
    assert len(huge.encode()) <= MIB  # under the frame limit: the text cap refuses it, not a 1009
    async with connect(server, max_size=None) as attacker, connect(server) as drawer:
        for _ in range(3):
            await attacker.send(huge)
        await drawer.send(png)
        await drawer.send(json.dumps({"type": "ping", "t": "drawer"}))
        answers = {message["type"]: message for message in [await receive(drawer), await receive(drawer)]}
        assert answers["prediction"]["seq"] == 1 and answers["prediction"]["digit"] == label
        assert answers["pong"] == {"type": "pong", "t": "drawer"}
        for _ in range(3):
            refusal = await receive(attacker)
            assert (refusal["type"], refusal["code"]) == ("error", "too_large")
        await attacker.send(json.dumps({"type": "ping", "t": "still open"}))
        assert await receive(attacker) == {"type": "pong", "t": "still open"}


async def test_the_text_cap_counts_utf8_bytes_not_characters(server: ServerProcess) -> None:
    limit = Settings().max_text_bytes
    padding = len(json.dumps({"type": "ping", "t": ""}))
    # "é" is two bytes: the over-long ping has fewer characters than the limit
    at_limit = json.dumps({"type": "ping", "t": "é" * ((limit - padding) // 2)}, ensure_ascii=False)
    over_limit = json.dumps({"type": "ping", "t": "é" * (limit // 2)}, ensure_ascii=False)
    assert len(at_limit.encode()) <= limit < len(over_limit.encode()) and len(over_limit) < limit
    async with connect(server) as client:
        await client.send(over_limit)
        refusal = await receive(client)
        assert (refusal["type"], refusal["code"]) == ("error", "too_large")
        await client.send(at_limit)
        assert (await receive(client))["type"] == "pong"


def test_a_display_name_is_measured_before_its_characters_are_read() -> None:
    # A bell in every place: were characters read first, the error would be about them.
    with pytest.raises(BadName, match="at most"):
        display_name("\x07" * 100_000)


# -- display names and secrets --------------------------------------------------------------

LOOK_ALIKES = ["Ana\u200b", "Ana\u200d", "An\u00ada", "Ana\u2060", "Ana\ufeff", "Ana\u034f", "\u202eanA"]
ACCENT_STACK = "Ana" + "\u0301" * 8


@pytest.mark.parametrize("name", [*LOOK_ALIKES, ACCENT_STACK])
def test_invisible_characters_and_accent_stacks_are_refused(name: str) -> None:
    with pytest.raises(BadName):
        display_name(name)


@pytest.mark.parametrize("name", ["Ana", "Nguyễn Thị", "पद्मा", "ปิ่น", "Łukasz", "李小龍", "Zoë 🦊"])
def test_names_in_real_scripts_are_kept(name: str) -> None:
    assert display_name(name) == name
    assert len(name) <= MAX_NAME_LENGTH


async def test_only_the_visible_ana_joins(server: ServerProcess) -> None:
    room = await create_room(server)
    async with connect(server) as ana:
        await ana.send(json.dumps({"type": "join", "room": room["room"], "name": "Ana"}))
        assert (await receive_type(ana, "joined"))["name"] == "Ana"
        for name in [*LOOK_ALIKES, ACCENT_STACK]:
            async with connect(server) as twin:
                await twin.send(json.dumps({"type": "join", "room": room["room"], "name": name}))
                error = await receive_type(twin, "error")
                assert error["code"] == "bad_name", name


async def test_a_lone_surrogate_secret_is_unauthorized_not_a_server_error(server: ServerProcess) -> None:
    room = await create_room(server)
    async with connect(server, "/ws/teacher", address="127.0.0.9") as ws:
        # json.dumps escapes it as \ud800: valid UTF-8 on the wire, a lone surrogate once parsed
        await ws.send(json.dumps({"type": "auth", "room": room["room"], "secret": "\ud800"}))
        assert (await receive(ws))["code"] == "unauthorized"
        assert await closed_with(ws) == 1008
    assert "Traceback" not in server.log_text()


# -- host names (DNS rebinding) -----------------------------------------------------------


@pytest.fixture(scope="module")
def named(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server that also answers to one configured name, drops sockets silent for 3 s (every
    test here speaks at once) and answers each socket at most 5 times a second after 2 at once."""
    log_path = tmp_path_factory.mktemp("named") / "server.log"
    args = [
        "--allowed-hosts",
        "maths-room.school.example",
        "--idle-timeout-s",
        "3",
        "--max-snapshot-rate",
        "5",
        "--snapshot-burst",
        "2",
    ]
    server = ServerProcess(args=args, log_path=log_path).start()
    yield server
    server.stop()


def ws_through(server: ServerProcess, host: str, **options: Any) -> websockets.connect:
    """A WebSocket to the server whose handshake says `Host: host`, as after a DNS rebinding."""
    sock = socket.create_connection(("127.0.0.1", server.port))
    return websockets.connect(f"ws://{host}:{server.port}/ws", sock=sock, **options)


@pytest.mark.parametrize("host", ["rebound.attacker.example", "maths-room.school.example.attacker.example"])
async def test_a_page_on_a_rebound_name_is_refused(named: ServerProcess, host: str) -> None:
    origin = f"http://{host}:{named.port}"
    async with httpx.AsyncClient() as client:
        page = await client.get(f"{named.base_url}/", headers={"Host": f"{host}:{named.port}"})
        rooms = await client.post(
            f"{named.base_url}/api/rooms", headers={"Host": f"{host}:{named.port}", "Origin": origin}
        )
    assert page.status_code == 400 and rooms.status_code == 400
    with pytest.raises(InvalidStatus) as refused:
        async with ws_through(named, host, origin=origin):
            pass
    assert refused.value.response.status_code == 400


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "[::1]",
        "192.168.1.20",
        "[fd00::5]",
        "maths-room.school.example",
        "Maths-Room.School.Example.",
    ],
)
async def test_addresses_and_the_configured_name_are_served(named: ServerProcess, host: str) -> None:
    origin = f"http://{host}:{named.port}"
    async with httpx.AsyncClient() as client:
        page = await client.get(f"{named.base_url}/", headers={"Host": f"{host}:{named.port}"})
    assert page.status_code == 200
    async with ws_through(named, host, origin=origin) as ws:
        await ws.send(json.dumps({"type": "ping", "t": host}))
        assert await receive(ws) == {"type": "pong", "t": host}


# -- socket caps and idle sockets ----------------------------------------------------------


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    log_path = tmp_path_factory.mktemp("capped") / "server.log"
    args = ["--max-connections", "6", "--max-connections-per-address", "3"]
    server = ServerProcess(args=args, log_path=log_path).start()
    yield server
    server.stop()


async def refused_for_capacity(ws: websockets.ClientConnection) -> None:
    error = await receive(ws)
    assert (error["type"], error["code"]) == ("error", "too_many_connections")
    assert await closed_with(ws) == 1013


async def admitted(server: ServerProcess, address: str) -> websockets.ClientConnection:
    """A socket from `address` once the server has released the slot of one just closed."""
    deadline = time.monotonic() + ANSWER_TIMEOUT_S
    while True:
        ws = await connect(server, address=address)
        with contextlib.suppress(ConnectionClosed):  # a refusal's close may surface on the send
            await ws.send(json.dumps({"type": "ping", "t": 0}))
            if (await receive(ws))["type"] == "pong":
                return ws
        await ws.close()
        assert time.monotonic() < deadline, "the slot of a closed socket was never released"


async def test_one_address_cannot_hold_every_socket(capped: ServerProcess) -> None:
    async with contextlib.AsyncExitStack() as stack:
        held = [await stack.enter_async_context(connect(capped, address="127.0.0.20")) for _ in range(3)]
        async with connect(capped, address="127.0.0.20") as fourth:
            await refused_for_capacity(fourth)
        async with connect(capped, address="127.0.0.21") as neighbour:
            await neighbour.send(json.dumps({"type": "ping", "t": "neighbour"}))
            assert await receive(neighbour) == {"type": "pong", "t": "neighbour"}
        await held[0].close()
        replacement = await admitted(capped, "127.0.0.20")
        await replacement.close()


async def test_the_server_caps_open_sockets_in_all(capped: ServerProcess) -> None:
    # two per address, so no address reaches its own cap
    held = [await admitted(capped, f"127.0.0.{30 + index // 2}") for index in range(6)]
    try:
        async with connect(capped, address="127.0.0.40") as seventh:
            await refused_for_capacity(seventh)
    finally:
        await asyncio.gather(*(ws.close() for ws in held))


async def test_a_silent_socket_is_closed_and_a_talking_one_is_not(named: ServerProcess) -> None:
    async with connect(named, address="127.0.0.50") as silent, connect(named, address="127.0.0.51") as talking:
        closing = asyncio.create_task(closed_with(silent))
        pings = 0
        while not closing.done():
            await talking.send(json.dumps({"type": "ping", "t": pings}))
            assert await receive(talking) == {"type": "pong", "t": pings}
            pings += 1
        assert closing.result() == 1001
        await talking.send(json.dumps({"type": "ping", "t": "after"}))
        assert await receive(talking) == {"type": "pong", "t": "after"}


# -- a flooding socket ----------------------------------------------------------------------


def test_the_pace_allows_a_burst_then_its_rate() -> None:
    now = [100.0]
    pace = Pace(rate=5, burst=2, clock=lambda: now[0])
    for _ in range(2):
        assert pace.delay() == 0
        pace.take()
    assert pace.delay() == pytest.approx(0.2)
    now[0] += 0.1
    assert pace.delay() == pytest.approx(0.1)
    now[0] += 10
    assert pace.delay() == 0  # a long pause refills the burst, never more
    pace.take()
    pace.take()
    assert pace.delay() > 0


async def test_text_frames_past_the_control_rate_are_read_late() -> None:
    server = InProcessServer(Settings(max_control_rate=2)).start()  # two at once, then two a second
    try:
        async with websockets.connect(server.ws_url) as ws:
            for ping in range(5):
                await ws.send(json.dumps({"type": "ping", "t": ping}))
            assert [await receive(ws) for _ in range(5)] == [{"type": "pong", "t": ping} for ping in range(5)]
        assert server.service.metrics.registry.get_sample_value("digitstream_paced_text_frames_total") == 3
    finally:
        server.stop()


async def test_a_flood_is_paced_and_its_newest_snapshot_is_still_answered(named: ServerProcess, digit) -> None:
    png, label = digit
    x, y = holdout()
    other = canvas_png(x[-1], size=128)  # the hold-out is sorted by label: the last one is a 9
    assert int(y[-1]) != label
    async with connect(named) as ws:
        started = time.monotonic()
        for _ in range(29):
            await ws.send(other)
        await ws.send(png)
        seqs: list[int] = []
        while not seqs or seqs[-1] != 30:
            message = await receive(ws)
            assert message["type"] == "prediction", message
            seqs.append(message["seq"])
        elapsed = time.monotonic() - started
    assert message["digit"] == label, "the newest snapshot is answered, whatever the pace"
    assert seqs == sorted(set(seqs))
    # the burst, then at most 5 a second (and one more for the answer being sent as time ran out)
    assert len(seqs) <= 2 + 5 * elapsed + 1, (len(seqs), elapsed)


# -- costly snapshots from one address ------------------------------------------------------


def costly_snapshot(digit: np.ndarray) -> bytes:
    """A megapixel colour photo of a digit: about as costly to prepare as a snapshot may be."""
    side = 1024
    ink = np.asarray(Image.fromarray(digit).resize((side, side), Image.Resampling.BILINEAR))[..., None] / 255
    cream, blue = np.array([250, 245, 220]), np.array([30, 60, 200])
    buffer = io.BytesIO()
    Image.fromarray(np.round(cream + (blue - cream) * ink).astype(np.uint8)).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


async def test_another_address_is_answered_ahead_of_a_backlog_of_costly_snapshots(server: ServerProcess, digit) -> None:
    """Many sockets from one address fill the queue with the costliest snapshots; a page frame
    from another address is answered after at most a few of them, not after the backlog."""
    png, label = digit
    costly = costly_snapshot(holdout()[0][7])
    answered = 0

    async def answer(ws: websockets.ClientConnection) -> None:
        nonlocal answered
        assert (await receive(ws))["type"] == "prediction"
        answered += 1

    async with contextlib.AsyncExitStack() as stack:
        flood = [await stack.enter_async_context(connect(server, address="127.0.0.40")) for _ in range(80)]
        drawer = await stack.enter_async_context(connect(server, address="127.0.0.41"))
        for ws in flood:
            await ws.send(costly)
        answers = [asyncio.ensure_future(answer(ws)) for ws in flood]
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            while (await client.get("/healthz")).json()["queue_depth"] < 60:
                assert not all(task.done() for task in answers), "the costly snapshots never queued up"
        await drawer.send(png)
        before = answered
        prediction = await receive(drawer)
        costly_answered_meanwhile = answered - before
        await asyncio.gather(*answers)
    assert (prediction["type"], prediction["digit"]) == ("prediction", label)
    assert costly_answered_meanwhile <= 10, costly_answered_meanwhile
