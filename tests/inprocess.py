"""The real app in a real uvicorn server on a free port, run on a thread of the test process,
for the robustness tests that need to reach inside: a predictor that fails on demand, the
server loop's tasks and connections, and the log records it writes. No test-only code path
in the server: `Service(settings, load_predictor=…)` is its own seam."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from server.app import create_app
from server.classifier import Predictor
from server.cli import DrainingServer, uvicorn_config
from server.config import Settings
from server.service import Service, model_predictor
from tests.support import STARTUP_TIMEOUT_S, free_port


class SwitchablePredictor:
    """The real model, or a RuntimeError for every batch while `failing` is set. While `gate`
    is clear, each batch waits at the gate (and `waiting` is set), so tests can hold snapshots
    in the queue behind it."""

    def __init__(self, load: Callable[[], Predictor] | None = None) -> None:
        self._load = load or model_predictor(None)
        self.failing = threading.Event()
        self.gate = threading.Event()
        self.gate.set()
        self.waiting = threading.Event()
        self.failed_batch_sizes: list[int] = []

    def load(self) -> Predictor:
        predict = self._load()

        def predict_or_fail(images: np.ndarray) -> np.ndarray:
            if not self.gate.is_set():
                self.waiting.set()
                self.gate.wait(60)
                self.waiting.clear()
            if self.failing.is_set():
                self.failed_batch_sizes.append(len(images))
                raise RuntimeError("injected model failure")
            return predict(images)

        return predict_or_fail


class ErrorRecords(logging.Handler):
    """Every record at ERROR or above, from any logger: a crash anywhere shows up here."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def describe(self) -> list[str]:
        return [f"{record.name}: {record.getMessage()}" for record in self.records]


class InProcessServer:
    def __init__(self, settings: Settings | None = None, load_predictor: Callable[[], Predictor] | None = None) -> None:
        self.settings = replace(settings or Settings(), port=free_port())
        self.service = Service(self.settings, load_predictor)
        self.errors = ErrorRecords()
        # log_config=None: keep uvicorn's records flowing to the root logger and `errors`
        config = uvicorn_config(create_app(self.settings, self.service), self.settings, log_config=None)
        self.server = DrainingServer(config, self.service)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_until_complete, args=(self.server.serve(),), name="in-process-server", daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.settings.port}/ws"

    def start(self) -> InProcessServer:
        logging.getLogger().addHandler(self.errors)
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the in-process server did not start: {self.errors.describe()}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(30)
        self.loop.close()
        logging.getLogger().removeHandler(self.errors)

    def tasks(self) -> int:
        """Tasks alive on the server's event loop (uvicorn's main task included)."""

        async def count() -> int:
            return len(asyncio.all_tasks())

        return asyncio.run_coroutine_threadsafe(count(), self.loop).result(10)

    def connections(self) -> int:
        """TCP connections uvicorn still holds, closing ones included."""
        return len(self.server.server_state.connections)
