"""Where the server's CPU goes under load: py-spy samples a server (pace lifted, as for the
capacity rows of bench/load.py) while closed-loop clients replay the page's recorded frames;
the samples are summed by kind of work, and each thread's CPU time per answer is read from /proc.

    .venv/bin/python -m bench.profile [--clients 48] [--seconds 15] [--svg profile.svg]

Needs py-spy (the test extra) and permission to ptrace the server (root, or
kernel.yama.ptrace_scope = 0).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import websockets

from bench.clients import Tally, Window, ws_closed_loop
from bench.common import UNPACED, Server, cpu_seconds, load_average, machine, page_strokes

# What names each kind of work in py-spy's collapsed stacks ("function (file:line)" frames),
# looked for in this order: the first that a stack holds names it.
STAGES = {
    "PNG chunk checks": ("parse (server/png.py",),
    "grey frame decode": ("decode (server/greyframe.py",),
    "PNG decode": ("decode (server/png.py", "ImageFile.load", "_decoded_by_pillow", "_decode (server/preprocess.py"),
    "preview PNG": ("preview_png",),
    "model (LiteRT)": ("(server/predictor.py",),
    # a woken worker that the 2 cores have not yet run: sampled as active, mostly not CPU
    "worker waking for the next batch": ("BatchingQueue._take (",),
    "rest of preprocessing": ("preprocess",),
    "batch: assembly, probabilities, answers": ("_classify_prepared", "batching.py", "classifier.py"),
    "JSON answers": ("prediction (server/protocol.py", "json/"),
    "thread hand-offs (futures across threads)": ("call_soon_threadsafe", "concurrent/futures"),
    "event loop, Python: WebSocket frames, tasks, sends": ("websockets", "uvicorn", "starlette", "asyncio", "server/"),
}
# Compiled code has no Python frames: the recipe shows as the leaf frame that calls into it.
COMPILED = (("preprocess_array (server/preprocess.py", "_distance (server/preprocess.py"), "recipe (compiled)")
# uvloop runs the loop in C: its own work (sockets, callback dispatch) shows as this leaf frame.
LOOP_IN_C = ("Runner.run (asyncio/runners.py", "event loop in C (uvloop: sockets, callbacks)")
# py-spy starts each stack with the thread: "thread (TID): name" (a name only for Python threads)
THREAD = re.compile(r"thread \((?:0x)?(\w+)\)(?:: ([^;]*))?")


def stage(stack: str) -> str:
    leaf = stack.rpartition(";")[2]
    if leaf.startswith(LOOP_IN_C[0]):
        return LOOP_IN_C[1]
    if leaf.startswith(COMPILED[0]):
        return COMPILED[1]
    for name, markers in STAGES.items():
        if any(marker in stack for marker in markers):
            return name
    return "other"


def thread_cpu_s(pid: int) -> dict[int, float]:
    """CPU seconds so far of each thread of `pid`, by thread id: py-spy samples only what runs
    Python, and says nothing of time spent waiting for the GIL, so /proc is the measure."""
    by_thread: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            by_thread[int(task.name)] = cpu_seconds(task / "stat")
    return by_thread


def thread_names(collapsed: Path) -> dict[int, str]:
    """Python thread names by thread id, from the roots of py-spy's stacks."""
    names: dict[int, str] = {}
    for line in collapsed.read_text().splitlines():
        if (found := THREAD.match(line)) and found.group(2):
            tid = found.group(1)
            names[int(tid, 16) if not tid.isdigit() else int(tid)] = found.group(2).strip().rstrip("0123456789_")
    return names


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
    with Server(args=UNPACED) as server, tempfile.TemporaryDirectory() as folder:
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
        cpu_after = thread_cpu_s(server.pid)
        for spy in spies:
            spy.wait(60)
        rows = summarise(collapsed)
        names = thread_names(collapsed)
    cpu: dict[str, float] = collections.defaultdict(float)
    for tid, seconds in cpu_after.items():
        cpu[names.get(tid, "other threads")] += seconds - cpu_before.get(tid, 0.0)
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
