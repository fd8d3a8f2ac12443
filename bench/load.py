"""Load benchmark: simulated drawers over real WebSockets against real server processes.

Closed loop: each client sends a snapshot and waits for its answer, so predictions/s is the
server's capacity. Open loop: each drawer streams at 20 Hz for 1.5 s strokes with 0.5 s
pauses whatever the server does, as a page does; latency runs from sending a snapshot to its
prediction (coalesced snapshots have none), stroke-end latency from sending a stroke's last
snapshot to its prediction. The same scenarios run against the server with
`--max-batch-size 1` and against the seed-style baseline (bench/baseline_server.py: one HTTP
POST per snapshot, `model.predict` on one image), so the gains are ratios measured side by
side. A flooding client next to 10 drawers shows what one misbehaving page costs the others.

    .venv/bin/python bench/load.py              # every table (about 6 minutes)
    .venv/bin/python bench/load.py --quick      # a smoke run of a few seconds per row
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    FRAME_INTERVAL_S, PAUSE_S, Server, ServerCounters, cpu_percent, load_average, machine,
    markdown_table, percentile, sample_process, strokes,
)

ANSWER_TIMEOUT_S = 5.0
STROKE_COUNT = 16
HEADERS = ["server", "loop", "clients", "px", "pred/s", "p50 ms", "p95 ms", "p99 ms", "stroke-end p99 ms",
           "mean batch", "coalesced", "errors + lost ends", "server CPU %", "RSS MiB"]


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
        message = json.loads(await asyncio.wait_for(ws.recv(), ANSWER_TIMEOUT_S))
        if sent_at in window:
            tally.sent += 1
            tally.answer(sent_at, message, stroke_end=False)


async def ws_open_loop(ws: websockets.ClientConnection, drawing: list[list[bytes]], window: Window, tally: Tally) -> None:
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


def flood(url: str, frame: bytes, seconds: float, sent: "multiprocessing.sharedctypes.Synchronized") -> None:
    """Runs in a process of its own, so the flood loads the server and not this client: sends
    as fast as the socket takes frames and reads whatever comes back."""
    async def send_all() -> None:
        async with websockets.connect(url, max_size=None) as ws:
            reader = asyncio.create_task(drain_answers(ws))
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                await ws.send(frame)
                sent.value += 1
            reader.cancel()

    async def drain_answers(ws: websockets.ClientConnection) -> None:
        async for _ in ws:
            pass

    asyncio.run(send_all())


async def flooding(url: str, frame: bytes, window: Window) -> float:
    """Frames per second the flooder sent during the window."""
    context = multiprocessing.get_context("spawn")
    sent = context.Value("q", 0)
    process = context.Process(target=flood, args=(url, frame, window.end - time.perf_counter(), sent), daemon=True)
    process.start()
    await sleep_until(window.start)
    at_start = sent.value
    await sleep_until(window.end)
    rate = (sent.value - at_start) / (window.end - window.start)
    await asyncio.to_thread(process.join, 10)
    return rate


# -- seed-style HTTP clients ----------------------------------------------------------------

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
    """One request per snapshot, not waiting for earlier ones, as a seed page posting on every move."""
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


# -- rows -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scenario:
    loop: str  # "closed", "open", or "flood": open-loop drawers next to a flooding client
    clients: int
    px: int = 128


async def run_row(server: Server, label: str, scenario: Scenario, args: argparse.Namespace) -> list[object]:
    drawings = DRAWINGS[scenario.px]
    closed_frames = [frame for stroke in drawings for frame in stroke[len(stroke) // 2 :]]
    start = time.perf_counter() + args.warmup + 0.2 * scenario.clients / 10  # connecting takes a moment
    window = Window(start, start + args.duration)
    tally = Tally()
    http = label.startswith("baseline")
    flooder = asyncio.create_task(flooding(server.ws_url, closed_frames[-1], window)) \
        if scenario.loop == "flood" else None
    async with Clients(server, scenario.clients, http) as clients:
        jobs = []
        for index, client in enumerate(clients):
            drawing = drawings[index % len(drawings) :] + drawings[: index % len(drawings)]
            if scenario.loop == "closed":
                closed_loop = http_closed_loop if http else ws_closed_loop
                jobs.append(closed_loop(client, closed_frames, window, tally))
            else:
                open_loop = http_open_loop if http else ws_open_loop
                jobs.append(open_loop(client, drawing, window, tally))
        readings = asyncio.create_task(read_server(server, window, http))
        await asyncio.gather(*jobs)
        counters, before, after = await readings
    clients = scenario.clients
    if flooder is not None:
        FLOOD_RATES.append(await flooder)
        clients = f"{scenario.clients} + 1 flooder"
    # the flooder's own frames are most of what is coalesced in its row
    coalesced = "–" if http or flooder else f"{100 * counters.coalesced / max(tally.sent, 1):.0f}%"
    row = [label, scenario.loop, clients, scenario.px, tally.answered / args.duration,
           percentile(tally.latencies_ms, 50), percentile(tally.latencies_ms, 95), percentile(tally.latencies_ms, 99),
           percentile(tally.stroke_end_ms, 99) if scenario.loop != "closed" else float("nan"),
           1.0 if http else counters.mean_batch_size, coalesced,
           tally.errors + tally.stroke_ends_unanswered, cpu_percent(before, after), after.rss_mib]
    print(markdown_table(HEADERS, [row]).splitlines()[-1], flush=True)
    return row


class Clients:
    """Opens the clients of a row before its clock starts, and closes them after."""

    def __init__(self, server: Server, count: int, http: bool) -> None:
        self.server, self.count, self.http = server, count, http
        self.clients: list = []

    async def __aenter__(self) -> list:
        if self.http:
            limits = httpx.Limits(max_connections=6)  # a browser's per-host limit
            timeout = httpx.Timeout(ANSWER_TIMEOUT_S)
            self.clients = [httpx.AsyncClient(base_url=self.server.base_url, limits=limits, timeout=timeout)
                            for _ in range(self.count)]
        else:
            self.clients = await asyncio.gather(*(websockets.connect(self.server.ws_url, max_size=None)
                                                  for _ in range(self.count)))
        return self.clients

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(client.aclose() if self.http else client.close() for client in self.clients),
                             return_exceptions=True)


async def read_server(server: Server, window: Window, http: bool):
    """Server counters and /proc readings at the window's edges (the baseline has no /metrics)."""
    async def read() -> tuple[ServerCounters, object]:
        counters = ServerCounters(0, 0, 0) if http else await asyncio.to_thread(ServerCounters.read, server.base_url)
        return counters, sample_process(server.pid)

    await sleep_until(window.start)
    counters_before, before = await read()
    await sleep_until(window.end)
    counters_after, after = await read()
    return counters_after - counters_before, before, after


