"""Load benchmark: drawers replaying the page's recorded frames over real WebSockets.

Closed loop: each client sends a snapshot and waits for its answer, so predictions/s is the
server's capacity. Open loop: each drawer streams at 20 Hz, stroke after stroke with 0.5 s
pauses, whatever the server does, as a page does; latency runs from sending a snapshot to its
prediction (coalesced snapshots have none), stroke-end latency from sending a stroke's last
snapshot to its prediction. The frames are the real page's (bench/data/page_frames.npz,
recorded by bench/record_page.py in Chromium): 128 px grey frames; one row replays the same
strokes as 128 px RGBA PNGs (bench/data/page_png_frames.npz), as browsers without
CompressionStream send them. The same scenarios run
against the server with `--max-batch-size 1` and against the one-request-per-snapshot HTTP baseline
(bench/baseline_server.py: one HTTP POST per snapshot, `model.predict` on one image), so gains
are ratios measured side by side; the model alone at batch 32 is measured in the same run.

A closed-loop client asks again the moment it is answered, so at the default pace of 30 answers
a second a connection (`--max-snapshot-rate`; the page sends at most 25) 48 of them could never
be answered more than 1,440 times a second whatever the server could do: the closed-loop rows
run on servers with the pace lifted (`UNPACED`), and say so.

Every row: a warm-up that is not measured, then three measured runs; the table gives their
median and spread (min–max), the load average before the row, and the server's CPU time per
answered snapshot (its whole process: event loop, preprocessing, model).

    .venv/bin/python -m bench.load                       # the default rows (about 8 minutes)
    .venv/bin/python -m bench.load --quick               # a smoke run of a few seconds per row
    .venv/bin/python -m bench.load --json bench/results/load.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import enum
import functools
import json
import math
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.clients import (
    Clients,
    Loop,
    Tally,
    Window,
    flooding,
    http_closed_loop,
    http_open_loop,
    sleep_until,
    ws_closed_loop,
    ws_open_loop,
)
from bench.common import (
    UNPACED,
    HostCpu,
    ProcessSample,
    Server,
    ServerCounters,
    cpu_percent,
    load_average,
    machine,
    markdown_table,
    page_strokes,
    percentile,
    sample_process,
    stolen_percent,
)
from bench.record_page import FIXTURE, PNG_FIXTURE


class Frames(enum.StrEnum):
    """Which recording of the page the clients replay."""

    GREY = "grey"  # grey frames, where the browser has CompressionStream
    PNG = "png"  # RGBA PNGs, what a browser without CompressionStream sends

    def strokes(self) -> list[list[bytes]]:
        return _recorded(PNG_FIXTURE if self is Frames.PNG else FIXTURE)


@functools.cache
def _recorded(path: Path) -> list[list[bytes]]:
    return page_strokes(path)


@dataclass(frozen=True)
class Scenario:
    loop: Loop
    clients: int
    frames: Frames = Frames.GREY


@dataclass(frozen=True)
class Run:
    """One measured window of a row."""

    pred_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    stroke_end_p99_ms: float
    mean_batch: float
    coalesced_pct: float
    failures: int  # error answers plus stroke ends never answered
    cpu_pct: float
    steal_pct: float  # of the machine's CPU time, taken by the host
    cpu_ms_per_answer: float
    rss_mib: float
    flood_frames_s: float  # frames the server read from the flooder; nan without one


@dataclass(frozen=True)
class Row:
    server: str
    scenario: Scenario
    load_before: str
    runs: list[Run]

    def median(self, name: str) -> float:
        values = [getattr(run, name) for run in self.runs]
        finite = [value for value in values if not math.isnan(value)]
        return statistics.median(finite) if finite else float("nan")

    def spread(self, name: str) -> str:
        values = [getattr(run, name) for run in self.runs if not math.isnan(getattr(run, name))]
        return f"{min(values):.{DIGITS[name]}f}–{max(values):.{DIGITS[name]}f}" if values else "–"

    def cells(self) -> list[object]:
        scenario = self.scenario
        clients = f"{scenario.clients} + 1 flooder" if scenario.loop is Loop.FLOOD else scenario.clients
        loop = f"{scenario.loop}, PNG frames" if scenario.frames is Frames.PNG else str(scenario.loop)

        def figure(name: str) -> str:
            median = self.median(name)
            return "–" if math.isnan(median) else f"{median:.{DIGITS[name]}f} ({self.spread(name)})"

        return [
            self.server,
            loop,
            clients,
            figure("pred_s"),
            self.median("p50_ms"),
            figure("p99_ms"),
            figure("stroke_end_p99_ms"),
            self.median("mean_batch"),
            "–" if math.isnan(self.median("coalesced_pct")) else f"{self.median('coalesced_pct'):.0f}%",
            sum(run.failures for run in self.runs),
            self.median("cpu_pct"),
            figure("cpu_ms_per_answer"),
            self.median("steal_pct"),
            self.load_before,
        ]

    def as_json(self) -> dict:
        return {
            "server": self.server,
            "loop": self.scenario.loop,
            "clients": self.scenario.clients,
            "frames": self.scenario.frames,
            "load_before": self.load_before,
            "runs": [vars(run) for run in self.runs],
        }


DIGITS = {"pred_s": 0, "p99_ms": 0, "stroke_end_p99_ms": 0, "cpu_ms_per_answer": 2}
HEADERS = [
    "server",
    "loop",
    "clients",
    "pred/s (spread)",
    "p50 ms",
    "p99 ms (spread)",
    "stroke-end p99 ms (spread)",
    "mean batch",
    "coalesced",
    "errors + lost ends",
    "server CPU %",
    "server CPU ms / answer (spread)",
    "host steal %",
    "load avg before",
]
RUNS = 3


async def run_once(server: Server, label: str, scenario: Scenario, args: argparse.Namespace) -> Run:
    strokes = scenario.frames.strokes()
    closed_frames = [frame for stroke in strokes for frame in stroke]
    http = label.startswith("baseline")
    flooded = scenario.loop is Loop.FLOOD
    flooder = flooding(server.ws_url, closed_frames[-1]) if flooded else contextlib.nullcontext()
    async with flooder, Clients(server, scenario.clients, http) as clients:
        start = time.perf_counter() + args.warmup
        window = Window(start, start + args.duration)
        tally = Tally()
        jobs = []
        for index, client in enumerate(clients):
            offset = (index * 7) % len(strokes)  # drawers out of step with each other
            drawing = strokes[offset:] + strokes[:offset]
            if scenario.loop is Loop.CLOSED:
                closed_loop = http_closed_loop if http else ws_closed_loop
                frames = closed_frames[offset * 11 % len(closed_frames) :] + closed_frames
                jobs.append(closed_loop(client, frames, window, tally))
            else:
                open_loop = http_open_loop if http else ws_open_loop
                jobs.append(open_loop(client, drawing, window, tally))
        readings = asyncio.create_task(read_server(server, window, http))
        await asyncio.gather(*jobs)
        counters, (before, host_before), (after, host_after) = await readings
    answered = tally.answered if http else counters.answered
    return Run(
        pred_s=tally.answered / args.duration,
        p50_ms=percentile(tally.latencies_ms, 50),
        p95_ms=percentile(tally.latencies_ms, 95),
        p99_ms=percentile(tally.latencies_ms, 99),
        stroke_end_p99_ms=percentile(tally.stroke_end_ms, 99) if scenario.loop is not Loop.CLOSED else float("nan"),
        mean_batch=1.0 if http else counters.mean_batch_size,
        # the flooder's own frames are most of what is coalesced in its row
        coalesced_pct=float("nan") if http or flooded else 100 * counters.coalesced / max(tally.sent, 1),
        failures=tally.errors + tally.stroke_ends_unanswered,
        cpu_pct=cpu_percent(before, after),
        steal_pct=stolen_percent(host_before, host_after),
        cpu_ms_per_answer=1000 * (after.cpu_s - before.cpu_s) / max(answered, 1),
        rss_mib=after.rss_mib,
        # every frame the server read was answered or replaced; the drawers sent the rest
        flood_frames_s=(counters.answered + counters.coalesced - tally.sent) / args.duration
        if flooded
        else float("nan"),
    )


async def run_row(server: Server, label: str, scenario: Scenario, args: argparse.Namespace) -> Row:
    row = Row(label, scenario, load_average(), [])
    for _ in range(args.runs):
        row.runs.append(await run_once(server, label, scenario, args))
    print(markdown_table(HEADERS, [row.cells()]).splitlines()[-1], flush=True)
    return row


async def read_server(server: Server, window: Window, http: bool):
    """Server counters and /proc readings at the window's edges (the baseline has no /metrics)."""

    async def read() -> tuple[ServerCounters, tuple[ProcessSample, HostCpu]]:
        counters = ServerCounters(0, 0, 0, 0) if http else await asyncio.to_thread(ServerCounters.read, server.base_url)
        return counters, (sample_process(server.pid), HostCpu.read())

    await sleep_until(window.start)
    counters_before, before = await read()
    await sleep_until(window.end)
    counters_after, after = await read()
    return counters_after - counters_before, before, after


