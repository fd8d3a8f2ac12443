"""Hostile but valid images (tests/hostile_images.py): each gets its clear error, or the digit
when the image is valid and its default image is the digit, from the preprocessing alone and
from the real server over /ws and POST /api/classify alike. bench/hostile.py measures what
each costs in CPU; these tests assert only the outcomes."""

from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np
import pytest
import websockets

from server.preprocess import BadImage, preprocess_bytes
from tests.hostile_images import Family, digit, families, grey_png
from tests.support import ServerProcess

FAMILIES = families()
ANSWER_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def plain_preview() -> np.ndarray:
    """What the digit becomes as a plain PNG: the answer every valid family must give."""
    return preprocess_bytes(grey_png(digit()[0])).preview


@pytest.mark.parametrize("family", FAMILIES, ids=[family.name for family in FAMILIES])
def test_preprocessing_refuses_or_reads_the_default_image(family: Family, plain_preview: np.ndarray) -> None:
    data = family.build()
    if family.code is None:
        np.testing.assert_array_equal(preprocess_bytes(data).preview, plain_preview)
        return
    with pytest.raises(BadImage) as error:
        preprocess_bytes(data)
    assert error.value.code == family.code


async def test_every_family_gets_its_answer_over_the_socket(server: ServerProcess) -> None:
    label = digit()[1]
    async with websockets.connect(server.ws_url, max_size=None) as ws:
        for seq, family in enumerate(FAMILIES, start=1):
            await ws.send(family.build())
            answer = json.loads(await _recv(ws))
            assert answer["seq"] == seq, (family.name, answer)
            if family.code is None:
                assert answer["type"] == "prediction" and answer["digit"] == label, (family.name, answer)
            else:
                assert answer["type"] == "error" and answer["code"] == family.code, (family.name, answer)


@pytest.mark.parametrize("family", FAMILIES, ids=[family.name for family in FAMILIES])
def test_every_family_gets_its_answer_over_http(server: ServerProcess, family: Family) -> None:
    response = httpx.post(
        f"{server.base_url}/api/classify",
        content=family.build(),
        headers={"content-type": "image/png"},
        timeout=ANSWER_TIMEOUT_S,
    )
    body = response.json()
    if family.code is None:
        assert response.status_code == 200 and body["predicted_digit"] == digit()[1], body
    else:
        assert 400 <= response.status_code < 500 and body["code"] == family.code, body


async def _recv(ws: websockets.ClientConnection) -> str:
    return await asyncio.wait_for(ws.recv(), ANSWER_TIMEOUT_S)