DRAWINGS: dict[int, list[list[bytes]]] = {}
FLOOD_RATES: list[float] = []


def servers(args: argparse.Namespace) -> list[tuple[str, Server, list[Scenario]]]:
    closed = [Scenario("closed", n) for n in args.closed]
    opened = [Scenario("open", n) for n in args.drawers]
    return [
        ("streaming, batch ≤ 32", Server(),
         closed + opened + [Scenario("open", 40, px=400), Scenario("flood", 10)]),
        ("streaming, batch 1", Server(args=["--max-batch-size", "1"]), closed + opened),
        ("baseline HTTP", Server(command=[sys.executable, "bench/baseline_server.py"]),
         closed + [Scenario("open", n) for n in args.drawers if n <= 40]),
    ]


async def run(args: argparse.Namespace) -> list[list[object]]:
    rows = []
    print(markdown_table(HEADERS, []), flush=True)
    for label, server, scenarios in servers(args):
        if args.only and not any(label.startswith(only) for only in args.only):
            continue
        await asyncio.to_thread(server.start)
        try:
            for scenario in scenarios:
                rows.append(await run_row(server, label, scenario, args))
        finally:
            await asyncio.to_thread(server.stop)
        if crashes := server.crashes():
            print(f"\n**{label}: {crashes} tracebacks in {server.log_path}**\n")
    return rows


def summary(rows: list[list[object]]) -> list[str]:
    def find(label: str, loop: str, clients: object, px: int = 128) -> list[object] | None:
        return next((row for row in rows if row[0].startswith(label) and row[1] == loop
                     and row[2] == clients and row[3] == px), None)

    lines = []
    batched, single, baseline = (find(label, "closed", 48) for label in ("streaming, batch ≤", "streaming, batch 1",
                                                                          "baseline"))
    if batched and single:
        lines.append(f"- capacity, 48 closed-loop clients: batched / batch-1 = {batched[4] / single[4]:.1f}× (target ≥ 3×)")
    if batched and baseline:
        lines.append(f"- capacity, 48 closed-loop clients: batched streaming / seed-style HTTP = "
                     f"{batched[4] / baseline[4]:.1f}×")
    if drawn := find("streaming, batch ≤", "open", 40):
        lines.append(f"- 40 drawers at 20 Hz: p99 {drawn[7]:.0f} ms, stroke-end p99 {drawn[8]:.0f} ms (targets ≤ 100 ms)")
    calm, flooded = find("streaming, batch ≤", "open", 10), find("streaming, batch ≤", "flood", "10 + 1 flooder")
    if calm and flooded:
        lines.append(f"- a flooder ({FLOOD_RATES[0]:.0f} frames/s) next to 10 drawers: their p99 "
                     f"{calm[7]:.0f} → {flooded[7]:.0f} ms ({flooded[7] / calm[7]:.1f}×), "
                     f"stroke-end p99 {calm[8]:.0f} → {flooded[8]:.0f} ms")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description="digitstream load benchmark")
    parser.add_argument("--drawers", type=lambda text: [int(n) for n in text.split(",")], default=[10, 40, 100],
                        help="open-loop drawer counts (10,40,100)")
    parser.add_argument("--closed", type=lambda text: [int(n) for n in text.split(",")], default=[10, 40, 48, 100],
                        help="closed-loop client counts (10,40,48,100)")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per row (10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each row (2)")
    parser.add_argument("--only", nargs="*", help="run only the servers whose label starts so: streaming, baseline")
    parser.add_argument("--quick", action="store_true", help="2 s rows, to check the bench works")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.warmup = 2.0, 0.5
    print(f"Machine: {machine()}; load average before: {load_average()}\n")
    DRAWINGS.update({px: strokes(STROKE_COUNT, px) for px in (128, 400)})
    rows = asyncio.run(run(args))
    print(f"\nLoad average after: {load_average()}\n")
    print("\n".join(summary(rows)))


if __name__ == "__main__":
    main()
