"""`digitstream [serve|train|export] …` and `python -m server …`.

Every flag falls back to a `DIGITSTREAM_*` environment variable, then to a default; both come
from the settings dataclass (server/config.py).
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
import time
from collections.abc import Sequence

import uvicorn
from starlette.applications import Starlette

from server.config import Settings, add_options, from_args
from server.service import CLOSE_TIMEOUT_S, DRAIN_TIMEOUT_S, SHUTDOWN_TIMEOUT_S, Service


def build_parser(command: str) -> argparse.ArgumentParser:
    """Only the chosen command's module is imported: serving never imports the trainer."""
    parser = argparse.ArgumentParser(
        prog="digitstream",
        description="Real-time handwritten-digit classifier that predicts while you draw.",
    )
    commands = parser.add_subparsers(dest="command", metavar="{serve,train,export}")
    serve_parser = commands.add_parser("serve", help="serve the page, /ws and the API (default)")
    train_parser = commands.add_parser("train", help="train the model, export it and write reports")
    export_parser = commands.add_parser("export", help="write the served model from a trained one, and a report")
    if command == "train":
        from server.train import add_train_arguments

        add_train_arguments(train_parser)
    elif command == "export":
        from server.export import add_export_arguments

        add_export_arguments(export_parser)
    else:
        add_options(serve_parser, Settings)
    return parser


class DrainingServer(uvicorn.Server):
    """uvicorn's server, but a shutdown never waits on a client that stopped reading.

    The service drains on the exit signal (server/exitsignals.py); the drain here covers a
    shutdown asked for without one and otherwise finds nothing left to do."""

    def __init__(self, config: uvicorn.Config, service: Service) -> None:
        super().__init__(config)
        self._service = service
        self._unread_since: dict[object, float] = {}  # connection → when it was first seen stuck

    async def on_tick(self, counter: int) -> bool:
        if counter % 10 == 0:  # uvicorn ticks every 0.1 s
            self.abort_unread_closes()
        return await super().on_tick(counter)

    def abort_unread_closes(self) -> None:
        """A connection closed while its client stopped reading waits for its unsent bytes to
        leave, which they never will: it would hold its socket past the connection caps for
        good. Once it has waited a send timeout, it is aborted."""
        now, unread_since = time.monotonic(), dict[object, float]()
        for connection in self.server_state.connections:
            transport = getattr(connection, "transport", None)
            if transport is None or not transport.is_closing() or not transport.get_write_buffer_size():
                continue
            since = self._unread_since.get(connection, now)
            if now - since >= self._service.settings.send_timeout_s:
                transport.abort()
            else:
                unread_since[connection] = since
        self._unread_since = unread_since

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        await self._service.drain()
        self.abort_stuck()
        await super().shutdown(sockets)

    def abort_stuck(self) -> None:
        """A connection still holding unsent bytes after the drain belongs to a client that
        stopped reading: closing it would wait for them to leave, which they never will."""
        for connection in list(self.server_state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None and transport.get_write_buffer_size():
                transport.abort()


def uvicorn_config(app: Starlette, settings: Settings, **overrides: object) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        ws_max_size=settings.max_message_bytes,
        # Snapshots arrive compressed (zlib grey frames, PNGs): deflating each frame again costs
        # more CPU than the model.
        ws_per_message_deflate=False,
        # the drain has spent the rest of the shutdown's time already
        # uvicorn annotates an int but hands the value to asyncio.wait_for, which takes any float
        timeout_graceful_shutdown=SHUTDOWN_TIMEOUT_S - DRAIN_TIMEOUT_S - CLOSE_TIMEOUT_S,  # type: ignore[arg-type]
        **overrides,  # type: ignore[arg-type]
    )


def serve(settings: Settings, sockets: list[socket.socket] | None = None) -> int:
    """Serve in this process, on `sockets` when a `--workers` parent bound the port."""
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.workers > 1 and sockets is None:
        from server.workers import serve_workers

        return serve_workers(settings)
    from server.app import create_app

    # The batching queue's worker holds the GIL in short bursts between its compiled calls; at
    # the default 5 ms interval the event loop could wait that long to send an answer that was ready.
    sys.setswitchinterval(0.001)
    app = create_app(settings)
    server = DrainingServer(uvicorn_config(app, settings), app.state.service)
    server.run(sockets=sockets)
    return 0 if server.started else 1


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("serve", "train", "export", "-h", "--help"):
        argv.insert(0, "serve")
    args = build_parser(argv[0]).parse_args(argv)
    if args.command == "train":
        from server.train import run_training

        return run_training(args)
    if args.command == "export":
        from server.export import run_export

        return run_export(args)
    return serve(from_args(Settings, args))
