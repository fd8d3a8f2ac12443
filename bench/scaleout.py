"""Scale-out benchmark: one site served by one or two server processes through Redis.

Starts its own redis-server and servers on free 127.0.0.1 ports (the only addresses it sends
to). Rows:

- capacity (48 closed-loop clients) and 40 open-loop drawers (20 Hz strokes, as bench/load.py),
  against one process, then `--workers 2` with `--redis-url` on one port; the per-connection
  pace is lifted, as for bench/load.py's closed-loop rows (20 Hz drawers never reach it);
- 120 students in one room and one dashboard: in one process with rooms in memory, then spread
  over two processes (each its own port, sharing Redis), the dashboard on the first;
- what Redis adds to one tile update: `Seat.update` in memory against in Redis, one at a time
  (latency) and 100 seats at once (updates/s), in this process.

    .venv/bin/python -m bench.scaleout              # every row (about 3 minutes)
    .venv/bin/python -m bench.scaleout --duration 3 --warmup 1
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import TypedDict

import httpx
import websockets

from bench.classroom import DashboardTally, dashboard
from bench.classroom import Tally as StudentTally
from bench.classroom import student as classroom_student
from bench.clients import Loop, Tally, Window, ws_closed_loop, ws_open_loop
from bench.common import (
    UNPACED,
    ProcessSample,
    Server,
    cpu_percent,
    load_average,
    machine,
    page_strokes,
    percentile,
    sample_process,
)
from server.classifier import Classification
from server.classroom.memory import MemoryRooms
from server.classroom.redisrooms import RedisRooms
from server.classroom.rooms import Rooms
from tests.redisserver import RedisServer

READY_TIMEOUT_S = 180.0
CLASS_SIZE = 120
TILE_UPDATES = 2000


def children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def serving_pids(server: Server) -> list[int]:
    """The processes that serve: the workers under a `--workers` parent, else the server itself."""
    return children(server.pid) or [server.pid]


def wait_for_workers(server: Server, workers: int) -> None:
    """`/healthz` answers once one worker is up; a row starts once every worker is."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while server.log_text().count("model ready") < workers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{workers} workers not ready; log: {server.log_path}")
        time.sleep(0.2)


class RoomLimits(TypedDict):
    """The same limits for rooms in memory and in Redis, so the tile-cost rows compare like with like."""

    max_students: int
    idle_s: float
    max_rooms: int
    grace_s: float
    unclaimed_s: float
    rooms_per_address: int


def cpu_of(pids: list[int]) -> list[ProcessSample]:
    return [sample_process(pid) for pid in pids]


async def drawers_row(server: Server, loop: Loop, clients: int, args: argparse.Namespace) -> dict[str, float]:
    drawings = STROKES
    frames = [frame for stroke in drawings for frame in stroke]
    start = time.perf_counter() + args.warmup + 0.2 * clients / 10
    window = Window(start, start + args.duration)
    tally = Tally()
    sockets = await asyncio.gather(*(websockets.connect(server.ws_url, max_size=None) for _ in range(clients)))
    try:
        jobs = [
            ws_closed_loop(ws, frames, window, tally)
            if loop is Loop.CLOSED
            else ws_open_loop(ws, drawings[i % len(drawings) :] + drawings[: i % len(drawings)], window, tally)
            for i, ws in enumerate(sockets)
        ]
        cpu = asyncio.create_task(cpu_during(serving_pids(server), window))
        await asyncio.gather(*jobs)
        cpu_percent_total = await cpu
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return {
        "pred/s": tally.answered / args.duration,
        "p50": percentile(tally.latencies_ms, 50),
        "p99": percentile(tally.latencies_ms, 99),
        "errors": tally.errors + tally.stroke_ends_unanswered,
        "cpu%": cpu_percent_total,
    }


async def cpu_during(pids: list[int], window: Window) -> float:
    await asyncio.sleep(max(0.0, window.start - time.perf_counter()))
    before = cpu_of(pids)
    await asyncio.sleep(max(0.0, window.end - time.perf_counter()))
    after = cpu_of(pids)
    return sum(cpu_percent(b, a) for b, a in zip(before, after))


async def process_rows(redis_url: str, args: argparse.Namespace) -> None:
    print("| processes | clients | pred/s | p50 ms | p99 ms | errors | server CPU % | load average |")
    print("|---|---|---|---|---|---|---|---|")
    for workers in (1, 2):
        extra = ["--workers", "2", "--redis-url", redis_url] if workers == 2 else []
        server = Server(args=[*UNPACED, *extra], env={"DIGITSTREAM_LOG_LEVEL": "info"})
        await asyncio.to_thread(server.start)
        try:
            await asyncio.to_thread(wait_for_workers, server, workers)
            for loop, clients in ((Loop.CLOSED, 48), (Loop.OPEN, 40)):
                row = await drawers_row(server, loop, clients, args)
                print(
                    f"| {workers} | {clients} {loop}-loop | {row['pred/s']:.0f} | {row['p50']:.1f} | "
                    f"{row['p99']:.1f} | {row['errors']} | {row['cpu%']:.0f} | {load_average()} |",
                    flush=True,
                )
        finally:
            await asyncio.to_thread(server.stop)


