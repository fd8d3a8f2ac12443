"""How `RedisRooms` stores what is not a plain string: a seat's tile, a room's secret, and
the bytes redis-py hands back (scripts.py shows where each lives)."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from server.classifier import Classification
from server.classroom.rooms import Tile


def digest(secret: str) -> str:
    """Redis keeps a digest: whoever reads Redis still cannot open a dashboard."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def tile_record(result: Classification) -> str:
    """A student's latest answer as the `:tiles` hash holds it."""
    preview = base64.b64encode(result.preview_png).decode() if result.preview_png else None
    return json.dumps({"digit": result.digit, "confidence": result.confidence, "preview": preview})


def tile_of(student: str, seat: dict[str, Any], raw: bytes | None) -> Tile:
    """The dashboard's tile from a seat record and its `:tiles` entry (none before a first answer)."""
    tile = json.loads(raw) if raw else {}
    preview = tile.get("preview")
    return Tile(
        student,
        seat["name"],
        tile.get("digit"),
        tile.get("confidence", 0.0),
        base64.b64decode(preview) if preview else None,
        bool(seat["away"]),
    )
