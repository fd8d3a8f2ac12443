"""HTTP routes: the one-shot classify that plain HTTP clients use, health and metrics."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import math

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from server.batching import Overloaded, QueueClosed
from server.connection import address_of
from server.errors import BadRequest, ClientError, TooLarge
from server.service import Service

RETRY_AFTER_S = "1"
# Room for the JSON around a base64 image: `{"image": "data:image/png;base64,"}` and some spaces.
JSON_OVERHEAD_BYTES = 1024


async def classify(request: Request) -> Response:
    """`{"image": "data:image/png;base64,…"}` (or the base64 alone as `image`), or a raw `image/*` body."""
    service: Service = request.app.state.service
    if not service.accepting:
        raise QueueClosed()
    # Counted from the first byte read: a body waiting to be read holds memory too.
    if service.http_in_flight >= service.settings.max_pending_http:
        raise Overloaded()
    service.http_in_flight += 1
    try:
        data = await read_image(request, service.settings.max_message_bytes)
        result = await service.classifier.classify(data, sender=address_of(request))
    except ClientDisconnect:
        return Response(status_code=400)
    finally:
        service.http_in_flight -= 1
    service.metrics.predictions.labels("http").inc()
    return JSONResponse(
        {
            "predicted_digit": result.digit,
            "confidence": result.confidence,
            "probabilities": list(result.probabilities),
            "empty": result.empty,
            "preview": base64.b64encode(result.preview_png).decode() if result.preview_png else None,
        }
    )


def is_raw_image(request: Request) -> bool:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return content_type.startswith("image/") or content_type == "application/octet-stream"


async def read_image(request: Request, max_image_bytes: int) -> bytes:
    """The image's bytes. The body may be as large as the largest image, base64-encoded and
    wrapped in JSON when it is JSON; longer bodies are refused before or while reading."""
    raw = is_raw_image(request)
    limit = max_image_bytes if raw else math.ceil(max_image_bytes / 3) * 4 + JSON_OVERHEAD_BYTES
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge()
    # a megabyte of JSON and base64 takes milliseconds to decode: not on the event loop
    return bytes(body) if raw else await asyncio.to_thread(image_from_json, bytes(body))


def image_from_json(body: bytes) -> bytes:
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise BadRequest('Send JSON like {"image": "data:image/png;base64,…"} or a raw image/png body.') from None
    image = payload.get("image") if isinstance(payload, dict) else None
    if not isinstance(image, str) or not image:
        raise BadRequest('The JSON body needs an "image" field holding a base64 PNG or a data: URL.')
    if image.startswith("data:"):
        image = image.partition(",")[2]
    try:
        return base64.b64decode(image, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest('The "image" field is not valid base64.') from None


async def client_error(request: Request, exc: Exception) -> Response:
    """Every ClientError an HTTP route raises, as `{"error", "code"}` with its status."""
    assert isinstance(exc, ClientError)
    service: Service = request.app.state.service
    service.metrics.errors.labels(exc.code).inc()
    headers = {"Retry-After": RETRY_AFTER_S} if exc.http_status == 503 else None
    return JSONResponse({"error": str(exc), "code": exc.code}, status_code=exc.http_status, headers=headers)


async def healthz(request: Request) -> Response:
    service: Service = request.app.state.service
    stalled = service.queue.stalled
    healthy = service.queue.healthy and service.accepting and not stalled
    body = {
        "status": "ok" if healthy else "stalled" if stalled else "unavailable",
        "queue_depth": service.queue.depth,
        "oldest_in_flight_s": round(service.queue.oldest_age_s(), 3),
        "max_batch_size": service.queue.max_batch_size,
    }
    return JSONResponse(body, status_code=200 if healthy else 503)


async def metrics(request: Request) -> Response:
    service: Service = request.app.state.service
    return Response(service.metrics.render(), media_type=CONTENT_TYPE_LATEST)
