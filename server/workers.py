"""`--workers N`: N server processes accept connections on one port, one event loop and one
model each, and serve every class together through Redis (`--redis-url`). This parent binds the
port, starts the workers, starts another when one dies, and passes SIGTERM/SIGINT on."""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import sys
import threading
from multiprocessing.context import SpawnProcess

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from server.config import Settings
from server.service import SHUTDOWN_TIMEOUT_S

logger = logging.getLogger(__name__)

RESTART_CHECK_S = 0.5
# Spawned, never forked: native libraries with state of their own (LiteRT, numba's LLVM) are not fork-safe.
CONTEXT = multiprocessing.get_context("spawn")


def serve_workers(settings: Settings) -> int:
    if not settings.redis_url:
        logger.error(
            "--workers %d needs --redis-url: without it each process would hold its own classes", settings.workers
        )
        return 2
    sock = uvicorn.Config("server.app:create_app", host=settings.host, port=settings.port).bind_socket()
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    workers = [start_worker(settings, sock) for _ in range(settings.workers)]
    exit_code = 0
    while not stopping.wait(RESTART_CHECK_S):
        # One that could not start (a bad --model, say) would fail the same way again, for ever.
        if any(worker.exitcode == STARTUP_FAILURE for worker in workers):
            logger.error("a worker could not start (its log says why); stopping the others")
            exit_code = 1
            break
        for index, worker in enumerate(workers):
            if not worker.is_alive():
                logger.warning("worker %s exited with %s; starting another", worker.pid, worker.exitcode)
                workers[index] = start_worker(settings, sock)
    for worker in workers:
        worker.terminate()  # SIGTERM: each drains its connections and closes them with 1001
    for worker in workers:
        worker.join(SHUTDOWN_TIMEOUT_S + 2)
        if worker.is_alive():
            worker.kill()
    return exit_code


def start_worker(settings: Settings, sock: socket.socket) -> SpawnProcess:
    worker = CONTEXT.Process(target=run_worker, args=(settings, sock), name="digitstream-worker")
    worker.start()
    return worker


def run_worker(settings: Settings, sock: socket.socket) -> None:
    from server.cli import serve

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    if serve(settings, sockets=[sock]) != 0:
        sys.exit(STARTUP_FAILURE)