def servers(args: argparse.Namespace) -> list[tuple[str, Server, list[Scenario]]]:
    closed = [Scenario(Loop.CLOSED, n) for n in args.closed]
    opened = [Scenario(Loop.OPEN, n) for n in args.drawers]
    batch_1 = ["--max-batch-size", "1"]
    return [
        ("streaming, batch ≤ 32, pace lifted", Server(args=UNPACED), [*closed, Scenario(Loop.CLOSED, 48, Frames.PNG)]),
        ("streaming, batch ≤ 32", Server(), [*opened, Scenario(Loop.FLOOD, 10)]),
        ("streaming, batch 1, pace lifted", Server(args=batch_1 + UNPACED), closed),
        ("streaming, batch 1", Server(args=batch_1), [s for s in opened if s.clients == 40]),
        ("baseline HTTP", Server(command=[sys.executable, "-m", "bench.baseline_server"]), closed),
    ]


def model_alone(seconds: float) -> dict[str, float]:
    """Images/s at batch 32 of the served model and of the Keras model through a tf.function,
    each alone, in a process of their own, on the same machine now."""
    result = subprocess.run(
        [sys.executable, "-m", "bench.model", "--seconds", str(seconds), "--batch-32"],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.splitlines()[-1])


async def run(args: argparse.Namespace) -> list[Row]:
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


