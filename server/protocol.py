"""The JSON messages /ws sends (docs/protocol.md)."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

from server.errors import ClientError

if TYPE_CHECKING:
    from server.classifier import Classification


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


def error(failure: ClientError, seq: int | None = None, **fields: Any) -> str:
    """`fields` add what the client needs to act on it (e.g. `retry_after`)."""
    body: dict[str, Any] = {"type": "error", "code": failure.code, "message": str(failure), **fields}
    if seq is not None:
        body["seq"] = seq
    return json.dumps(body)
