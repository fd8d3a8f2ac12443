"""The server under faults and misbehaving clients: floods, clients that never read, abrupt
disconnects, many idle sockets, a failing model, SIGTERM while drawers stream.

Tests that need to look inside (tasks on the server's loop, its connections, a model that
fails on demand) run the real app in a real uvicorn server on a thread (tests/inprocess.py);
the others use real server processes. Speed is measured by bench/load.py, not here: the few
time bounds below are generous ceilings that only a hang would reach.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import resource
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import numpy as np
import pytest
import websockets
import websockets.sync.client
from websockets.exceptions import ConnectionClosed

from server.config import Settings
from tests.inprocess import InProcessServer, SwitchablePredictor
from tests.support import ANSWER_TIMEOUT_S, ServerProcess, canvas_png, holdout

pytestmark = pytest.mark.asyncio(loop_scope="session")

FRAME_INTERVAL_S = 0.05  # a drawer streams at 20 Hz
GENEROUS_LATENCY_S = 3.0


# -- helpers --------------------------------------------------------------------------------------


def stroke(digit: np.ndarray, frames: int = 15) -> list[bytes]:
    """A digit drawn top to bottom, as 128 px snapshots like the page sends."""
    rows = np.flatnonzero(digit.any(axis=1))
    snapshots = []
    for frame in range(1, frames + 1):
        partial = digit.copy()
        partial[rows[0] + round((rows[-1] + 1 - rows[0]) * frame / frames) :] = 0
        snapshots.append(canvas_png(partial, size=128))
    return snapshots


@pytest.fixture(scope="module")
def digits() -> list[tuple[list[bytes], int]]:
    x, y = holdout()
    return [(stroke(x[index]), int(y[index])) for index in range(10)]


async def answer(ws: websockets.ClientConnection, seq: int) -> dict:
    """The answer (prediction or error) to snapshot `seq`; older ones are skipped."""
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), ANSWER_TIMEOUT_S))
        if message.get("seq", 0) >= seq:
            return message


async def draw(ws: websockets.ClientConnection, frames: list[bytes], sent: int = 0) -> tuple[dict, float]:
    """Stream one stroke at 20 Hz on a socket that has sent `sent` snapshots so far; return the
    answer to the stroke's last snapshot and how long it took."""
    for frame in frames[:-1]:
        await ws.send(frame)
        await asyncio.sleep(FRAME_INTERVAL_S)
    sent_at = time.monotonic()
    await ws.send(frames[-1])  # the pen is lifted: the stroke's end is always answered
    return await answer(ws, sent + len(frames)), time.monotonic() - sent_at


async def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the server"
        await asyncio.sleep(0.05)


def open_connections(server: InProcessServer) -> float:
    value = server.service.metrics.registry.get_sample_value("digitstream_open_connections")
    assert value is not None
    return value


@pytest.fixture(scope="module")
def predictor() -> SwitchablePredictor:
    return SwitchablePredictor()


@pytest.fixture(scope="module")
def inprocess(predictor: SwitchablePredictor) -> Iterator[InProcessServer]:
    # a short send timeout, and pings read as fast as they come, so the test of a client that
    # never reads need not wait for its buffers to fill; room for the 500 sockets one test opens
    # from one address
    settings = Settings(send_timeout_s=1.0, max_connections_per_address=600, max_control_rate=10_000)
    server = InProcessServer(settings, predictor.load).start()
    asyncio.run(warm_up(server))
    yield server
    server.stop()


async def warm_up(server: InProcessServer) -> None:
    """Start the threads the server starts on demand (its preprocessing pool), so later
    thread counts compare like with like."""
    x, _ = holdout()
    clients = await asyncio.gather(*(websockets.connect(server.ws_url) for _ in range(4)))
    for ws in clients:
        await ws.send(canvas_png(x[0], size=128))
    for ws in clients:
        await answer(ws, 1)
        await ws.close()


@pytest.fixture
async def idle(inprocess: InProcessServer) -> tuple[int, int]:
    """The server with no connection left: (its tasks, this process's threads)."""
    await wait_until(lambda: inprocess.connections() == 0 and open_connections(inprocess) == 0)
    inprocess.errors.records.clear()
    return inprocess.tasks(), threading.active_count()


async def assert_back_to(server: InProcessServer, idle: tuple[int, int]) -> None:
    await wait_until(lambda: server.connections() == 0 and open_connections(server) == 0)
    await wait_until(lambda: server.tasks() <= idle[0], timeout=5)
    assert threading.active_count() <= idle[1]
    assert server.service.queue.depth == 0
    assert server.errors.describe() == []


# -- misbehaving clients --------------------------------------------------------------------------


def flood(url: str, frame: bytes, stop: threading.Event, sent: list[int]) -> None:
    """As fast as the socket takes them, and never reading an answer."""
    with websockets.sync.client.connect(url, max_queue=1) as ws:
        while not stop.is_set():
            ws.send(frame)
            sent[0] += 1


