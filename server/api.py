"""HTTP routes: the seed-compatible one-shot classify, health and metrics."""

from __future__ import annotations

import base64
import binascii
import json

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from server import protocol
from server.batching import BatchFailed, Overloaded, QueueClosed
from server.preprocess import BadImage
from server.service import Service

RETRY_AFTER_S = "1"


class BadRequest(ValueError):
    pass


class TooLarge(ValueError):
    pass


async def classify(request: Request) -> Response:
    """`{"image": "data:image/png;base64,…"}`, bare base64, or a raw `image/*` body."""
    service: Service = request.app.state.service
    try:
        data = decode_body(await read_body(request, service.settings.max_message_bytes), request)
    except TooLarge:
        return failure(service, 413, "too_large", "The image is larger than this server accepts.")
    except BadRequest as bad:
        return failure(service, 400, "bad_request", str(bad))
    except ClientDisconnect:
        return Response(status_code=400)
    if service.closing or service.http_in_flight >= service.settings.max_pending_http:
        return overloaded(service)
    service.http_in_flight += 1
    try:
        result = await service.classifier.classify(data)
    except BadImage as bad:
        return failure(service, 413 if bad.code == "too_large" else 400, bad.code, str(bad))
    except (Overloaded, QueueClosed):
        return overloaded(service)
    except BatchFailed as failed:
        code, message = protocol.describe_failure(failed)
        return failure(service, 500, code, message)
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


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit * 2:
        raise TooLarge()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        # base64 inflates by 4/3; allow for it and the JSON around it
        if len(body) > limit * 2:
            raise TooLarge()
    return bytes(body)


def decode_body(body: bytes, request: Request) -> bytes:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type.startswith("image/") or content_type == "application/octet-stream":
        return body
    try:
        payload = json.loads(body)
    except ValueError:
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


def failure(service: Service, status: int, code: str, message: str) -> JSONResponse:
    service.metrics.errors.labels(code).inc()
    return JSONResponse({"error": message, "code": code}, status_code=status)


def overloaded(service: Service) -> JSONResponse:
    response = failure(service, 503, "overloaded", "The server is busy; try again in a moment.")
    response.headers["Retry-After"] = RETRY_AFTER_S
    return response


async def healthz(request: Request) -> Response:
    service: Service = request.app.state.service
    healthy = service.queue.healthy and not service.closing
    body = {
        "status": "ok" if healthy else "unavailable",
        "queue_depth": service.queue.depth,
        "max_batch_size": service.queue.max_batch_size,
    }
    return JSONResponse(body, status_code=200 if healthy else 503)


async def metrics(request: Request) -> Response:
    service: Service = request.app.state.service
    return Response(service.metrics.render(), media_type=CONTENT_TYPE_LATEST)
