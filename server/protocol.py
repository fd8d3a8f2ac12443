"""The `/ws` wire format (docs/protocol.md): control messages in, JSON messages out."""

from __future__ import annotations

import base64
import json
from typing import Any

from server.batching import BatchFailed, Overloaded, QueueClosed
from server.classifier import Classification
from server.preprocess import BadImage

CLOSE_GOING_AWAY = 1001
CLOSE_POLICY_VIOLATION = 1008
CLOSE_MESSAGE_TOO_BIG = 1009

CONTROL_TYPES = ("clear", "ping", "join", "leave")
BAD_MESSAGE = (
    "A text frame must be a JSON control message: {\"type\": \"clear\"}, {\"type\": \"ping\", \"t\": …}, "
    "{\"type\": \"join\", \"room\": …, \"name\": …} or {\"type\": \"leave\"}."
)


class BadMessage(ValueError):
    """A text frame that is not a control message this server knows."""


def parse_control(text: str) -> dict[str, Any]:
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise BadMessage(BAD_MESSAGE) from None
    if not isinstance(message, dict) or message.get("type") not in CONTROL_TYPES:
        raise BadMessage(BAD_MESSAGE)
    return message


def prediction(seq: int, result: Classification, total_ms: float) -> str:
    return json.dumps(
        {
            "type": "prediction",
            "seq": seq,
            "empty": result.empty,
            "digit": result.digit,
            "confidence": result.confidence,
            "probabilities": result.probabilities,
            "preview": base64.b64encode(result.preview_png).decode() if result.preview_png else None,
            "timing": {
                "queue_ms": round(result.queue_ms, 3),
                "inference_ms": round(result.inference_ms, 3),
                "total_ms": round(total_ms, 3),
            },
        }
    )


def pong(message: dict[str, Any]) -> str:
    return json.dumps({"type": "pong", "t": message.get("t")})


def error(code: str, message: str, seq: int | None = None) -> str:
    body: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if seq is not None:
        body["seq"] = seq
    return json.dumps(body)


def describe_failure(failure: Exception) -> tuple[str, str]:
    """The (code, message) a client sees for a failed snapshot; never exception text."""
    if isinstance(failure, BadImage):
        return failure.code, str(failure)
    if isinstance(failure, Overloaded):
        return "overloaded", "The server is busy; send the snapshot again in a moment."
    if isinstance(failure, QueueClosed):
        return "shutting_down", "The server is shutting down."
    if isinstance(failure, BatchFailed):
        return "internal", "The model could not classify this snapshot."
    return "internal", "Something went wrong while classifying this snapshot."
