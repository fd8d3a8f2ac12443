"""Classroom benchmark: 60 students drawing at 20 Hz and one teacher dashboard, on one machine.

Starts its own server on a free 127.0.0.1 port (the only address it sends to), creates a
room, and runs for a bounded time. Each student replays the page's recorded frames
(bench/data/page_frames.npz: digits drawn stroke by stroke in Chromium) at 20 Hz whatever the
server does, as a page does. Student latency runs from sending a snapshot to its prediction;
snapshots replaced by a newer one before classification (latest wins) have none. The
dashboard counts its update messages and the tiles they carry.

    .venv/bin/python bench/classroom.py                 # 60 students, 20 s measured
    .venv/bin/python bench/classroom.py --students 10 --seconds 5
    .venv/bin/python bench/classroom.py --solo          # the same drawing, no room: the baseline
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import page_strokes
from tests.support import ServerProcess

MAX_STUDENTS = 100
MAX_SECONDS = 120.0
WARM_UP_S = 3.0
FRAME_HZ = 20.0


@dataclass
class Tally:
    sent: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0


@dataclass
class DashboardTally:
    messages: int = 0
    tiles: int = 0
    per_tile: dict[str, int] = field(default_factory=dict)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def student(
    url: str, room: str | None, index: int, strokes: list[list[bytes]], window: tuple[float, float], tally: Tally
) -> None:
    start, end = window
    async with websockets.connect(url, max_size=None) as ws:
        if room is not None:
            await ws.send(json.dumps({"type": "join", "room": room, "name": f"Student {index + 1}"}))
        sent_at: dict[int, float] = {}

        async def read() -> None:
            async for text in ws:
                message = json.loads(text)
                if message["type"] == "prediction":
                    at = sent_at.pop(message["seq"], None)
                    now = time.perf_counter()
                    if at is not None and start <= at < end:
                        tally.latencies_ms.append((now - at) * 1000)
                    for seq in [seq for seq in sent_at if seq < message["seq"]]:
                        del sent_at[seq]
                elif message["type"] == "error":
                    tally.errors += 1

        reader = asyncio.create_task(read())
        frames = [frame for stroke in strokes[index % len(strokes) :] + strokes for frame in stroke]
        # Students out of phase, spread over one frame interval, as a real class would be.
        seq, tick = 0, time.perf_counter() + (index % 60) / 60 / FRAME_HZ
        while tick < end:
            await asyncio.sleep(max(0.0, tick - time.perf_counter()))
            seq += 1
            sent_at[seq] = time.perf_counter()
            await ws.send(frames[seq % len(frames)])
            if start <= sent_at[seq] < end:
                tally.sent += 1
            tick += 1 / FRAME_HZ
        await asyncio.sleep(1.0)  # let the last answers arrive
        reader.cancel()


async def dashboard(url: str, room: dict, window: tuple[float, float], tally: DashboardTally) -> None:
    start, end = window
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"type": "auth", "room": room["room"], "secret": room["secret"]}))
        while time.perf_counter() < end:
            try:
                message = json.loads(await asyncio.wait_for(ws.recv(), max(0.01, end - time.perf_counter())))
            except TimeoutError:
                break
            if message["type"] == "tiles" and time.perf_counter() >= start:
                tally.messages += 1
                tally.tiles += len(message["changed"])
                for tile in message["changed"]:
                    tally.per_tile[tile["id"]] = tally.per_tile.get(tile["id"], 0) + 1


async def run(students: int, seconds: float, solo: bool) -> None:
    strokes = page_strokes()
    server = ServerProcess().start()
    try:
        room = (await asyncio.to_thread(httpx.post, f"{server.base_url}/api/rooms")).json()
        begin = time.perf_counter()
        window = (begin + WARM_UP_S, begin + WARM_UP_S + seconds)
        tally, board = Tally(), DashboardTally()
        load_before = os.getloadavg()
        code = None if solo else room["room"]
        watching = [] if solo else [dashboard(server.ws_url + "/teacher", room, window, board)]
        await asyncio.gather(
            *watching, *(student(server.ws_url, code, i, strokes, window, tally) for i in range(students))
        )
        load_after = os.getloadavg()
    finally:
        server.stop()
    report(students, seconds, solo, tally, board, load_before, load_after)


def report(
    students: int,
    seconds: float,
    solo: bool,
    tally: Tally,
    board: DashboardTally,
    load_before: tuple[float, ...],
    load_after: tuple[float, ...],
) -> None:
    latencies = tally.latencies_ms
    busiest = max(board.per_tile.values(), default=0) / seconds
    who = "drawing alone (no room)" if solo else "in one room + 1 dashboard"
    print(
        f"classroom: {students} students at {FRAME_HZ:.0f} Hz {who}, {seconds:.0f} s measured, "
        f"{os.cpu_count()} CPUs, load average {load_before[0]:.2f} before / {load_after[0]:.2f} after"
    )
    print(
        f"  students: {tally.sent} snapshots sent, {len(latencies)} answered "
        f"({tally.sent - len(latencies)} replaced by newer ones), {tally.errors} errors"
    )
    print(
        f"  student latency ms: p50 {percentile(latencies, 50):.1f}  p95 {percentile(latencies, 95):.1f}  "
        f"p99 {percentile(latencies, 99):.1f}"
    )
    if solo:
        return
    print(
        f"  dashboard: {board.messages / seconds:.2f} updates/s, {board.tiles / seconds:.1f} tiles/s, "
        f"busiest tile {busiest:.2f} updates/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=60, help=f"simulated students, at most {MAX_STUDENTS} (60)")
    parser.add_argument("--seconds", type=float, default=20.0, help=f"measured seconds, at most {MAX_SECONDS:.0f} (20)")
    parser.add_argument("--solo", action="store_true", help="students draw without joining a room (baseline)")
    args = parser.parse_args()
    if not 1 <= args.students <= MAX_STUDENTS or not 0 < args.seconds <= MAX_SECONDS:
        parser.error(f"--students must be 1..{MAX_STUDENTS} and --seconds 0..{MAX_SECONDS:.0f}")
    asyncio.run(run(args.students, args.seconds, args.solo))


if __name__ == "__main__":
    main()
