"""The HTTP surface against a real server: one-shot classify, health, metrics, the page."""

from __future__ import annotations

import base64

import httpx
import numpy as np
import pytest

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
    raw = httpx.post(
        f"{server.base_url}/api/classify", content=png, headers={"content-type": "image/png"}, timeout=30
    )
    assert bare.json()["predicted_digit"] == label
    assert raw.json()["predicted_digit"] == label


def test_classify_a_blank_canvas_is_empty(server: ServerProcess) -> None:
    png = png_bytes(np.full((100, 100), 255, np.uint8))
    body = httpx.post(f"{server.base_url}/api/classify", content=png, headers={"content-type": "image/png"}).json()
    assert body == {
        "predicted_digit": None, "confidence": 0.0, "probabilities": [0.0] * 10, "empty": True, "preview": None,
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
    assert response.json()["queue_depth"] >= 0


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
