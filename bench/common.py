"""What the load, soak and cold-start benchmarks share: server processes on 127.0.0.1,
drawing-like snapshots, /proc and /metrics readings, percentiles and markdown tables."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parent.parent
HOLDOUT = REPO / "tests" / "data" / "holdout.npz"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
STARTUP_TIMEOUT_S = 180.0

# The page streams at most every 40 ms; the drawer: 20 Hz, 1.5 s strokes, 0.5 s pauses.
FRAME_INTERVAL_S = 0.05
STROKE_FRAMES = 30
PAUSE_S = 0.5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """A server child process (`python -m server serve` unless `command` says otherwise)."""

    args: list[str] = field(default_factory=list)
    command: list[str] | None = None
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    log_path: Path = field(default_factory=lambda: Path(tempfile.mkstemp(prefix="digitstream-bench-", suffix=".log")[1]))
    started_at: float = 0.0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, health_path: str = "/healthz") -> "Server":
        command = self.command or [sys.executable, "-m", "server", "serve", "--log-level", "warning"]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
        self.started_at = time.monotonic()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port), *self.args], cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        self._wait_healthy(health_path)
        return self

    def _wait_healthy(self, path: str) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}; log: {self.log_path}")
            try:
                if httpx.get(self.base_url + path, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not healthy after {STARTUP_TIMEOUT_S}s; log: {self.log_path}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def crashes(self) -> int:
        """Tracebacks in the server's log: any is a bug, whatever the load."""
        return self.log_path.read_text(errors="replace").count("Traceback")

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


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


def load_holdout() -> tuple[np.ndarray, np.ndarray]:
    with np.load(HOLDOUT) as data:
        return data["x"], data["y"]


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
    x, _ = load_holdout()
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
