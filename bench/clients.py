"""The load benchmarks' clients: drawers over real WebSockets (closed and open loop), a flooding
client in a process of its own, and one-request-per-snapshot HTTP clients, each counting into a Tally."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import json
import multiprocessing
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event

import httpx
import websockets

from bench.common import FRAME_INTERVAL_S, PAUSE_S, Server


class Loop(enum.StrEnum):
    """How a benchmark's clients send."""

    CLOSED = "closed"  # each waits for its answer, then sends again: capacity
    OPEN = "open"  # drawers at 20 Hz whatever the server does: latency
    FLOOD = "flood"  # open-loop drawers next to a client sending as fast as it can


ANSWER_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Window:
    """The measured part of a row; what happens before it is warm-up."""

    start: float
    end: float

    def __contains__(self, moment: float) -> bool:
        return self.start <= moment < self.end


@dataclass
class Tally:
    sent: int = 0
    answered: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    stroke_end_ms: list[float] = field(default_factory=list)
    stroke_ends_unanswered: int = 0

    def answer(self, sent_at: float, message: dict, stroke_end: bool) -> None:
        if message.get("type") != "prediction" and "predicted_digit" not in message:
            self.errors += 1
            return
        self.answered += 1
        latency_ms = (time.perf_counter() - sent_at) * 1000
        self.latencies_ms.append(latency_ms)
        if stroke_end:
            self.stroke_end_ms.append(latency_ms)


async def sleep_until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.perf_counter()))


# -- WebSocket clients ----------------------------------------------------------------------


async def ws_closed_loop(ws: websockets.ClientConnection, frames: list[bytes], window: Window, tally: Tally) -> None:
    for frame in itertools.cycle(frames):
        sent_at = time.perf_counter()
        if sent_at >= window.end:
            return
        await ws.send(frame)
        try:
            message = json.loads(await asyncio.wait_for(ws.recv(), ANSWER_TIMEOUT_S))
        except TimeoutError:  # a drawer gives up; this client's later answers would be out of step
            tally.errors += sent_at in window
            return
        if sent_at in window:
            tally.sent += 1
            tally.answer(sent_at, message, stroke_end=False)


async def ws_open_loop(
    ws: websockets.ClientConnection, drawing: list[list[bytes]], window: Window, tally: Tally
) -> None:
    pending: dict[int, tuple[float, bool]] = {}  # seq -> (sent at, stroke end), measured snapshots only
    receiver = asyncio.create_task(ws_receive(ws, pending, tally))
    seq, moment = 0, time.perf_counter() + random.uniform(0, FRAME_INTERVAL_S * 40)
    try:
        for stroke in itertools.cycle(drawing):
            for index, frame in enumerate(stroke):
                await sleep_until(moment)
                moment += FRAME_INTERVAL_S
                sent_at = time.perf_counter()
                if sent_at >= window.end:
                    return
                seq += 1
                if sent_at in window:
                    tally.sent += 1
                    pending[seq] = (sent_at, index == len(stroke) - 1)
                await ws.send(frame)
            moment += PAUSE_S
    finally:
        # the newest snapshot is always answered: wait for it, then count what never was
        deadline = time.perf_counter() + ANSWER_TIMEOUT_S
        while pending and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        receiver.cancel()
        tally.stroke_ends_unanswered += sum(stroke_end for _, stroke_end in pending.values())


async def ws_receive(ws: websockets.ClientConnection, pending: dict[int, tuple[float, bool]], tally: Tally) -> None:
    async for raw in ws:
        message = json.loads(raw)
        seq = message.get("seq")
        if seq is None:
            continue
        for older in [older for older in pending if older < seq]:
            # replaced by a newer snapshot before being classified: latest wins
            tally.stroke_ends_unanswered += pending.pop(older)[1]
        if seq in pending:
            sent_at, stroke_end = pending.pop(seq)
            tally.answer(sent_at, message, stroke_end)


FLOODER_START_TIMEOUT_S = 60.0  # a spawned interpreter importing websockets on a busy machine


