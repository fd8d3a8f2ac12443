"""What the load, soak and cold-start benchmarks share: server processes on 127.0.0.1,
drawing-like snapshots, /proc and /metrics readings, percentiles and markdown tables."""

from __future__ import annotations

import io
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from tests.support import ServerProcess, holdout

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# The page streams at most every 40 ms; the drawer: 20 Hz, 1.5 s strokes, 0.5 s pauses.
FRAME_INTERVAL_S = 0.05
STROKE_FRAMES = 30
PAUSE_S = 0.5


@dataclass
class Server(ServerProcess):
    """A server child process for a benchmark: quiet, logged to a file, usable with `with`."""

    log_path: Path = field(default_factory=lambda: Path(tempfile.mkstemp(prefix="digitstream-bench-", suffix=".log")[1]))
    env: dict[str, str] = field(default_factory=lambda: {"DIGITSTREAM_LOG_LEVEL": "warning"})

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def crashes(self) -> int:
        """Tracebacks in the server's log: any is a bug, whatever the load."""
        return self.log_text().count("Traceback")

    def __enter__(self) -> "Server":
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


def sample_process(pid: int) -> ProcessSample:
    """CPU seconds, RSS and thread count from /proc (psutil is not a dependency)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # the command name may hold spaces: fields after it start past the last ")"
    fields = stat[stat.rindex(")") + 2 :].split()
    cpu_s = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
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

    @classmethod
    def read(cls, base_url: str) -> "ServerCounters":
        values = scrape(base_url)
        return cls(values.get("digitstream_batch_size_count", 0.0), values.get("digitstream_batch_size_sum", 0.0),
                   values.get("digitstream_coalesced_snapshots_total", 0.0))

    def __sub__(self, other: "ServerCounters") -> "ServerCounters":
        return ServerCounters(self.batches - other.batches, self.batched_images - other.batched_images,
                              self.coalesced - other.coalesced)

    @property
    def mean_batch_size(self) -> float:
        return self.batched_images / self.batches if self.batches else float("nan")


def png(pixels: np.ndarray, size: int) -> bytes:
    image = Image.fromarray(pixels).resize((size, size), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def drawing_order(digit: np.ndarray) -> np.ndarray:
    """The digit's ink pixels in the order a pen might visit them: a nearest-neighbour
    walk from the topmost ink pixel."""
    points = np.argwhere(digit > 32).astype(np.float32)
    order = [int(np.argmin(points[:, 0] * 100 + points[:, 1]))]
    left = np.ones(len(points), bool)
    left[order[0]] = False
    while left.any():
        distances = np.where(left, ((points - points[order[-1]]) ** 2).sum(axis=1), np.inf)
        order.append(int(np.argmin(distances)))
        left[order[-1]] = False
    return points[order].astype(int)


def stroke_snapshots(digit: np.ndarray, size: int, frames: int = STROKE_FRAMES) -> list[bytes]:
    """PNGs of `digit` being drawn: frame k shows the first k/frames of its ink, like the page's
    snapshots during one stroke (the last frame is the whole digit)."""
    path = drawing_order(digit)
    snapshots = []
    for frame in range(1, frames + 1):
        shown = np.zeros_like(digit)
        rows, cols = path[: max(1, round(len(path) * frame / frames))].T
        shown[rows, cols] = digit[rows, cols]
        snapshots.append(png(shown, size))
    return snapshots


def strokes(count: int, size: int) -> list[list[bytes]]:
    x, _ = holdout()
    return [stroke_snapshots(x[index], size) for index in range(count)]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def markdown_table(headers: list[str], rows: list[list[object]]) -> str:
    def cell(value: object) -> str:
        if isinstance(value, float):
            return "–" if value != value else f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"
        return str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown CPU")
    return f"{os.cpu_count()} cores ({model}), Python {sys.version.split()[0]}"
