"""The /ws contract against a real server and the real model (docs/protocol.md)."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
import websockets

from tests.support import ServerProcess, canvas_png, close_code_after, holdout, png_bytes, receive

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def prediction_for(ws: websockets.ClientConnection, seq: int) -> dict:
    """Read until the answer (prediction or error) for snapshot `seq` arrives."""
    while True:
        message = await receive(ws)
        if message.get("seq") == seq:
            return message


@pytest.fixture(scope="module")
def digits() -> list[tuple[bytes, int]]:
    x, y = holdout()
    return [(canvas_png(x[i]), int(y[i])) for i in range(20)]


async def test_a_snapshot_is_answered_with_the_right_digit(server: ServerProcess, digits) -> None:
    async with websockets.connect(server.ws_url) as ws:
        correct = 0
        for seq, (png, label) in enumerate(digits, start=1):
            await ws.send(png)
            message = await prediction_for(ws, seq)
            assert message["type"] == "prediction"
            assert message["empty"] is False
            assert len(message["probabilities"]) == 10
            assert sum(message["probabilities"]) == pytest.approx(1.0, abs=1e-3)
            assert message["digit"] == int(np.argmax(message["probabilities"]))
            assert message["confidence"] == max(message["probabilities"])
            assert set(message["timing"]) == {"queue_ms", "inference_ms", "total_ms"}
            assert message["preview"]
            correct += message["digit"] == label
        assert correct >= 18


@pytest.mark.parametrize("colours", ["white-on-black", "black-on-white"])
async def test_polarity_does_not_matter(server: ServerProcess, digits, colours: str) -> None:
    x, y = holdout()
    png = canvas_png(x[0], invert=colours == "black-on-white")
    async with websockets.connect(server.ws_url) as ws:
        await ws.send(png)
        assert (await prediction_for(ws, 1))["digit"] == int(y[0])


async def test_a_blank_canvas_is_empty(server: ServerProcess) -> None:
    async with websockets.connect(server.ws_url) as ws:
        await ws.send(png_bytes(np.zeros((200, 200), np.uint8)))
        message = await prediction_for(ws, 1)
        assert message["type"] == "prediction"
        assert message["empty"] is True
        assert message["digit"] is None
        assert message["probabilities"] == [0] * 10


async def test_a_flood_is_coalesced_and_the_newest_is_always_answered(server: ServerProcess, digits) -> None:
    async with websockets.connect(server.ws_url) as ws:
        for index in range(50):
            await ws.send(digits[index % len(digits)][0])
        seqs = []
        while not seqs or seqs[-1] != 50:
            message = await receive(ws)
            assert message["type"] == "prediction"
            seqs.append(message["seq"])
        assert seqs == sorted(set(seqs)), "predictions must arrive in strictly increasing seq"
        assert len(seqs) < 50, "a flood must be coalesced, not answered frame by frame"
        assert message["digit"] == digits[49 % len(digits)][1]


async def test_clear_drops_the_waiting_snapshot(server: ServerProcess) -> None:
    x, _ = holdout()
    small = png_bytes(x[0])  # tiny frames, so the burst and the clear arrive together
    async with websockets.connect(server.ws_url) as ws:
        for _ in range(10):
            await ws.send(small)
        await ws.send(json.dumps({"type": "clear"}))
        await asyncio.sleep(1.0)  # let the snapshot being classified at the clear be answered
        await ws.send(json.dumps({"type": "ping", "t": "after-clear"}))
        answered = []
        while (message := await receive(ws))["type"] != "pong":
            answered.append(message["seq"])
        assert 10 not in answered, "the snapshot waiting at the clear must be dropped"
        await ws.send(small)
        assert (await prediction_for(ws, 11))["type"] == "prediction"


async def test_ping_is_answered_with_pong(server: ServerProcess) -> None:
    async with websockets.connect(server.ws_url) as ws:
        await ws.send(json.dumps({"type": "ping", "t": 1234.5}))
        assert await receive(ws) == {"type": "pong", "t": 1234.5}


BAD_FRAMES = [
    ("garbage bytes", b"\x00\x01not an image at all", "bad_image"),
    ("truncated png", None, "bad_image"),
    ("non-JSON text", "hello", "bad_message"),
    ("unknown type", json.dumps({"type": "draw"}), "bad_message"),
    ("JSON that is not an object", json.dumps([1, 2, 3]), "bad_message"),
]


@pytest.mark.parametrize("name,frame,code", BAD_FRAMES, ids=[case[0] for case in BAD_FRAMES])
async def test_a_bad_frame_gets_an_error_and_the_connection_keeps_working(
    server: ServerProcess, digits, name: str, frame, code: str
) -> None:
    if frame is None:
        frame = digits[0][0][: len(digits[0][0]) // 2]
    async with websockets.connect(server.ws_url) as ws:
        await ws.send(frame)
        error = await receive(ws)
        assert error["type"] == "error"
        assert error["code"] == code
        assert "Traceback" not in error["message"] and "Error" not in error["message"]
        if isinstance(frame, bytes):
            assert error["seq"] == 1
        good_seq = 2 if isinstance(frame, bytes) else 1
        await ws.send(digits[1][0])
        message = await prediction_for(ws, good_seq)
        assert message["type"] == "prediction"
        assert message["digit"] == digits[1][1]


async def test_an_oversized_frame_closes_with_1009(server: ServerProcess) -> None:
    async with websockets.connect(server.ws_url, max_size=None) as ws:
        assert await close_code_after(ws, b"\x89PNG" + bytes(2 * 1024 * 1024)) == 1009


async def test_twenty_concurrent_connections_each_get_their_own_answers(server: ServerProcess, digits) -> None:
    async def drawer(index: int) -> tuple[int, int]:
        png, label = digits[index % len(digits)]
        async with websockets.connect(server.ws_url) as ws:
            await ws.send(png)
            return (await prediction_for(ws, 1))["digit"], label

    outcomes = await asyncio.gather(*(drawer(i) for i in range(20)))
    assert sum(digit == label for digit, label in outcomes) >= 18


async def test_a_foreign_origin_is_refused(server: ServerProcess) -> None:
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(server.ws_url, origin="http://evil.example"):
            pass
    async with websockets.connect(server.ws_url, origin=server.base_url) as ws:
        await ws.send(json.dumps({"type": "ping", "t": 0}))
        assert (await receive(ws))["type"] == "pong"
