"""Real-server helpers shared by the integration, browser and classroom tests."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import websockets
from PIL import Image
from websockets.exceptions import ConnectionClosed

REPO = Path(__file__).resolve().parent.parent
HOLDOUT = REPO / "tests" / "data" / "holdout.npz"
STARTUP_TIMEOUT_S = 180.0  # generous: benchmarks start servers on busy machines too
# How long a test waits for an answer before failing: far above any answer on a busy machine.
ANSWER_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServerProcess:
    """`python -m server serve` (or `command`) in a child process, on a free loopback port."""

    args: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    command: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    started_at: float = 0.0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self) -> ServerProcess:
        command = [*(self.command or [sys.executable, "-m", "server", "serve"]), "--port", str(self.port), *self.args]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2", **self.env}
        self.started_at = time.monotonic()
        with open(self.log_path or os.devnull, "ab") as log:  # the child keeps its own copy
            self.process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            self.wait_healthy()
        except BaseException:
            self.stop()  # a server that never became healthy must not outlive the test
            raise
        return self

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}; log: {self.log_path}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server not healthy after {STARTUP_TIMEOUT_S}s; log: {self.log_path}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""


def holdout() -> tuple[np.ndarray, np.ndarray]:
    with np.load(HOLDOUT) as data:
        return data["x"], data["y"]


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def canvas_png(digit: np.ndarray, size: int = 280, invert: bool = False) -> bytes:
    """A hold-out digit drawn large on a canvas, as a page would send it."""
    image = Image.fromarray(digit).resize((size, size), Image.Resampling.BILINEAR)
    pixels = np.asarray(image)
    return png_bytes(255 - pixels if invert else pixels)


async def receive(ws: websockets.ClientConnection, timeout: float = ANSWER_TIMEOUT_S) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def receive_type(ws: websockets.ClientConnection, kind: str, timeout: float = ANSWER_TIMEOUT_S) -> dict[str, Any]:
    """The next message of `kind`, skipping predictions and pongs on the way."""
    while (message := await receive(ws, timeout))["type"] != kind:
        assert message["type"] in ("prediction", "pong"), message
    return message


async def closed_with(ws: websockets.ClientConnection) -> int | None:
    """The close code, once the server has closed; any message before it fails the test."""
    with contextlib.suppress(ConnectionClosed):
        message = await asyncio.wait_for(ws.recv(), ANSWER_TIMEOUT_S)
        raise AssertionError(f"answered instead of closed: {message!r:.200}")
    await asyncio.wait_for(ws.wait_closed(), ANSWER_TIMEOUT_S)
    return ws.close_code


async def close_code_after(ws: websockets.ClientConnection, frame: bytes | str) -> int | None:
    """Send `frame` and return the code the server closed with. The close may surface on the
    send (the server closed while the frame was still going out) as well as on the next recv."""
    with contextlib.suppress(ConnectionClosed):
        await ws.send(frame)
    return await closed_with(ws)
