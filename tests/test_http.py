"""The HTTP surface against a real server: one-shot classify, health, metrics, the page."""

from __future__ import annotations

import base64
import socket
import time

import httpx
import numpy as np
import pytest

from server.config import Settings
from tests.inprocess import InProcessServer
from tests.support import ServerProcess, canvas_png, holdout, png_bytes


@pytest.fixture(scope="module")
def sample() -> tuple[bytes, int]:
    x, y = holdout()
    return canvas_png(x[3]), int(y[3])


def test_classify_accepts_a_data_url_like_the_seed(server: ServerProcess, sample) -> None:
    png, label = sample
    data_url = "data:image/png;base64," + base64.b64encode(png).decode()
    response = httpx.post(f"{server.base_url}/api/classify", json={"image": data_url}, timeout=30)
    assert response.status_code == 200
    body = response.json()
    assert body["predicted_digit"] == label
    assert body["empty"] is False
    assert sum(body["probabilities"]) == pytest.approx(1.0, abs=1e-3)
    assert base64.b64decode(body["preview"]).startswith(b"\x89PNG")


def test_classify_accepts_bare_base64_and_raw_png(server: ServerProcess, sample) -> None:
    png, label = sample
    bare = httpx.post(f"{server.base_url}/api/classify", json={"image": base64.b64encode(png).decode()}, timeout=30)
    raw = httpx.post(f"{server.base_url}/api/classify", content=png, headers={"content-type": "image/png"}, timeout=30)
    assert bare.json()["predicted_digit"] == label
    assert raw.json()["predicted_digit"] == label


def test_classify_a_blank_canvas_is_empty(server: ServerProcess) -> None:
    png = png_bytes(np.full((100, 100), 255, np.uint8))
    body = httpx.post(f"{server.base_url}/api/classify", content=png, headers={"content-type": "image/png"}).json()
    assert body == {
        "predicted_digit": None,
        "confidence": 0.0,
        "probabilities": [0.0] * 10,
        "empty": True,
        "preview": None,
    }


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {"content": b"not json", "headers": {"content-type": "application/json"}},
        {"json": {"picture": "x"}},
        {"json": {"image": "%%%not base64%%%"}},
        {"json": {"image": base64.b64encode(b"definitely not a png").decode()}},
        {"json": ["image"]},
    ],
    ids=["not-json", "no-image-field", "bad-base64", "not-an-image", "json-array"],
)
def test_classify_bad_input_is_a_clear_400(server: ServerProcess, request_kwargs: dict) -> None:
    response = httpx.post(f"{server.base_url}/api/classify", **request_kwargs)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] and "Traceback" not in body["error"] and "Error" not in body["error"]


def test_classify_too_large_is_413(server: ServerProcess) -> None:
    response = httpx.post(
        f"{server.base_url}/api/classify", content=bytes(3 * 1024 * 1024), headers={"content-type": "image/png"}
    )
    assert response.status_code == 413
    assert "error" in response.json()


LIMIT = Settings().max_message_bytes


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {"content": bytes(LIMIT + 1), "headers": {"content-type": "image/png"}},
        {"content": bytes(LIMIT * 3 // 2), "headers": {"content-type": "application/octet-stream"}},
        {"json": {"image": base64.b64encode(bytes(LIMIT + 1024)).decode()}},
        {"json": {"image": "data:image/png;base64," + base64.b64encode(bytes(LIMIT + 1024)).decode()}},
    ],
    ids=["raw-just-over", "raw-half-again", "base64", "data-url"],
)
def test_a_body_over_the_image_limit_is_413_in_every_encoding(server: ServerProcess, request_kwargs: dict) -> None:
    response = httpx.post(f"{server.base_url}/api/classify", timeout=30, **request_kwargs)
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"


def test_an_image_at_the_limit_is_read_in_every_encoding(server: ServerProcess) -> None:
    """The limits are the image's, not tighter: at exactly the limit, the bytes are looked at."""
    at_limit = bytes(LIMIT)
    raw = httpx.post(f"{server.base_url}/api/classify", content=at_limit, headers={"content-type": "image/png"})
    encoded = httpx.post(f"{server.base_url}/api/classify", json={"image": base64.b64encode(at_limit).decode()})
    assert (raw.status_code, raw.json()["code"]) == (400, "bad_image")
    assert (encoded.status_code, encoded.json()["code"]) == (400, "bad_image")


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(
            b"POST /api/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
            + f"Content-Length: {100 * LIMIT}\r\n\r\n".encode()
        )
        status_line = sock.makefile("rb").readline()  # not one byte of the body was sent
    assert status_line.split()[1] == b"413"


def test_a_request_still_sending_its_body_counts_against_max_pending_http() -> None:
    server = InProcessServer(Settings(max_pending_http=1)).start()
    try:
        with socket.create_connection(("127.0.0.1", server.settings.port), timeout=30) as slow:
            slow.sendall(
                b"POST /api/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
                b"Content-Length: 100000\r\n\r\n\x89PNG"  # and the rest, some day
            )
            deadline = time.monotonic() + 30
            while server.service.http_in_flight == 0:  # the body it is reading is held in memory
                assert time.monotonic() < deadline, "a request being read is not counted"
                time.sleep(0.01)
            response = httpx.post(
                f"{server.base_url}/api/classify",
                content=canvas_png(holdout()[0][0]),
                headers={"content-type": "image/png"},
                timeout=30,
            )
        assert (response.status_code, response.json()["code"]) == (503, "overloaded")
    finally:
        server.stop()


def test_deeply_nested_json_is_a_clear_400(server: ServerProcess) -> None:
    depth = 100_000
    body = b'{"image": ' + b"[" * depth + b"]" * depth + b"}"
    response = httpx.post(
        f"{server.base_url}/api/classify", content=body, headers={"content-type": "application/json"}, timeout=30
    )
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"
    assert "Traceback" not in server.log_text() and "RecursionError" not in server.log_text()


def test_classify_huge_declared_dimensions_is_refused(server: ServerProcess) -> None:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buffer, format="PNG")  # 400 megapixels, a few kB
    response = httpx.post(
        f"{server.base_url}/api/classify", content=buffer.getvalue(), headers={"content-type": "image/png"}
    )
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"


def test_healthz_reports_ready_and_queue_depth(server: ServerProcess) -> None:
    response = httpx.get(f"{server.base_url}/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    # nothing else talks to the server during this test, so nothing is queued
    assert response.json()["queue_depth"] == 0
    assert response.json()["max_batch_size"] == 32


def test_metrics_exposes_the_promised_names(server: ServerProcess, sample) -> None:
    httpx.post(f"{server.base_url}/api/classify", content=sample[0], headers={"content-type": "image/png"})
    text = httpx.get(f"{server.base_url}/metrics").text
    for name in (
        "digitstream_predictions_total",
        "digitstream_batch_size_bucket",
        "digitstream_queue_wait_seconds_bucket",
        "digitstream_inference_seconds_bucket",
        "digitstream_queue_depth",
        "digitstream_open_connections",
        "digitstream_coalesced_snapshots_total",
        "digitstream_errors_total",
        "digitstream_snapshot_latency_seconds_bucket",
    ):
        assert name in text, name


def test_the_page_is_served(server: ServerProcess) -> None:
    response = httpx.get(f"{server.base_url}/")
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    assert 'id="pad"' in response.text