def summary(rows: list[Row], model_rates: dict[str, float]) -> list[str]:
    def find(label: str, loop: Loop, clients: int, frames: Frames = Frames.GREY) -> Row | None:
        return next(
            (row for row in rows if row.server.startswith(label) and row.scenario == Scenario(loop, clients, frames)),
            None,
        )

    lines = []
    batched, single, baseline = (
        find(label, Loop.CLOSED, 48) for label in ("streaming, batch ≤", "streaming, batch 1", "baseline")
    )
    if batched:
        rate, served, keras = batched.median("pred_s"), model_rates["served"], model_rates["tf_function"]
        lines.append(
            f"- capacity, 48 closed-loop clients: {rate:.0f} predictions/s (target ≥ 1,500); the model alone at "
            f"batch 32 does {served:.0f} images/s as served (LiteRT int8, one thread): {100 * rate / served:.0f}% of "
            f"it, and {keras:.0f} images/s as Keras through a tf.function: {100 * rate / keras:.0f}% (target ≥ 50%)"
        )
        lines.append(
            f"- server CPU per answered snapshot, 48 closed-loop clients: "
            f"{batched.median('cpu_ms_per_answer'):.2f} ms (target ≤ 0.6 ms)"
        )
        lines.append(f"- server memory (resident) after 48 closed-loop clients: {batched.median('rss_mib'):.0f} MiB")
    if png := find("streaming, batch ≤", Loop.CLOSED, 48, Frames.PNG):
        lines.append(
            f"- the same with the PNG frames of browsers without CompressionStream: "
            f"{png.median('pred_s'):.0f} predictions/s, {png.median('cpu_ms_per_answer'):.2f} ms of server CPU each"
        )
    if batched and single:
        lines.append(
            f"- batched / batch-1 capacity: {batched.median('pred_s') / single.median('pred_s'):.1f}× (target ≥ 4×)"
        )
    if batched and baseline:
        lines.append(
            f"- batched streaming / one HTTP request + model.predict per snapshot: "
            f"{batched.median('pred_s') / baseline.median('pred_s'):.0f}×"
        )
    for drawers, target in ((40, 50), (100, 100)):
        if drawn := find("streaming, batch ≤", Loop.OPEN, drawers):
            lines.append(
                f"- {drawers} drawers at 20 Hz: p99 {drawn.median('p99_ms'):.0f} ms, stroke-end p99 "
                f"{drawn.median('stroke_end_p99_ms'):.0f} ms (targets ≤ {target} ms), "
                f"{sum(run.failures for run in drawn.runs)} errors + lost stroke ends"
            )
    calm, flooded = find("streaming, batch ≤", Loop.OPEN, 10), find("streaming, batch ≤", Loop.FLOOD, 10)
    if calm and flooded:
        lines.append(
            f"- a flooder sending as fast as its socket takes frames (the server read "
            f"{flooded.median('flood_frames_s'):.0f}/s of them) next to 10 drawers: their p99 "
            f"{calm.median('p99_ms'):.0f} → {flooded.median('p99_ms'):.0f} ms "
            f"({flooded.median('p99_ms') / calm.median('p99_ms'):.1f}×)"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description="digitstream load benchmark")
    parser.add_argument(
        "--drawers",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[10, 40, 100],
        help="open-loop drawer counts (10,40,100)",
    )
    parser.add_argument(
        "--closed",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[48],
        help="closed-loop client counts (48)",
    )
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per run (8)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each run (2)")
    parser.add_argument("--runs", type=int, default=RUNS, help=f"measured runs per row ({RUNS})")
    parser.add_argument("--only", nargs="*", help="run only the servers whose label starts so: streaming, baseline")
    parser.add_argument("--quick", action="store_true", help="2 s rows, to check the bench works")
    parser.add_argument("--json", type=Path, help="also write the rows here, for bench/report.py")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.warmup = 2.0, 0.5
    load_before = load_average()
    print(f"Machine: {machine()}; load average before: {load_before}\n")
    model_rates = model_alone(3.0)
    print(
        f"Model alone, batch 32: {model_rates['served']:.0f} images/s served (LiteRT int8, one thread), "
        f"{model_rates['tf_function']:.0f} images/s as Keras through a tf.function\n"
    )
    rows = asyncio.run(run(args))
    load_after = load_average()
    print(f"\nLoad average after: {load_after}\n")
    lines = summary(rows, model_rates)
    print("\n".join(lines))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "machine": machine(),
                    "load_before": load_before,
                    "load_after": load_after,
                    "model_batch_32_images_s": model_rates,
                    "headers": HEADERS,
                    "table": [row.cells() for row in rows],
                    "rows": [row.as_json() for row in rows],
                    "summary": lines,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
