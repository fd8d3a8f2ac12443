"""Soak: 30 drawers stream at 20 Hz for 10 minutes against one server process; every 10 s it
samples the server's RSS, threads and open file descriptors (/proc) and its open connections
(/metrics). Targets: RSS growth ≤ 5% after warm-up, zero errors, no growth in threads or fds.
The server has no task introspection; fds, connections and RSS stand in for leaked tasks.

    .venv/bin/python bench/soak.py                 # 30 drawers, 10 minutes
    .venv/bin/python bench/soak.py --minutes 1     # a quick check
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.clients import Tally, Window, ws_open_loop
from bench.common import Server, load_average, machine, markdown_table, page_strokes, percentile, sample_process, scrape

SAMPLE_EVERY_S = 10.0


async def sampler(server: Server, window: Window, rows: list[list[object]], tally: Tally) -> None:
    while time.perf_counter() < window.end:
        metrics = await asyncio.to_thread(scrape, server.base_url)
        process = sample_process(server.pid)
        errors = sum(value for name, value in metrics.items() if name.startswith("digitstream_errors_total"))
        rows.append(
            [
                round(time.perf_counter() - window.start),
                process.rss_mib,
                process.threads,
                process.fds,
                int(metrics.get("digitstream_open_connections", 0)),
                int(metrics.get("digitstream_predictions_total{source=ws}", 0)),
                int(errors),
                tally.errors,
                tally.stroke_ends_unanswered,
            ]
        )
        await asyncio.sleep(SAMPLE_EVERY_S)


async def soak(args: argparse.Namespace) -> None:
    drawings = page_strokes()
    server = Server()
    await asyncio.to_thread(server.start)
    rows: list[list[object]] = []
    tally = Tally()
    try:
        clients = await asyncio.gather(*(websockets.connect(server.ws_url) for _ in range(args.drawers)))
        start = time.perf_counter()
        window = Window(start, start + args.minutes * 60)
        sampling = asyncio.create_task(sampler(server, window, rows, tally))
        await asyncio.gather(
            *(
                ws_open_loop(ws, drawings[i * 7 % len(drawings) :] + drawings[: i * 7 % len(drawings)], window, tally)
                for i, ws in enumerate(clients)
            )
        )
        await sampling
        await asyncio.gather(*(ws.close() for ws in clients))
        await asyncio.sleep(1)
        after_close = sample_process(server.pid)
        open_after = int(scrape(server.base_url).get("digitstream_open_connections", -1))
    finally:
        await asyncio.to_thread(server.stop)
    headers = [
        "t s",
        "RSS MiB",
        "threads",
        "fds",
        "open ws",
        "predictions",
        "server errors",
        "client errors",
        "stroke ends superseded",
    ]
    print(markdown_table(headers, rows))
    warm = next(row for row in rows if row[0] >= args.warmup)
    last = rows[-1]
    print(f"\nMachine: {machine()}; load average at the end: {load_average()}")
    print(
        f"- {args.drawers} drawers for {args.minutes:g} min: {last[5]} predictions, "
        f"latency p50 {percentile(tally.latencies_ms, 50):.0f} ms, p99 {percentile(tally.latencies_ms, 99):.0f} ms, "
        f"stroke-end p99 {percentile(tally.stroke_end_ms, 99):.0f} ms"
    )
    print(
        f"- RSS after warm-up ({warm[0]} s) {warm[1]:.1f} MiB → end {last[1]:.1f} MiB: "
        f"{100 * (last[1] - warm[1]) / warm[1]:+.1f}% (target ≤ 5%)"
    )
    print(
        f"- threads {warm[2]} → {last[2]} (max {max(row[2] for row in rows)}); "
        f"fds {warm[3]} → {last[3]}; after all drawers left: {after_close.fds} fds, {open_after} open ws"
    )
    print(
        f"- errors: {last[6]} from the server, {last[7]} on the clients; tracebacks in the server log: "
        f"{server.crashes()}; stroke ends superseded by the next stroke before their answer: {last[8]}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="digitstream soak benchmark")
    parser.add_argument("--drawers", type=int, default=30)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before the RSS baseline (60)")
    args = parser.parse_args()
    args.warmup = min(args.warmup, args.minutes * 60 / 2)
    asyncio.run(soak(args))


if __name__ == "__main__":
    main()