async def class_row(redis_url: str | None, args: argparse.Namespace) -> None:
    """One room of `--class-size` students and a dashboard: over two processes sharing Redis,
    or (`redis_url` None) in one process with rooms in memory, the baseline."""
    flags = ["--room-max-students", str(args.class_size)]
    servers = [Server(args=[*flags, "--redis-url", redis_url]) for _ in range(2)] if redis_url else [Server(args=flags)]
    await asyncio.gather(*(asyncio.to_thread(server.start) for server in servers))
    try:
        async with httpx.AsyncClient() as client:
            room = (await client.post(f"{servers[0].base_url}/api/rooms")).json()
        begin = time.perf_counter()
        window = (begin + args.warmup + 2, begin + args.warmup + 2 + args.duration)
        tally, board = StudentTally(), DashboardTally()
        await asyncio.gather(
            dashboard(servers[0].ws_url + "/teacher", room, window, board),
            *(
                classroom_student(servers[i % len(servers)].ws_url, room["room"], i, STROKES, window, tally)
                for i in range(args.class_size)
            ),
        )
        crashes = sum(server.crashes() for server in servers)
    finally:
        await asyncio.gather(*(asyncio.to_thread(server.stop) for server in servers))
    where = "2 processes sharing Redis" if redis_url else "1 process, rooms in memory"
    print(
        f"| {where} | {args.class_size} | {percentile(tally.latencies_ms, 50):.1f} | "
        f"{percentile(tally.latencies_ms, 99):.1f} | {tally.errors} | {board.messages / args.duration:.2f} | "
        f"{board.tiles / args.duration:.0f} | {crashes} | {load_average()} |",
        flush=True,
    )


async def tile_cost(redis_url: str) -> None:
    result = Classification.of(tuple(0.91 if d == 7 else 0.01 for d in range(10)), b"\x89PNG" + bytes(300))
    print("\n| rooms | one update at a time: mean µs | p99 µs | 100 seats at once: updates/s | load average |")
    print("|---|---|---|---|---|")
    sizes = RoomLimits(max_students=100, idle_s=600, max_rooms=1000, grace_s=60, unclaimed_s=300, rooms_per_address=20)
    for label, rooms in (("memory", MemoryRooms(**sizes)), ("Redis", RedisRooms(redis_url, **sizes))):
        await rooms.start()
        try:
            latencies, rate = await measure_updates(rooms, result)
        finally:
            await rooms.stop()
        print(
            f"| {label} | {sum(latencies) / len(latencies):.0f} | {percentile(latencies, 99):.0f} | {rate:.0f} | "
            f"{load_average()} |",
            flush=True,
        )


async def measure_updates(rooms: Rooms, result: Classification) -> tuple[list[float], float]:
    room, _ = await rooms.create("bench")
    seats = [await room.join(f"s{i}", lambda message: None) for i in range(100)]
    watch = await room.watch()  # a dashboard is watching: every update is published
    latencies: list[float] = []
    for index in range(TILE_UPDATES):
        began = time.perf_counter()
        await seats[index % len(seats)].update(result)
        latencies.append((time.perf_counter() - began) * 1e6)
    began = time.perf_counter()
    for _ in range(TILE_UPDATES // len(seats)):
        await asyncio.gather(*(seat.update(result) for seat in seats))
    rate = TILE_UPDATES / (time.perf_counter() - began)
    await room.unwatch(watch)
    await room.close()
    return latencies, rate


STROKES: list[list[bytes]] = []


async def run(args: argparse.Namespace) -> None:
    print(f"scale-out benchmark on {machine()}; load average at start {load_average()}\n")
    STROKES.extend(page_strokes())
    redis_server = RedisServer(Path(tempfile.mkdtemp(prefix="digitstream-bench-redis-"))).start()
    try:
        if args.only in (None, "processes"):
            await process_rows(redis_server.url, args)
        if args.only in (None, "class"):
            print(
                "\n| one room at 20 Hz + 1 dashboard | students | student p50 ms | p99 ms | errors | "
                "dashboard updates/s | tiles/s | tracebacks | load average |"
            )
            print("|---|---|---|---|---|---|---|---|---|")
            await class_row(None, args)
            await class_row(redis_server.url, args)
        if args.only in (None, "tiles"):
            await tile_cost(redis_server.url)
    finally:
        redis_server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="digitstream scale-out benchmark")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per row (10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each row (2)")
    parser.add_argument("--class-size", type=int, default=CLASS_SIZE, help=f"students in the room ({CLASS_SIZE})")
    parser.add_argument("--only", choices=("processes", "class", "tiles"), help="run one part only")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