def flood(url: str, frame: bytes, connected: Event) -> None:
    """Runs in a process of its own, so the flood loads the server and not this client: sends
    as fast as the socket takes frames until killed, and reads whatever comes back."""

    async def send_forever(ws: websockets.ClientConnection) -> None:
        while True:
            await ws.send(frame)

    async def drain_answers(ws: websockets.ClientConnection) -> None:
        async for _ in ws:
            pass

    async def flood_forever() -> None:
        async with websockets.connect(url, max_size=None) as ws:
            connected.set()
            await asyncio.gather(send_forever(ws), drain_answers(ws))

    asyncio.run(flood_forever())


@contextlib.asynccontextmanager
async def flooding(url: str, frame: bytes) -> AsyncIterator[None]:
    """A flooder already connected and sending when the block starts. What it sent is no
    measure of its load: the kernel's socket buffers take thousands of frames at once, then
    the server reads them at its own pace."""
    context = multiprocessing.get_context("spawn")
    connected = context.Event()
    process = context.Process(target=flood, args=(url, frame, connected), daemon=True)
    process.start()
    try:
        if not await asyncio.to_thread(connected.wait, FLOODER_START_TIMEOUT_S):
            raise RuntimeError("the flooder did not connect")
        yield
    finally:
        # Killed, not asked to stop: its socket buffers hold seconds of frames the server would
        # go on reading into the next run.
        process.kill()
        await asyncio.to_thread(process.join)


# -- one-request-per-snapshot HTTP clients------------------------------------------------------


async def http_post(client: httpx.AsyncClient, frame: bytes, stroke_end: bool, window: Window, tally: Tally) -> None:
    sent_at = time.perf_counter()
    try:
        # httpx's timeout is per phase (pool, connect, read…); a drawer gives up on the whole
        posting = client.post("/classify", content=frame, headers={"content-type": "image/png"})
        message = (await asyncio.wait_for(posting, ANSWER_TIMEOUT_S)).json()
    except (httpx.HTTPError, TimeoutError):
        message = {"type": "error"}
    if sent_at in window:
        tally.sent += 1
        tally.answer(sent_at, message, stroke_end)


async def http_closed_loop(client: httpx.AsyncClient, frames: list[bytes], window: Window, tally: Tally) -> None:
    for frame in itertools.cycle(frames):
        if time.perf_counter() >= window.end:
            return
        await http_post(client, frame, False, window, tally)


async def http_open_loop(client: httpx.AsyncClient, drawing: list[list[bytes]], window: Window, tally: Tally) -> None:
    """One request per snapshot, not waiting for earlier ones, as a client posting on every pointer move."""
    requests: list[asyncio.Task] = []
    moment = time.perf_counter() + random.uniform(0, FRAME_INTERVAL_S * 40)
    for stroke in itertools.cycle(drawing):
        for index, frame in enumerate(stroke):
            await sleep_until(moment)
            moment += FRAME_INTERVAL_S
            if time.perf_counter() >= window.end:
                await asyncio.gather(*requests)
                return
            requests.append(asyncio.create_task(http_post(client, frame, index == len(stroke) - 1, window, tally)))
        moment += PAUSE_S


class Clients:
    """Opens the clients of a run before its clock starts, and closes them after."""

    def __init__(self, server: Server, count: int, http: bool) -> None:
        self.server, self.count, self.http = server, count, http
        self.clients: list = []

    async def __aenter__(self) -> list:
        if self.http:
            limits = httpx.Limits(max_connections=6)  # a browser's per-host limit
            timeout = httpx.Timeout(ANSWER_TIMEOUT_S)
            self.clients = [
                httpx.AsyncClient(base_url=self.server.base_url, limits=limits, timeout=timeout)
                for _ in range(self.count)
            ]
        else:
            self.clients = await asyncio.gather(
                *(websockets.connect(self.server.ws_url, max_size=None) for _ in range(self.count))
            )
        return self.clients

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(
            *(client.aclose() if self.http else client.close() for client in self.clients), return_exceptions=True
        )
