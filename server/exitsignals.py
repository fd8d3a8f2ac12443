"""Drain the service before uvicorn reacts to SIGINT or SIGTERM.

uvicorn's shutdown closes every WebSocket with 1012 before it runs the app's lifespan
shutdown, so an app learns that the server is stopping only after its clients are gone.
Putting the drain in front of uvicorn's own signal handler answers the snapshots in
flight and closes with 1001 first, the same under `python -m server` and under
`uvicorn --factory server.app:create_app`; uvicorn's shutdown then goes on as usual.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

import uvicorn

EXIT_SIGNALS = (signal.SIGINT, signal.SIGTERM)

SignalHandler = Callable[[int, FrameType | None], Any]


def _uvicorn_handlers() -> dict[int, SignalHandler]:
    """uvicorn installs its handlers before the lifespan starts; another server's are left alone."""
    handlers = {sig: signal.getsignal(sig) for sig in EXIT_SIGNALS}
    return {
        sig: handler
        for sig, handler in handlers.items()
        if callable(handler) and isinstance(getattr(handler, "__self__", None), uvicorn.Server)
    }


def drain_before_exit(drain: Callable[[], Awaitable[None]]) -> Callable[[], None]:
    """On the first exit signal run `drain`, then hand the signal to uvicorn; a second one goes
    to uvicorn at once, so an impatient Ctrl+C is never ignored (uvicorn's shutdown still waits
    for the drain, which is bounded). Returns the undo."""
    handlers = _uvicorn_handlers() if threading.current_thread() is threading.main_thread() else {}
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks
    signalled = False

    async def drain_then_exit(sig: int) -> None:
        await drain()
        handlers[sig](sig, None)

    def on_exit_signal(sig: int, frame: FrameType | None) -> None:
        nonlocal signalled
        if signalled:
            handlers[sig](sig, frame)
            return
        signalled = True
        # A signal handler may run in the middle of any loop callback: schedule, never call.
        loop.call_soon_threadsafe(lambda: tasks.add(loop.create_task(drain_then_exit(sig))))

    for sig in handlers:
        signal.signal(sig, on_exit_signal)

    def undo() -> None:
        for sig, handler in handlers.items():
            if signal.getsignal(sig) is on_exit_signal:
                signal.signal(sig, handler)

    return undo
