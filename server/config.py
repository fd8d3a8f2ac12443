"""Settings: one dataclass field per setting, and from each field one CLI flag and one
`DIGITSTREAM_*` environment variable, with the help text kept beside the field.

`option(...)` and `add_options(...)` serve every command: `serve` reads `Settings`, `train` and
`export` their own dataclasses.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

ENV_PREFIX = "DIGITSTREAM_"
MIB = 1024 * 1024
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def bundled_web_dir() -> Path:
    """The page's files: inside the package when installed from a wheel, beside it in a checkout."""
    package = Path(__file__).resolve().parent
    return package / "web" if (package / "web").is_dir() else package.parent / "web"


T = TypeVar("T")


def option(
    default: Any,
    help: str,
    *,
    parse: Callable[[str], Any] | None = None,
    choices: tuple[str, ...] | None = None,
    metavar: str | None = None,
) -> Any:
    """A settings field: its default, its `--help` text, and how to read it from text when its
    type alone does not say (a positive number, a list)."""
    metadata = {"help": help, "parse": parse, "choices": choices, "metavar": metavar}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple for a sequence default")
    return dataclasses.field(default=default, metadata=metadata)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def optional_path(text: str) -> Path | None:
    return Path(text) if text else None


def comma_list(text: str) -> tuple[str, ...]:
    return tuple(item.strip().rstrip("/") for item in text.split(",") if item.strip())


