"""Fuzzing /ws with hypothesis against the real server: random bytes, truncated and bit-flipped
images, huge declared dimensions, hostile but valid images (tests/hostile_images.py: scan
bombs, chunk floods, APNG, interlaced, 16-bit), random JSON shapes, wrong frame types.

Every frame must get its answer (a prediction or an error, a pong, or nothing for `clear`),
the socket must stay open, and a good snapshot after each burst must still be classified.
Each frame's answer is awaited before the next frame on its connection, so latest-wins
never hides a frame; several connections share each burst to send fast.
`DIGITSTREAM_FUZZ_FRAMES` sets how many frames (10,000 by default); for a long run:
`DIGITSTREAM_FUZZ_FRAMES=100000 .venv/bin/python -m pytest tests/test_fuzz.py`.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import struct
import threading
import zlib
from collections.abc import Coroutine
from dataclasses import dataclass
from functools import cache
from typing import Any, Self

import numpy as np
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from server.config import Settings
from tests.hostile_images import families
from tests.support import ANSWER_TIMEOUT_S, ServerProcess, canvas_png, holdout

FRAMES = int(os.environ.get("DIGITSTREAM_FUZZ_FRAMES", "10000"))
CONNECTIONS = 6
BURST = (40, 60)
SNAPSHOT_ANSWERS = {"prediction", "bad_image", "too_large", "unsupported_format"}
JOIN_REFUSALS = {"room_not_found", "rate_limited", "bad_name"}


@dataclass(frozen=True)
class Frame:
    payload: bytes | str
    deep: bool = False  # nested past what json can parse or write back: bad_message or pong are both fine


# -- strategies ---------------------------------------------------------------------------------


def encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def seed_images() -> list[bytes]:
    """Valid snapshots in every mode and format a client might send, to mutate."""
    x, _ = holdout()
    digit = Image.open(io.BytesIO(canvas_png(x[1], size=64)))
    transparent = Image.merge("RGBA", [digit] * 3 + [digit])
    return [
        encoded(digit, "PNG"),
        encoded(digit.convert("RGB"), "JPEG"),
        encoded(digit.convert("RGB"), "WEBP"),
        encoded(transparent, "PNG"),
        encoded(digit.convert("LA"), "PNG"),
        encoded(digit.convert("P"), "PNG"),
        encoded(digit.convert("1"), "PNG"),
        encoded(digit.convert("I;16"), "PNG"),
        encoded(digit, "GIF"),
    ]


SEEDS = seed_images()


def seed(index: int) -> bytes:
    return SEEDS[index]


seeds = st.integers(0, len(SEEDS) - 1).map(seed)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@st.composite
def declared_dimensions(draw: st.DrawFn) -> bytes:
    """A well-formed PNG header declaring any size, with little or no pixel data behind it."""
    width, height = draw(st.integers(1, 2**31 - 1)), draw(st.integers(1, 2**31 - 1))
    depth, colour = draw(st.sampled_from([(8, 0), (8, 2), (8, 6), (1, 0), (16, 0), (8, 3)]))
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))
    pixels = png_chunk(b"IDAT", zlib.compress(bytes(draw(st.integers(0, 4096)))))
    return b"\x89PNG\r\n\x1a\n" + header + pixels + png_chunk(b"IEND", b"")


@st.composite
def bit_flipped(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(seeds))
    for position in draw(st.lists(st.integers(0, len(data) * 8 - 1), min_size=1, max_size=8)):
        data[position // 8] ^= 1 << position % 8
    return bytes(data)


@st.composite
def truncated(draw: st.DrawFn) -> bytes:
    data = draw(seeds)
    return data[: draw(st.integers(0, len(data) - 1))]


@st.composite
def random_images(draw: st.DrawFn) -> bytes:
    """Readable images of any size, mode and content: noise, blanks, bars, specks."""
    width, height = draw(st.integers(1, 160)), draw(st.integers(1, 160))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    pixels = {
        "noise": lambda: rng.integers(0, 256, (height, width, 4), np.uint8),
        "flat": lambda: np.full((height, width, 4), rng.integers(0, 256), np.uint8),
        "bar": lambda: np.pad(
            np.full((max(1, height // 3), width, 4), 255, np.uint8), ((height // 3, 0), (0, 0), (0, 0))
        ),
        "speck": lambda: np.pad(np.full((1, 1, 4), 255, np.uint8), ((0, height - 1), (0, width - 1), (0, 0))),
    }[draw(st.sampled_from(["noise", "flat", "bar", "speck"]))]()[:height, :width]
    image = Image.fromarray(pixels, "RGBA").convert(draw(st.sampled_from(["L", "RGB", "RGBA", "LA", "P", "1", "I;16"])))
    fmt = draw(st.sampled_from(["PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF"]))
    try:
        return encoded(image, fmt)
    except (OSError, ValueError, KeyError):  # a mode that format cannot hold
        return encoded(image, "PNG")


HOSTILE = {family.name: family for family in families()}


@cache
def hostile_image(name: str) -> bytes:
    """Built once, when first drawn: some take a second to compress."""
    return HOSTILE[name].build()


hostile_images = st.sampled_from(sorted(HOSTILE)).map(hostile_image)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=8,
)
control_like = st.fixed_dictionaries(
    {"type": st.sampled_from(["ping", "clear", "join", "leave", "pong", "prediction", "PING", ""]) | json_values},
    optional={"t": json_values, "seq": json_values, "room": json_values, "name": json_values},
)


@st.composite
def deeply_nested(draw: st.DrawFn) -> Frame:
    depth = draw(st.integers(500, 50_000))
    nested = "[" * depth + "]" * depth
    return Frame(draw(st.sampled_from([nested, f'{{"type": "ping", "t": {nested}}}'])), deep=True)


frames = st.one_of(
    st.binary(max_size=512).map(Frame),
    truncated().map(Frame),
    bit_flipped().map(Frame),
    declared_dimensions().map(Frame),
    random_images().map(Frame),
    hostile_images.map(Frame),
    seeds.map(Frame),
    st.text(max_size=200).map(Frame),
    json_values.map(json.dumps).map(Frame),
    control_like.map(json.dumps).map(Frame),
    control_like.map(lambda message: Frame(json.dumps(message).encode())),  # JSON sent as binary
    deeply_nested(),
)
bursts = st.lists(frames, min_size=BURST[0], max_size=BURST[1])


# -- the client -----------------------------------------------------------------------------------


def expected_reply(text: str) -> tuple[str, Any]:
    """What docs/protocol.md promises for a text frame: ("none"|"pong"|"join"|"bad_message"|"too_large", pong's t)."""
    if len(text.encode()) > Settings().max_text_bytes:
        return "too_large", None
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        return "bad_message", None
    kind = message.get("type") if isinstance(message, dict) else None
    if kind in ("clear", "leave"):
        return "none", None
    if kind == "join":
        return "join", None  # no class is open: refused with an error
    if kind == "ping":
        return "pong", message.get("t")
    return "bad_message", None


class FuzzClient:
    """A few connections on an event loop of their own, so hypothesis can drive them from its
    synchronous test function, one burst per example."""

    def __init__(self, ws_url: str) -> None:
        self.ws_url = ws_url
        self.frames_sent = 0
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._connections: list[websockets.ClientConnection] = []
        self._seqs: list[int] = []
        x, y = holdout()
        self._good, self._label = canvas_png(x[0]), int(y[0])

    def __enter__(self) -> Self:
        self._thread.start()
        self._connections = self._run(self._connect())
        self._seqs = [0] * len(self._connections)
        return self

    def __exit__(self, *exc: object) -> None:
        self._run(self._close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def burst(self, frames: list[Frame]) -> None:
        """Send `frames` round-robin over the connections, then a good snapshot on each."""
        shares = [frames[index :: len(self._connections)] for index in range(len(self._connections))]
        self._run(self._send_shares(shares))
        self.frames_sent += len(frames)

    def _run(self, coroutine: Coroutine) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    async def _close(self) -> None:
        await asyncio.gather(*(ws.close() for ws in self._connections))

    async def _connect(self) -> list[websockets.ClientConnection]:
        return list(
            await asyncio.gather(*(websockets.connect(self.ws_url, ping_interval=None) for _ in range(CONNECTIONS)))
        )

    async def _send_shares(self, shares: list[list[Frame]]) -> None:
        await asyncio.gather(*(self._send_all(index, share) for index, share in enumerate(shares)))

    async def _send_all(self, index: int, frames: list[Frame]) -> None:
        ws = self._connections[index]
        for frame in frames:
            await self._exchange(index, ws, frame)
        answer = await self._exchange(index, ws, Frame(self._good))
        assert answer is not None and answer["type"] == "prediction" and answer["digit"] == self._label, answer

    async def _exchange(self, index: int, ws: websockets.ClientConnection, frame: Frame) -> dict | None:
        await ws.send(frame.payload)
        if isinstance(frame.payload, bytes):
            self._seqs[index] += 1
            answer = await self._answer(ws)
            assert answer.get("seq") == self._seqs[index], answer
            assert answer["type"] == "prediction" or answer.get("code") in SNAPSHOT_ANSWERS, answer
            return answer
        expected, t = expected_reply(frame.payload)
        if expected == "none":
            return None
        answer = await self._answer(ws)
        if answer["type"] == "pong" and expected == "pong":
            assert answer["t"] == t, answer
        elif expected == "join":
            assert answer.get("code") in JOIN_REFUSALS, answer
        elif not (frame.deep and answer.get("code") == "bad_message"):
            assert answer.get("code") == expected and "seq" not in answer, (frame.payload[:200], answer)
        return answer

    async def _answer(self, ws: websockets.ClientConnection) -> dict:
        return json.loads(await asyncio.wait_for(ws.recv(), ANSWER_TIMEOUT_S))


def fuzz(server: ServerProcess, frame_count: int) -> None:
    log_start = len(server.log_text())
    with FuzzClient(server.ws_url) as client:

        @settings(
            max_examples=-(-frame_count // BURST[0]),
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(bursts)
        def burst_is_answered(burst: list[Frame]) -> None:
            if client.frames_sent < frame_count:
                client.burst(burst)

        while client.frames_sent < frame_count:  # hypothesis may stop a run early
            burst_is_answered()
    assert "Traceback" not in server.log_text()[log_start:]


def test_every_fuzzed_frame_is_answered_and_the_socket_stays_open(server: ServerProcess) -> None:
    fuzz(server, FRAMES)
