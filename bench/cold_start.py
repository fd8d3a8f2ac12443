"""Cold start: seconds from `python -m server serve` starting to its first answered prediction
over /ws (imports, model load and warm-up at every batch size included).

    .venv/bin/python -m bench.cold_start --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import websockets

from bench.common import Server, load_average, machine, markdown_table, page_strokes


async def first_prediction(server: Server, snapshot: bytes) -> tuple[float, float]:
    """(seconds to healthy, seconds to the first prediction), both from process start."""
    await asyncio.to_thread(server.start)
    healthy_s = time.monotonic() - server.started_at
    async with websockets.connect(server.ws_url) as ws:
        await ws.send(snapshot)
        await ws.recv()
    return healthy_s, time.monotonic() - server.started_at


def main() -> None:
    parser = argparse.ArgumentParser(description="digitstream cold-start benchmark")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    snapshot = page_strokes()[0][-1]
    rows = []
    for run in range(1, args.runs + 1):
        server = Server()
        try:
            healthy_s, answered_s = asyncio.run(first_prediction(server, snapshot))
        finally:
            server.stop()
        rows.append([run, healthy_s, answered_s])
    print(f"Machine: {machine()}; load average: {load_average()}\n")
    print(markdown_table(["run", "healthy s", "first prediction s"], rows))
    print(f"\n- median: first prediction {statistics.median(row[2] for row in rows):.1f} s after process start")


if __name__ == "__main__":
    main()
