"""Where the server's CPU goes under load: py-spy samples a server while closed-loop clients
replay the page's recorded frames, and the samples are summed per thread and per function.

    .venv/bin/python -m bench.profile [--clients 48] [--seconds 15] [--svg profile.svg]

Needs py-spy (the test extra) and permission to ptrace the server (root, or
kernel.yama.ptrace_scope = 0).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import websockets

from bench.clients import Tally, Window, ws_closed_loop
from bench.common import Server, load_average, machine, page_strokes

# What names each kind of work in py-spy's collapsed stacks ("function (file:line)" frames),
# looked for in this order: the first that a stack holds names it.
STAGES = {
    "PNG chunk checks": ("parse (server/png.py",),
    "grey frame decode": ("decode (server/greyframe.py",),
    "PNG decode": ("decode (server/png.py", "ImageFile.load", "_decoded_by_pillow", "_decode (server/preprocess.py"),
    "preview PNG": ("preview_png",),
    "stroke repainting": ("_repainted",),
    "20 px placement (resample)": ("_placed",),
    "stroke width": ("_stroke_width",),
    "ink finding (distance, crop)": ("_ink (server/preprocess.py", "_distance (server", "_validated (server"),
    "rest of preprocessing": ("preprocess",),
    "model (TensorFlow)": ("_run_batch (server/batching.py",),
    "batch assembly and queue": ("_take_batch", "batching.py"),
    "JSON answers": ("prediction (server/protocol.py", "json/"),
    "thread hand-offs (futures across threads)": (
        "_call_set_state",
        "_chain_future",
        "call_soon_threadsafe",
        "run_in_executor",
        "concurrent/futures",
    ),
    "event loop, Python: WebSocket frames, tasks, sends": ("websockets", "uvicorn", "starlette", "asyncio"),
}
# uvloop runs the loop in C: its own work (sockets, callback dispatch) shows as this leaf frame.
LOOP_IN_C = ("Runner.run (asyncio/runners.py", "event loop in C (uvloop: sockets, callbacks)")


def stage(stack: str) -> str:
    if stack.rpartition(";")[2].startswith(LOOP_IN_C[0]):
        return LOOP_IN_C[1]
    for name, markers in STAGES.items():
        if any(marker in stack for marker in markers):
            return name
    return "other"


def thread_cpu_s(pid: int) -> dict[str, float]:
    """CPU seconds so far of each thread of `pid`, summed by thread name: py-spy samples only
    Python threads, and TensorFlow's own pool threads are where the model's work runs."""
    ticks = os.sysconf("SC_CLK_TCK")
    by_name: dict[str, float] = collections.defaultdict(float)
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            stat = (task / "stat").read_text()
            name, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
            # digits vary per thread (preprocess_0, preprocess_1): one row per kind
            by_name[name.rstrip("0123456789_")] += (int(fields[11]) + int(fields[12])) / ticks
    return by_name


def summarise(collapsed: Path) -> list[tuple[str, float]]:
    samples: collections.Counter[str] = collections.Counter()
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        samples[stage(stack)] += int(count)
    total = sum(samples.values()) or 1
    return [(name, 100 * count / total) for name, count in samples.most_common()]


async def drive(server: Server, clients: int, seconds: float) -> Tally:
    frames = [frame for stroke in page_strokes() for frame in stroke]
    start = time.perf_counter() + 1.0
    window, tally = Window(start, start + seconds), Tally()
    sockets = await asyncio.gather(*(websockets.connect(server.ws_url, max_size=None) for _ in range(clients)))
    await asyncio.gather(
        *(ws_closed_loop(ws, frames[i * 37 % len(frames) :] + frames, window, tally) for i, ws in enumerate(sockets))
    )
    await asyncio.gather(*(ws.close() for ws in sockets))
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=48)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--svg", type=Path, help="also write py-spy's flame graph here")
    parser.add_argument("--raw", type=Path, help="keep the collapsed stacks here")
    args = parser.parse_args()
    py_spy = Path(sys.executable).parent / "py-spy"
    print(f"Machine: {machine()}; load average before: {load_average()}")
    with Server() as server, tempfile.TemporaryDirectory() as folder:
        collapsed = args.raw or Path(folder) / "profile.txt"
        record = [
            str(py_spy),
            "record",
            "--pid",
            str(server.pid),
            "--duration",
            str(int(args.seconds)),
            "--rate",
            "200",
            "--threads",
            "--nonblocking",
        ]
        spies = [subprocess.Popen([*record, "--format", "raw", "-o", str(collapsed)], stdout=subprocess.DEVNULL)]
        if args.svg:
            spies.append(subprocess.Popen([*record, "-o", str(args.svg)], stdout=subprocess.DEVNULL))
        cpu_before = thread_cpu_s(server.pid)
        tally = asyncio.run(drive(server, args.clients, args.seconds))
        cpu = {name: seconds - cpu_before.get(name, 0.0) for name, seconds in thread_cpu_s(server.pid).items()}
        for spy in spies:
            spy.wait(60)
        rows = summarise(collapsed)
    print(
        f"{args.clients} closed-loop clients: {tally.answered / args.seconds:.0f} predictions/s; "
        f"load average after: {load_average()}\n"
    )
    print("| where the server's sampled CPU went | share |\n|---|---|")
    for name, share in rows:
        print(f"| {name} | {share:.0f}% |")
    answered = max(tally.answered, 1)
    print("\n| server thread | CPU per answer (ms) |\n|---|---|")
    for name, seconds in sorted(cpu.items(), key=lambda item: -item[1]):
        if seconds > 0:
            print(f"| {name} | {1000 * seconds / answered:.3f} |")
    print(f"| all | {1000 * sum(cpu.values()) / answered:.3f} |")


if __name__ == "__main__":
    main()