def one_of(choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise argparse.ArgumentTypeError(f"must be one of {', '.join(choices)}")
        return text

    return parse


def parser_for(cls: type, name: str) -> Callable[[str], Any]:
    """How one field is read from a flag or an environment variable."""
    spec = {field.name: field for field in dataclasses.fields(cls)}[name]
    if spec.metadata.get("choices"):
        return one_of(spec.metadata["choices"])
    if spec.metadata.get("parse"):
        return spec.metadata["parse"]
    hint = typing.get_type_hints(cls)[name]
    if hint in (int, float, str):
        return hint
    if hint is Path:
        return Path
    if hint == Path | None:
        return optional_path
    if hint == tuple[str, ...]:
        return comma_list
    raise TypeError(f"{cls.__name__}.{name}: say how to parse {hint} with option(parse=...)")


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def from_env(cls: type[T], environ: Mapping[str, str] | None = None) -> T:
    """`cls` with every field whose `DIGITSTREAM_*` variable is set read from it; raises
    ValueError naming the variable whose text is not a value of its field."""
    environ = os.environ if environ is None else environ
    values = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        variable = env_name(field.name)
        if variable in environ:
            try:
                values[field.name] = parser_for(cls, field.name)(environ[variable])
            except (ValueError, argparse.ArgumentTypeError) as error:
                raise ValueError(f"{variable}={environ[variable]!r}: {error}") from None
    return cls(**values)


def add_options(parser: argparse.ArgumentParser, cls: type, environ: Mapping[str, str] | None = None) -> None:
    """One flag per field; each defaults to its environment variable, then to the field's default.
    A variable's text is a string default, which argparse parses only when its flag is not
    given, refusing bad text with its own usage error: a flag wins over a variable it never reads."""
    environ = os.environ if environ is None else environ
    for field in dataclasses.fields(cls):
        default = environ.get(env_name(field.name), field.default)
        shown = "off" if default is None else ",".join(default) if isinstance(default, tuple) else default
        parser.add_argument(
            "--" + field.name.replace("_", "-"),
            dest=field.name,
            type=parser_for(cls, field.name),
            default=default,
            choices=field.metadata.get("choices"),
            metavar=field.metadata.get("metavar"),
            help=f"{field.metadata['help']} [{env_name(field.name)}] ({'none' if shown == '' else shown})".replace(
                "%", "%%"
            ),
        )


def from_args(cls: type[T], args: argparse.Namespace) -> T:
    return cls(**{field.name: getattr(args, field.name) for field in dataclasses.fields(cls)})  # type: ignore[arg-type]


@dataclasses.dataclass(frozen=True)
class Settings:
    host: str = option("127.0.0.1", "interface to listen on")
    port: int = option(8000, "TCP port")
    model: Path | None = option(
        None, "LiteRT model file, as `digitstream export` writes it; unset: the bundled one", metavar="FILE"
    )
    model_threads: int = option(
        1,
        "threads the model runs on; the event loop has the other cores, and one thread costs the least CPU per image",
        parse=positive_int,
    )
    max_batch_size: int = option(32, "most snapshots the model sees in one batch", parse=positive_int)
    max_batch_wait_ms: float = option(2.0, "how long a batch waits for more snapshots after its first")
    max_batch_fill_ms: float = option(
        10.0,
        "how long after its first snapshot a batch goes on taking queued ones, preparing each; then it runs, "
        "so one costly snapshot cannot hold back the answers of the cheap ones in its batch",
        parse=positive_float,
    )
    max_message_bytes: int = option(
        MIB, "largest binary WebSocket frame or image in bytes; larger frames close with 1009", parse=positive_int
    )
    max_control_rate: float = option(
        20.0,
        "text frames (pings, clears, joins, a dashboard's commands) one connection may send a second, a second's "
        "worth at once; faster ones are read late, so TCP slows the sender",
        parse=positive_float,
    )
    max_text_bytes: int = option(
        4096,
        "largest text (control) frame in UTF-8 bytes, checked before it is parsed; larger get too_large",
        parse=positive_int,
    )
    max_snapshot_rate: float = option(
        30.0,
        "snapshots per second one connection has answered; faster ones wait as the newest, latest wins",
        parse=positive_float,
    )
    snapshot_burst: int = option(
        10,
        "snapshots answered at once above --max-snapshot-rate, and replaced per answer before the socket "
        "is read no further until the next answer",
        parse=positive_int,
    )
    model_deadline_s: float = option(
        5.0,
        "seconds a snapshot may wait for the model before it fails with model_timeout and /healthz says 503",
        parse=positive_float,
    )
    max_connections: int = option(1000, "open WebSockets in all; more are closed with 1013", parse=positive_int)
    max_connections_per_address: int = option(
        250,
        "open WebSockets from one address (a class behind one NAT); more are closed with 1013",
        parse=positive_int,
    )
    idle_timeout_s: float = option(
        120.0,
        "seconds a /ws connection may send nothing (the page pings every 2 s) before it is closed with 1001",
        parse=positive_float,
    )
    max_pending_http: int = option(
        64, "POST /api/classify requests being read or classified at once before answering 503", parse=positive_int
    )
    allowed_origins: tuple[str, ...] = option(
        (), "comma-separated browser origins allowed besides the page's own; '*' allows any"
    )
    allowed_hosts: tuple[str, ...] = option(
        (), "comma-separated host names the server answers to besides localhost and IP addresses; '*' allows any"
    )
    send_timeout_s: float = option(
        10.0,
        "seconds a send, or a closed connection's last bytes, may wait on a client that stopped reading before "
        "it is dropped",
        parse=positive_float,
    )
    save_inputs: Path | None = option(
        None,
        "write the 28x28 images the model is given to DIR as PNGs, rate-limited, for troubleshooting",
        metavar="DIR",
    )
    room_idle_minutes: float = option(
        30.0, "close a classroom after this many minutes without activity", parse=positive_float
    )
    room_max_students: int = option(100, "students one classroom admits", parse=positive_int)
    max_rooms: int = option(1000, "open classrooms the server (all its processes) holds", parse=positive_int)
    rooms_per_address: int = option(20, "open classrooms one address may have", parse=positive_int)
    room_creation_burst: int = option(
        20, "classrooms one address may start at once, before --room-creation-refill-s applies", parse=positive_int
    )
    room_creation_refill_s: float = option(
        6.0, "seconds until an address may start one more classroom after its burst", parse=positive_float
    )
    room_unclaimed_minutes: float = option(
        5.0, "close a classroom no dashboard has opened within this many minutes", parse=positive_float
    )
    seat_grace_s: float = option(
        120.0,
        "seconds a student's seat waits, shown away, for their page to reconnect and rejoin",
        parse=positive_float,
    )
    guesses_per_address: int = option(
        100, "wrong class codes one address may try before a wait (a class shares one address)", parse=positive_int
    )
    guesses_per_socket: int = option(5, "wrong class codes one connection may try before a wait", parse=positive_int)
    joins_per_socket: int = option(
        10, "class joins, right or wrong, one connection may make before a wait (a page makes one)", parse=positive_int
    )
    guesses_per_room: int = option(10, "wrong teacher secrets tried for one room before a wait", parse=positive_int)
    guess_refill_s: float = option(
        3.0, "seconds until each of those budgets (and a connection's joins) allows one more", parse=positive_float
    )
    redis_url: str = option(
        "",
        "Redis URL shared by every server process of one site (redis://host:6379/0); unset: rooms live in this process",
    )
    workers: int = option(1, "server processes sharing this port; more than one needs --redis-url", parse=positive_int)
    log_level: str = option("info", "how much the server logs", choices=LOG_LEVELS)
    web_dir: Path = option(bundled_web_dir(), "the page's files", metavar="DIR")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from `DIGITSTREAM_*` variables, for `uvicorn --factory server.app:create_app`."""
        return from_env(cls, environ)