async def test_a_flooding_client_does_not_starve_ten_drawers(server: ServerProcess, digits) -> None:
    stop, sent = threading.Event(), [0]
    flooder = threading.Thread(target=flood, args=(server.ws_url, digits[0][0][-1], stop, sent), daemon=True)
    flooder.start()
    try:

        async def drawer(frames: list[bytes], label: int) -> list[float]:
            async with websockets.connect(server.ws_url) as ws:
                latencies = []
                for strokes_drawn in range(2):
                    message, latency = await draw(ws, frames, sent=strokes_drawn * len(frames))
                    assert message["type"] == "prediction" and message["digit"] == label, message
                    latencies.append(latency)
                return latencies

        latencies = await asyncio.gather(*(drawer(*digit) for digit in digits))
    finally:
        stop.set()
        flooder.join(10)
    assert sent[0] > 100, "the flooder never got going"
    assert max(max(each) for each in latencies) < GENEROUS_LATENCY_S
    assert "Traceback" not in server.log_text()


async def test_a_client_that_never_reads_is_dropped_and_others_keep_drawing(inprocess, idle, digits) -> None:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills quickly
    sock.connect(("127.0.0.1", inprocess.settings.port))
    sock.setblocking(False)
    lazy = await websockets.connect(inprocess.ws_url, sock=sock, max_queue=1)  # stops reading at once
    frames, label = digits[1]
    # as large as a control message may be, and incompressible: its pong is as large
    big_ping = json.dumps({"type": "ping", "t": base64.b64encode(os.urandom(Settings().max_text_bytes // 2)).decode()})

    async def send_and_never_read() -> None:
        with contextlib.suppress(ConnectionClosed, OSError):  # once dropped, sending fails: the point
            while True:
                await lazy.send(frames[-1])
                await lazy.send(big_ping)
                await asyncio.sleep(0.005)

    lazy_sender = asyncio.create_task(send_and_never_read())
    async with websockets.connect(inprocess.ws_url) as drawer:
        strokes = 0
        while open_connections(inprocess) > 1 or strokes == 0:
            assert strokes < 200, "the server kept a client that never reads"
            message, _ = await draw(drawer, frames[-4:], sent=strokes * 4)
            assert message["type"] == "prediction" and message["digit"] == label, message
            strokes += 1
        message, _ = await draw(drawer, frames[-4:], sent=strokes * 4)
        assert message["type"] == "prediction" and message["digit"] == label, message
    lazy_sender.cancel()
    # The client still never reads: the server must let go of its TCP connection, the close
    # frame it could not send included, or such clients pile up outside the socket caps.
    await assert_back_to(inprocess, idle)
    lazy.transport.abort()


async def test_disconnecting_while_snapshots_are_queued_leaks_nothing(inprocess, predictor, idle, digits) -> None:
    frames, label = digits[2]
    holder = await websockets.connect(inprocess.ws_url)
    predictor.gate.clear()
    try:
        await holder.send(frames[-1])
        await wait_until(predictor.waiting.is_set)  # the worker is busy with the holder's batch
        leavers = await asyncio.gather(*(websockets.connect(inprocess.ws_url) for _ in range(10)))
        for ws in leavers:
            await ws.send(frames[-1])
        await wait_until(lambda: inprocess.service.queue.depth == len(leavers))
        for index, ws in enumerate(leavers):
            if index % 2:
                ws.transport.abort()  # gone without a close frame, as a closed laptop
            else:
                await ws.close()
        await wait_until(lambda: open_connections(inprocess) == 1 and inprocess.service.queue.depth == 0)
    finally:
        predictor.gate.set()
    message = await answer(holder, 1)
    assert message["type"] == "prediction" and message["digit"] == label
    await holder.close()
    await assert_back_to(inprocess, idle)


def raise_open_files_limit(needed: int) -> None:
    """Both ends of every socket live in this process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


async def test_five_hundred_idle_connections_opened_and_closed_leak_nothing(inprocess, idle) -> None:
    raise_open_files_limit(2 * 500 + 256)
    for _ in range(2):
        sockets = []
        for _ in range(5):
            sockets += await asyncio.gather(*(websockets.connect(inprocess.ws_url) for _ in range(100)))
        await wait_until(lambda: open_connections(inprocess) == 500)
        for index, ws in enumerate(sockets):
            if index % 2:
                ws.transport.abort()
        await asyncio.gather(*(ws.close() for index, ws in enumerate(sockets) if not index % 2))
        await assert_back_to(inprocess, idle)


# -- faults -------------------------------------------------------------------------------------


async def test_a_failing_batch_answers_every_waiter_with_an_error_and_the_next_batch_works(
    inprocess, predictor, idle, digits
) -> None:
    frames, label = digits[3]
    clients = await asyncio.gather(*(websockets.connect(inprocess.ws_url) for _ in range(8)))
    failed_before = len(predictor.failed_batch_sizes)
    predictor.gate.clear()
    predictor.failing.set()
    try:
        await clients[0].send(frames[-1])
        await wait_until(predictor.waiting.is_set)
        for ws in clients[1:]:
            await ws.send(frames[-1])
        await wait_until(lambda: inprocess.service.queue.depth == len(clients) - 1)
        predictor.gate.set()  # the holder's batch fails, then the batches of the other seven
        failures = await asyncio.gather(*(answer(ws, 1) for ws in clients))
    finally:
        predictor.gate.set()
        predictor.failing.clear()
    assert [(message["type"], message["code"]) for message in failures] == [("error", "internal")] * len(clients)
    assert "injected" not in json.dumps(failures)
    failed = predictor.failed_batch_sizes[failed_before:]
    assert failed[0] == 1 and sum(failed) == len(clients), failed
    for ws in clients:
        await ws.send(frames[-1])
    for ws in clients:
        message = await answer(ws, 2)
        assert message["type"] == "prediction" and message["digit"] == label
        await ws.close()
    assert {record.getMessage() for record in inprocess.errors.records} <= {
        f"the model failed on a batch of {size}" for size in failed
    }
    inprocess.errors.records.clear()
    await assert_back_to(inprocess, idle)


async def health(server: InProcessServer) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(f"{server.base_url}/healthz")


async def test_a_hung_model_fails_snapshots_at_the_deadline_and_healthz_says_stalled(digits) -> None:
    predictor = SwitchablePredictor()
    server = InProcessServer(Settings(model_deadline_s=1.0), predictor.load).start()
    frames, label = digits[4]
    try:
        async with websockets.connect(server.ws_url) as ws, httpx.AsyncClient() as client:
            predictor.gate.clear()
            try:
                await ws.send(frames[-1])
                failure = await answer(ws, 1)
                assert (failure["type"], failure["code"], failure["seq"]) == ("error", "model_timeout", 1)
                stalled = await health(server)
                assert stalled.status_code == 503 and stalled.json()["status"] == "stalled"
                posted = await client.post(
                    f"{server.base_url}/api/classify", content=frames[-1], headers={"content-type": "image/png"}
                )
                assert posted.status_code == 503 and posted.json()["code"] == "model_timeout"
            finally:
                predictor.gate.set()
            deadline = time.monotonic() + ANSWER_TIMEOUT_S
            while (await health(server)).status_code != 200:
                assert time.monotonic() < deadline, "/healthz never recovered"
                await asyncio.sleep(0.05)
            await ws.send(frames[-1])
            message = await answer(ws, 2)
            assert message["type"] == "prediction" and message["digit"] == label
        assert server.errors.describe() == []
    finally:
        server.stop()


async def test_sigterm_while_drawers_stream_answers_in_flight_then_closes_with_1001(tmp_path, digits) -> None:
    server = ServerProcess(log_path=tmp_path / "server.log").start()

    async def drawer(frames: list[bytes]) -> tuple[list[float], list[dict], int | None]:
        """Streams snapshots and pings until the server closes; returns when each snapshot was
        sent, what came back, and the close code."""
        sent_at: list[float] = []
        messages: list[dict] = []
        async with websockets.connect(server.ws_url) as ws:

            async def read() -> None:
                async for raw in ws:
                    messages.append(json.loads(raw))

            reader = asyncio.create_task(read())
            with contextlib.suppress(ConnectionClosed):
                for frame in itertools.cycle(frames):
                    await ws.send(frame)
                    sent_at.append(time.monotonic())
                    await ws.send(json.dumps({"type": "ping", "t": len(sent_at)}))
                    await asyncio.sleep(FRAME_INTERVAL_S)
            await asyncio.wait_for(reader, 10)
            return sent_at, messages, ws.close_code

    try:
        drawers = [asyncio.create_task(drawer(frames)) for frames, _ in digits]
        await asyncio.sleep(2.0)
        stopped_at = time.monotonic()
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        results = await asyncio.wait_for(asyncio.gather(*drawers), 30)
        assert await asyncio.to_thread(server.process.wait, 10) in (0, -signal.SIGTERM)
        assert time.monotonic() - stopped_at < 5
    finally:
        server.stop(signal.SIGKILL)
    for sent_at, messages, close_code in results:
        assert close_code == 1001
        assert [message for message in messages if message["type"] == "error"] == []
        predictions = [message for message in messages if message["type"] == "prediction"]
        # the server numbers only the snapshots it took in before SIGTERM; those sent a
        # generous second before it surely were, and the newest of them must be answered
        surely_taken = sum(moment < stopped_at - 1.0 for moment in sent_at)
        assert predictions and predictions[-1]["seq"] >= surely_taken
    assert "Traceback" not in server.log_text()
