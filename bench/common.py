"""What the load, soak and cold-start benchmarks share: server processes on 127.0.0.1,
the page's recorded snapshots, /proc and /metrics readings, percentiles and markdown tables."""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from bench.record_page import FIXTURE, Recording
from tests.support import ServerProcess

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# A simulated drawer replays the page's recorded strokes at 20 Hz (the page sends at most every
# 40 ms), with 0.5 s pauses between strokes.
FRAME_INTERVAL_S = 0.05
PAUSE_S = 0.5
# Server flags for closed-loop clients: per-connection pacing lifted (bench/load.py says why).
UNPACED = ["--max-snapshot-rate", "1000"]


@dataclass
class Server(ServerProcess):
    """A server child process for a benchmark: quiet, logged to a file, usable with `with`."""

    log_path: Path = field(
        default_factory=lambda: Path(tempfile.mkstemp(prefix="digitstream-bench-", suffix=".log")[1])
    )
    env: dict[str, str] = field(default_factory=lambda: {"DIGITSTREAM_LOG_LEVEL": "warning"})

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def crashes(self) -> int:
        """Tracebacks in the server's log: any is a bug, whatever the load."""
        return self.log_text().count("Traceback")

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(timeout=15)


@dataclass(frozen=True)
class ProcessSample:
    cpu_s: float
    rss_mib: float
    threads: int
    fds: int
    at: float


def cpu_seconds(stat_path: Path | str) -> float:
    """User plus system CPU seconds from a /proc `stat` file, of a process or of one thread."""
    stat = Path(stat_path).read_text()
    # the command name may hold spaces: fields after it start past the last ")"
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def sample_process(pid: int) -> ProcessSample:
    """CPU seconds, RSS and thread count from /proc (psutil is not a dependency)."""
    cpu_s = cpu_seconds(f"/proc/{pid}/stat")
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    rss_mib = int(status["VmRSS"].split()[0]) / 1024
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return ProcessSample(cpu_s, rss_mib, int(status["Threads"]), fds, time.monotonic())


def cpu_percent(before: ProcessSample, after: ProcessSample) -> float:
    """Share of one core, so 200% is both cores of a 2-core machine."""
    return 100 * (after.cpu_s - before.cpu_s) / max(after.at - before.at, 1e-9)


def scrape(base_url: str) -> dict[str, float]:
    """`/metrics` as {"name{label=value}": value}, counters under their `_total` names."""
    text = httpx.get(base_url + "/metrics", timeout=10).text
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{key}={value}" for key, value in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return values


@dataclass(frozen=True)
class ServerCounters:
    """The /metrics counters a benchmark row reports, as differences over the row."""

    batches: float
    batched_images: float
    coalesced: float
    answered: float  # predictions sent, blank snapshots included

    @classmethod
    def read(cls, base_url: str) -> ServerCounters:
        values = scrape(base_url)
        answered = sum(value for name, value in values.items() if name.startswith("digitstream_predictions_total"))
        return cls(
            values.get("digitstream_batch_size_count", 0.0),
            values.get("digitstream_batch_size_sum", 0.0),
            values.get("digitstream_coalesced_snapshots_total", 0.0),
            answered,
        )

    def __sub__(self, other: ServerCounters) -> ServerCounters:
        return ServerCounters(
            self.batches - other.batches,
            self.batched_images - other.batched_images,
            self.coalesced - other.coalesced,
            self.answered - other.answered,
        )

    @property
    def mean_batch_size(self) -> float:
        return self.batched_images / self.batches if self.batches else float("nan")


def page_strokes(path: Path = FIXTURE) -> list[list[bytes]]:
    """The committed recording of the real page (bench/record_page.py): the frames as Chromium
    streams them (grey frames; `PNG_FIXTURE`: RGBA PNGs), one list per stroke, its last frame
    sent at pen-up."""
    return Recording.load(path).strokes


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(value: object) -> str:
        if isinstance(value, float):
            return "–" if math.isnan(value) else f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"
        return str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@dataclass(frozen=True)
class HostCpu:
    """The machine's CPU ticks so far (/proc/stat). On a virtual machine `steal` is time its
    cores were runnable but the host ran something else: every process here, server and load
    generator alike, was slower by that much, and the load average does not show it."""

    steal: int
    total: int

    @classmethod
    def read(cls) -> HostCpu:
        ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return cls(ticks[7] if len(ticks) > 7 else 0, sum(ticks))


def stolen_percent(before: HostCpu, after: HostCpu) -> float:
    """Share of the machine's CPU time the host took between two readings."""
    return 100 * (after.steal - before.steal) / max(after.total - before.total, 1)


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown CPU",
    )
    return f"{os.cpu_count()} cores ({model}), Python {sys.version.split()[0]}"
