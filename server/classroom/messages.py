"""The classroom's JSON messages (docs/protocol.md, "Classroom"): to students over /ws, and to
dashboards over /ws/teacher. Names go out as stored; pages render them as text."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from server.classroom.rooms import Seat, Tile, View

Message = dict[str, Any]
# The messages after which a student holds no seat.
LEAVING = ("removed", "room_closed")


def tile(tile: Tile) -> Message:
    return {
        "id": tile.id,
        "name": tile.name,
        "digit": tile.digit,
        "confidence": round(tile.confidence, 4),
        "preview": base64.b64encode(tile.preview_png).decode() if tile.preview_png else None,
        "away": tile.away,
    }


def snapshot(view: View, join_url: str) -> Message:
    """Everything a dashboard shows, sent once after it authenticates."""
    return {
        "type": "snapshot",
        "room": view.code,
        "join_url": join_url,
        "max_students": view.max_students,
        "tiles": [tile(t) for t in view.tiles],
        **counts(view),
    }


def delta(view: View, changed: set[str], removed: set[str], shown: set[str]) -> Message:
    """The tiles changed and removed since the previous message, to a page that holds `shown`.

    Room events and the room's stored state reach a process by different paths (with Redis,
    pub/sub and reads), so the view may already hold a student whose event is still on its way,
    or no longer hold one an event names. Every tile the page lacks goes out and every tile the
    view lacks is removed, so after each message the page holds exactly the view's tiles and
    the counts describe them. Tiles go out in the view's (joining) order, the order in which
    the page places newcomers."""
    present = {t.id for t in view.tiles}
    sent = (changed & present) | (present - shown)
    return {
        "type": "tiles",
        "changed": [tile(t) for t in view.tiles if t.id in sent],
        "removed": sorted((removed | shown) - present),
        **counts(view),
    }


def counts(view: View) -> Message:
    return {"students": len(view.tiles), "matching": view.matching, "prompt": view.prompt}


def closed(reason: str) -> Message:
    return {"type": "closed", "reason": reason}


def joined(code: str, seat: Seat) -> Message:
    return {
        "type": "joined",
        "room": code,
        "student": seat.id,
        "name": seat.name,
        "prompt": seat.prompt,
        "rejoin": seat.rejoin,
    }


def prompt(digit: int | None) -> Message:
    return {"type": "prompt", "digit": digit}


def clear_pad() -> Message:
    return {"type": "clear_pad"}


def removed() -> Message:
    return {"type": "removed"}


def room_closed(reason: str) -> Message:
    return {"type": "room_closed", "reason": reason}
