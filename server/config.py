"""Settings shared by the CLI, the app factory and the tests."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

ENV_PREFIX = "DIGITSTREAM_"
MIB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    model: Path | None = None  # None: the bundled model
    max_batch_size: int = 32
    max_batch_wait_ms: float = 2.0
    max_message_bytes: int = MIB
    max_pending_http: int = 64
    allowed_origins: tuple[str, ...] = ()  # empty: same origin only; "*": any
    send_timeout_s: float = 10.0
    save_inputs: Path | None = None
    room_idle_minutes: float = 30.0
    room_max_students: int = 100
    log_level: str = "info"
    web_dir: Path = field(default_factory=lambda: Path(__file__).resolve().parent.parent / "web")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Settings":
        """Settings from `DIGITSTREAM_*` variables, for `uvicorn --factory server.app:create_app`."""
        environ = os.environ if environ is None else environ
        values = {}
        for spec in fields(cls):
            raw = environ.get(ENV_PREFIX + spec.name.upper())
            if raw is not None:
                values[spec.name] = parse_setting(spec.name, raw)
        return cls(**values)


def parse_setting(name: str, raw: str) -> object:
    default = getattr(Settings(), name)
    if name in ("model", "save_inputs", "web_dir"):
        return Path(raw) if raw else None
    if name == "allowed_origins":
        return parse_origins(raw)
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return raw


def parse_origins(raw: str) -> tuple[str, ...]:
    return tuple(origin.strip().rstrip("/") for origin in raw.split(",") if origin.strip())
