"""`digitstream [serve|train] …` and `python -m server …`.

Every serve flag falls back to a `DIGITSTREAM_*` environment variable, then to a default.
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import fields
from pathlib import Path

import uvicorn

from server.config import Settings, parse_origins

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def build_parser(command: str) -> argparse.ArgumentParser:
    """Only the chosen command's module is imported: serving never imports the trainer."""
    parser = argparse.ArgumentParser(
        prog="digitstream",
        description="Real-time handwritten-digit classifier that predicts while you draw.",
    )
    commands = parser.add_subparsers(dest="command", metavar="{serve,train}")
    serve_parser = commands.add_parser("serve", help="serve the page, /ws and the API (default)")
    train_parser = commands.add_parser("train", help="train the model and write a report")
    if command == "train":
        from server.train import add_train_arguments

        add_train_arguments(train_parser)
    else:
        add_serve_arguments(serve_parser)
    return parser


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    env = Settings.from_env()
    parser.add_argument("--host", default=env.host, help="interface to listen on [DIGITSTREAM_HOST] (%(default)s)")
    parser.add_argument("--port", type=int, default=env.port, help="TCP port [DIGITSTREAM_PORT] (%(default)s)")
    parser.add_argument(
        "--model", type=Path, default=env.model,
        help="Keras model file [DIGITSTREAM_MODEL] (the bundled server/assets/model.keras)",
    )
    parser.add_argument(
        "--max-batch-size", type=positive_int, default=env.max_batch_size,
        help="most snapshots the model sees in one batch [DIGITSTREAM_MAX_BATCH_SIZE] (%(default)s)",
    )
    parser.add_argument(
        "--max-batch-wait-ms", type=float, default=env.max_batch_wait_ms,
        help="how long a batch waits for more snapshots after its first [DIGITSTREAM_MAX_BATCH_WAIT_MS] (%(default)s)",
    )
    parser.add_argument(
        "--max-message-bytes", type=positive_int, default=env.max_message_bytes,
        help="largest WebSocket frame or image in bytes; larger frames close with 1009 "
        "[DIGITSTREAM_MAX_MESSAGE_BYTES] (%(default)s)",
    )
    parser.add_argument(
        "--max-pending-http", type=positive_int, default=env.max_pending_http,
        help="POST /api/classify requests in flight before answering 503 [DIGITSTREAM_MAX_PENDING_HTTP] (%(default)s)",
    )
    parser.add_argument(
        "--allowed-origins", type=parse_origins, default=env.allowed_origins,
        help="comma-separated browser origins allowed on /ws besides the page's own; '*' allows any "
        "[DIGITSTREAM_ALLOWED_ORIGINS] (same origin only)",
    )
    parser.add_argument(
        "--save-inputs", type=Path, default=env.save_inputs, metavar="DIR",
        help="write the 28x28 images the model is given to DIR as PNGs, rate-limited, for troubleshooting "
        "[DIGITSTREAM_SAVE_INPUTS] (off)",
    )
    parser.add_argument(
        "--room-idle-minutes", type=float, default=env.room_idle_minutes,
        help="close a classroom after this many minutes without activity [DIGITSTREAM_ROOM_IDLE_MINUTES] (%(default)s)",
    )
    parser.add_argument(
        "--room-max-students", type=positive_int, default=env.room_max_students,
        help="students one classroom admits [DIGITSTREAM_ROOM_MAX_STUDENTS] (%(default)s)",
    )
    parser.add_argument(
        "--log-level", choices=LOG_LEVELS, default=env.log_level,
        help="[DIGITSTREAM_LOG_LEVEL] (%(default)s)",
    )


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def settings_from(args: argparse.Namespace) -> Settings:
    """Every serve flag's name is a Settings field; fields without a flag keep their default."""
    return Settings(**{spec.name: getattr(args, spec.name) for spec in fields(Settings) if hasattr(args, spec.name)})


class DrainingServer(uvicorn.Server):
    """uvicorn closes WebSockets with 1012 on shutdown; we first answer what is in flight
    and close them with 1001 (going away), as docs/protocol.md promises."""

    def __init__(self, config: uvicorn.Config, drain: Callable[[], Awaitable[None]]) -> None:
        super().__init__(config)
        self._drain = drain

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        await self._drain()
        await super().shutdown(sockets)


def serve(settings: Settings) -> int:
    from server.app import create_app

    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Preprocessing threads hold the GIL in short bursts; at the default 5 ms interval the event
    # loop could wait that long to send an answer that was ready (40 drawers: p99 ~105 -> ~86 ms).
    sys.setswitchinterval(0.001)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        ws_max_size=settings.max_message_bytes,
        # Snapshots are PNGs already; deflating every frame again cost more CPU than the model.
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=5,
    )
    server = DrainingServer(config, drain=app.state.service.drain)
    server.run()
    return 0 if server.started else 1


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("serve", "train", "-h", "--help"):
        argv.insert(0, "serve")
    args = build_parser(argv[0]).parse_args(argv)
    if args.command == "train":
        from server.train import run_training

        return run_training(args)
    return serve(settings_from(args))
