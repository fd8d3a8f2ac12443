"""What the page sends, in real Chromium: grey frames where CompressionStream exists, PNGs
elsewhere, always in the order they were rendered and always ending on the pen-up snapshot.

The frames are read as Chromium put them on the wire (Playwright's `framesent`), and decoded
with the server's own decoders.
"""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, Request, WebSocket, expect

from server import greyframe
from server.preprocess import MAX_PIXELS, preprocess_bytes, preview_png
from tests.browser_support import (
    DESKTOP,
    DIGIT_STROKES,
    assert_no_page_errors,
    draw,
    new_page,
    open_page,
    wait_connected,
)
from tests.support import ServerProcess

pytestmark = pytest.mark.browser

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def recording_page(browser: Browser, server: ServerProcess, init_script: str | None = None) -> tuple[Page, list]:
    """A connected page, and the list its binary WebSocket frames are appended to as sent."""
    context = browser.new_context(viewport=DESKTOP)
    if init_script is not None:
        context.add_init_script(init_script)
    frames: list[bytes] = []

    def watch(websocket: WebSocket) -> None:
        websocket.on("framesent", lambda payload: frames.append(payload) if isinstance(payload, bytes) else None)

    context.on("page", lambda page: page.on("websocket", watch))
    page = open_page(context, server.base_url + "/")
    wait_connected(page)
    return page, frames


def assert_the_last_frame_was_answered_last(page: Page, frames: list[bytes]) -> None:
    """Every frame the page sent is one the server numbered, and the answer on screen is the
    answer to the last one: the pen-up snapshot, sent after every live one."""
    assert len(frames) == page.evaluate("window.digitstream.sentSeq") > 1
    shown = page.evaluate("window.digitstream.stats.lastPrediction")
    assert shown["seq"] == len(frames)
    preview = preprocess_bytes(frames[-1]).preview
    assert preview is not None
    assert shown["preview"] == base64.b64encode(preview_png(preview)).decode()


def test_the_page_streams_grey_frames_and_settles_on_the_drawn_digit(browser: Browser, server: ServerProcess) -> None:
    page, frames = recording_page(browser, server)
    draw(page, *DIGIT_STROKES[7])
    expect(page.locator("#prediction")).to_have_attribute("data-digit", "7")
    assert all(frame.startswith(greyframe.MAGIC) for frame in frames)
    pixels = [greyframe.decode(frame, MAX_PIXELS) for frame in frames]
    assert {image.shape for image in pixels} == {(128, 128)}
    assert pixels[-1].max() == 255 and pixels[-1].min() == 0  # white ink on black
    assert_the_last_frame_was_answered_last(page, frames)
    assert_no_page_errors(page)
    page.context.close()


def test_a_page_without_compression_streams_sends_pngs(browser: Browser, server: ServerProcess) -> None:
    page, frames = recording_page(browser, server, "delete window.CompressionStream")
    assert page.evaluate("typeof CompressionStream") == "undefined"
    draw(page, *DIGIT_STROKES[4])
    expect(page.locator("#prediction")).to_have_attribute("data-digit", "4")
    assert all(frame.startswith(PNG_SIGNATURE) for frame in frames)
    with Image.open(io.BytesIO(frames[-1])) as image:
        assert image.size == (128, 128)
    assert_the_last_frame_was_answered_last(page, frames)
    assert_no_page_errors(page)
    page.context.close()


def test_over_http_the_page_posts_grey_frames(browser: Browser, server: ServerProcess) -> None:
    context = browser.new_context(viewport=DESKTOP)
    context.add_init_script("delete window.WebSocket")
    page = context.new_page()
    posted: list[tuple[str, bytes]] = []

    def keep_posts(request: Request) -> None:
        if request.method == "POST":
            posted.append((request.headers["content-type"], request.post_data_buffer or b""))

    page.on("request", keep_posts)
    page.goto(server.base_url + "/")
    expect(page.locator("#status")).to_have_attribute("data-state", "fallback")
    draw(page, *DIGIT_STROKES[7])
    expect(page.locator("#prediction")).to_have_attribute("data-digit", "7")
    assert posted and all(kind == "application/octet-stream" for kind, _ in posted)
    assert greyframe.decode(posted[-1][1], MAX_PIXELS).shape == (128, 128)
    context.close()


# ---- The send queue, as a unit: snapshots whose encoding the test finishes by hand ---------

# Pushes every snapshot of `script` ([name, options] pairs) at once, then finishes each encoding
# (a failure for the names in `failing`) in the order the queue started them, and reports.
RUN_QUEUE = """
async ([script, failing]) => {
  const { SnapshotQueue } = await import('/js/snapshot-queue.js');
  const sent = [];
  const queue = new SnapshotQueue((frame, options) => { sent.push([frame, Boolean(options.barrier)]); return true; });
  const finish = {};  // name -> ends that snapshot's encoding; set when the queue starts it
  const results = {};
  for (const [name, options] of script) {
    const snapshot = { encode: () => new Promise((resolve, reject) => {
      finish[name] = () => (failing.includes(name) ? reject(new Error('cannot encode')) : resolve(name));
    }) };
    results[name] = queue.push(snapshot, options);
  }
  const busyBefore = queue.busy;
  const started = [];
  while (queue.busy) {
    const name = Object.keys(finish).find((n) => !started.includes(n));
    started.push(name);
    finish[name]();
    await results[name];
  }
  const resolved = {};
  for (const [name, result] of Object.entries(results)) resolved[name] = await result;
  return { busyBefore, started, sent, resolved };
}
"""


def run_queue(page: Page, script: list[tuple[str, dict]], failing: frozenset[str] = frozenset()) -> dict:
    return page.evaluate(RUN_QUEUE, [script, sorted(failing)])


@pytest.fixture(scope="module")
def page(browser: Browser, server: ServerProcess):
    page = new_page(browser, server.base_url + "/", DESKTOP)
    yield page
    assert_no_page_errors(page)
    page.context.close()


def test_the_queue_sends_in_order_and_drops_only_live_snapshots_waiting_behind_an_encode(page: Page) -> None:
    live: dict[str, bool] = {}
    final = {"final": True}
    outcome = run_queue(
        page,
        [
            ("a", live),  # encoding at once
            ("b", {"barrier": True}),  # waits, then is replaced by c
            ("c", live),  # replaced by F1
            ("F1", final),
            ("d", live),  # replaced by F2
            ("F2", final),
            ("e", live),
        ],
    )
    assert outcome["busyBefore"] is True
    assert outcome["started"] == ["a", "F1", "F2", "e"]
    # b's barrier survives it: answers older than b stay stale once F1 is sent.
    assert outcome["sent"] == [["a", False], ["F1", True], ["F2", False], ["e", False]]
    assert outcome["resolved"] == {"a": True, "b": False, "c": False, "F1": True, "d": False, "F2": True, "e": True}


def test_a_snapshot_that_cannot_be_encoded_does_not_stop_the_queue(page: Page) -> None:
    outcome = run_queue(page, [("a", {}), ("F1", {"final": True}), ("F2", {"final": True})], failing=frozenset({"F1"}))
    assert outcome["sent"] == [["a", False], ["F2", False]]
    assert outcome["resolved"] == {"a": True, "F1": False, "F2": True}
