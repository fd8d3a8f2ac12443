"""Grey frames (server/greyframe.py): the page's snapshot format beside PNG."""

from __future__ import annotations

import io
import json
import struct
import zlib

import numpy as np
import pytest
import websockets
from PIL import Image
from zlib_ng import zlib_ng

from server import drawnset, greyframe
from server.preprocess import MAX_PIXELS, BadImage, preprocess_bytes
from tests.support import ServerProcess, receive


@pytest.fixture(scope="module")
def page_frames() -> list[tuple[bytes, int]]:
    """Grey frames the page sent while Chromium drew, and the digit drawn: one of each variant."""
    frames, variants = drawnset.load_frames()
    firsts = {v: frame for frame, v in reversed(list(zip(frames, variants, strict=True)))}
    return [(frame, v.digit) for v, frame in firsts.items()]


def as_png(frame: bytes) -> bytes:
    """The page's grey frame as the PNG a canvas writes of the same pixels: RGBA, opaque."""
    png = io.BytesIO()
    Image.fromarray(greyframe.decode(frame, MAX_PIXELS)).convert("RGBA").save(png, "PNG")
    return png.getvalue()


def test_a_grey_frame_decodes_to_its_pixels() -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (37, 91), dtype=np.uint8)
    np.testing.assert_array_equal(greyframe.decode(greyframe.encode(pixels), MAX_PIXELS), pixels)


def test_a_grey_frame_prepares_exactly_as_the_same_png(page_frames) -> None:
    for grey, _ in page_frames:
        from_png, from_frame = preprocess_bytes(as_png(grey)), preprocess_bytes(grey)
        assert from_png.preview is not None and from_frame.preview is not None
        np.testing.assert_array_equal(from_frame.preview, from_png.preview)


def frame(width: int, height: int, payload: bytes) -> bytes:
    return struct.pack(">4sHH", b"DSG1", width, height) + payload


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"DSG1\x00", "bad_image"),
        (frame(0, 10, zlib.compress(b"")), "bad_image"),
        (frame(10, 10, b"not zlib at all"), "bad_image"),
        (frame(10, 10, zlib.compress(bytes(99))), "bad_image"),  # a byte short
        (frame(10, 10, zlib.compress(bytes(101))), "bad_image"),  # a byte more
        (frame(10, 10, zlib.compress(bytes(100))[:-3]), "bad_image"),  # truncated stream
        (frame(1025, 1024, b""), "too_large"),  # refused from the header: nothing inflated
    ],
    ids=["short header", "no pixels", "not zlib", "too few pixels", "too many pixels", "truncated", "too large"],
)
def test_a_bad_grey_frame_is_refused_with_a_clear_code(data: bytes, code: str) -> None:
    with pytest.raises(BadImage) as refused:
        preprocess_bytes(data)
    assert refused.value.code == code


def test_a_zlib_bomb_is_refused_after_inflating_one_byte_more_than_declared() -> None:
    bomb = frame(8, 8, zlib.compress(bytes(200 * 1024 * 1024), 9))  # 200 MiB of zeros in ~200 KB
    inflated = []
    original = zlib_ng.decompressobj

    class Counting:
        def __init__(self) -> None:
            self.inner = original()

        def decompress(self, data: bytes, max_length: int = 0) -> bytes:
            piece = self.inner.decompress(data, max_length)
            inflated.append(len(piece))
            return piece

        @property
        def eof(self) -> bool:
            return self.inner.eof

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(greyframe.zlib_ng, "decompressobj", Counting)
        with pytest.raises(BadImage):
            preprocess_bytes(bomb)
    assert sum(inflated) == 8 * 8 + 1


@pytest.mark.asyncio(loop_scope="session")
async def test_the_server_answers_a_grey_frame_as_it_answers_the_png(server: ServerProcess, page_frames) -> None:
    async with websockets.connect(server.ws_url) as ws:
        for seq, (grey, digit) in enumerate(page_frames[:6], start=1):
            await ws.send(as_png(grey))
            from_png = await receive(ws)
            await ws.send(grey)
            from_frame = await receive(ws)
            assert (from_png["seq"], from_frame["seq"]) == (2 * seq - 1, 2 * seq)
            assert from_frame["digit"] == from_png["digit"] == digit
            assert from_frame["probabilities"] == pytest.approx(from_png["probabilities"], abs=1e-5)
            assert from_frame["preview"] == from_png["preview"]


@pytest.mark.asyncio(loop_scope="session")
async def test_the_server_answers_a_bad_grey_frame_with_an_error_and_stays_open(server: ServerProcess) -> None:
    async with websockets.connect(server.ws_url) as ws:
        await ws.send(frame(10, 10, b"not zlib at all"))
        message = await receive(ws)
        assert message["type"] == "error" and message["code"] == "bad_image" and message["seq"] == 1
        await ws.send(json.dumps({"type": "ping", "t": 1}))
        assert (await receive(ws))["type"] == "pong"
