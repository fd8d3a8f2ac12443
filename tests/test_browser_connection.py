"""The drawing page in real Chromium when its connection misbehaves: answers out of order,
sockets the network dropped, servers that refuse after opening, no WebSockets at all, and a
server restart.

A stand-in WebSocket (an init script) lets a test control what one socket does; everything
else, HTTP and the restart included, is the real server.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from tests.browser_support import (
    DESKTOP,
    WAIT_MS,
    assert_no_page_errors,
    connected_page,
    draw_digit,
    meter_values,
    open_page,
    stats,
    wait_settled,
)
from tests.support import ServerProcess

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module", autouse=True)
def restartable_server(
    server: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Future[ServerProcess]]:
    """A server of its own for the restart test (stopping the shared one would break other
    tests), started in the background once the shared one is up (not competing with its
    startup), so its own startup overlaps the other tests here instead of adding to them."""
    own = ServerProcess(log_path=tmp_path_factory.mktemp("restartable") / "server.log")
    with ThreadPoolExecutor(max_workers=1) as pool:
        starting = pool.submit(own.start)
        yield starting
        starting.exception()  # wait for the start to finish before stopping
        own.stop()


def scripted_context(browser: Browser, script: str) -> BrowserContext:
    """A desktop browser whose pages run `script` before their own."""
    context = browser.new_context(viewport=DESKTOP)
    context.add_init_script(script)
    return context


# A stand-in for the server's socket, so a test can answer out of order on purpose.
FAKE_WEBSOCKET = """
window.fakeSockets = [];
window.WebSocket = class FakeWebSocket extends EventTarget {
  constructor(url) {
    super();
    Object.assign(this, { url, readyState: 0, bufferedAmount: 0, binaryType: 'blob', sent: [] });
    fakeSockets.push(this);
    setTimeout(() => { this.readyState = 1; this.dispatchEvent(new Event('open')); });
  }
  send(data) { this.sent.push(typeof data === 'string' ? JSON.parse(data) : 'snapshot'); }
  close() { this.readyState = 3; this.dispatchEvent(new Event('close')); }
  answer(message) { this.dispatchEvent(new MessageEvent('message', { data: JSON.stringify(message) })); }
};
"""


# The close handshake never completes, as on a network path that died: no 'close' event comes.
HANGING_CLOSE = FAKE_WEBSOCKET + "WebSocket.prototype.close = function () { this.readyState = 2; };"
# Each socket opens, then the server closes it, as a full or stopping server does.
CLOSED_AFTER_OPENING = (
    FAKE_WEBSOCKET
    + """
const Opening = window.WebSocket;
window.WebSocket = class extends Opening {
  constructor(url) { super(url); this.addEventListener('open', () => setTimeout(() => this.close())); }
};
"""
)


# Sockets that hang in the handshake (as behind a proxy that blocks upgrades) until the test
# calls failSockets(); from then on every socket fails before it opens.
UPGRADES_BLOCKED = """
window.fakeSockets = [];
window.WebSocket = class BlockedWebSocket extends EventTarget {
  constructor(url) {
    super();
    Object.assign(this, { url, readyState: 0, bufferedAmount: 0, binaryType: 'blob' });
    fakeSockets.push(this);
    if (window.socketsFail) setTimeout(() => this.close());
  }
  send() { throw new DOMException('not open', 'InvalidStateError'); }
  close() {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.dispatchEvent(new Event('close'));
  }
};
window.failSockets = () => { window.socketsFail = true; for (const socket of fakeSockets) socket.close(); };
"""


def wait_sent(page: Page) -> None:
    """Until every snapshot the page rendered is encoded and sent."""
    page.wait_for_function("!window.digitstream.sending", timeout=WAIT_MS)


def fake_prediction(seq: int, digit: int | None) -> dict:
    probabilities = [0.0] * 10
    if digit is not None:
        probabilities[digit] = 1.0
    return {
        "type": "prediction",
        "seq": seq,
        "empty": digit is None,
        "digit": digit,
        "confidence": 0.0 if digit is None else 1.0,
        "probabilities": probabilities,
        "preview": None,
        "timing": {"queue_ms": 0, "inference_ms": 0, "total_ms": 0},
    }


def test_late_answers_never_replace_newer_ones(browser: Browser, server: ServerProcess) -> None:
    context = scripted_context(browser, FAKE_WEBSOCKET)
    page = connected_page(context, server.base_url)

    def answer(seq, digit):
        return page.evaluate("message => fakeSockets[0].answer(message)", fake_prediction(seq, digit))

    prediction = page.locator("#prediction")

    draw_digit(page, 7)
    wait_sent(page)
    sent = page.evaluate("window.digitstream.sentSeq")
    assert sent == page.evaluate("fakeSockets[0].sent.filter(m => m === 'snapshot').length") > 2
    answer(sent - 1, 7)
    expect(prediction).to_have_attribute("data-digit", "7")
    answer(sent - 2, 1)  # older than the one shown: ignored
    expect(prediction).to_have_attribute("data-digit", "7")

    page.keyboard.press("Escape")  # clear: a control message and a blank snapshot
    wait_sent(page)
    assert {"type": "clear"} in page.evaluate("fakeSockets[0].sent")
    assert page.evaluate("window.digitstream.sentSeq") == sent + 1
    answer(sent, 4)  # newer, but about the cleared drawing: ignored
    expect(prediction).to_have_attribute("data-digit", "")
    assert page.evaluate("window.digitstream.lastSeq") == sent - 1
    answer(sent + 1, None)
    expect(prediction).to_have_attribute("data-digit", "")
    assert page.evaluate("window.digitstream.settled")
    assert_no_page_errors(page)
    context.close()


@pytest.mark.parametrize("code", ["overloaded", "model_timeout"])
def test_the_newest_drawing_left_unanswered_by_a_busy_server_is_sent_again(
    browser: Browser, server: ServerProcess, code: str
) -> None:
    context = scripted_context(browser, FAKE_WEBSOCKET)
    page = connected_page(context, server.base_url)
    snapshots_sent = "fakeSockets[0].sent.filter(m => m === 'snapshot').length"
    draw_digit(page, 7)
    wait_sent(page)
    sent = page.evaluate("window.digitstream.sentSeq")
    error = {"type": "error", "code": code, "message": "busy", "seq": sent}
    page.evaluate("message => fakeSockets[0].answer(message)", error)
    page.wait_for_function(f"{snapshots_sent} === {sent + 1}", timeout=WAIT_MS)
    page.evaluate("message => fakeSockets[0].answer(message)", fake_prediction(sent + 1, 7))
    expect(page.locator("#prediction")).to_have_attribute("data-digit", "7")
    page.wait_for_function("window.digitstream.settled", timeout=WAIT_MS)
    assert_no_page_errors(page)
    context.close()


def test_a_socket_the_network_dropped_is_replaced_without_waiting_for_its_close(
    browser: Browser, server: ServerProcess
) -> None:
    context = scripted_context(browser, HANGING_CLOSE)
    page = connected_page(context, server.base_url)
    page.evaluate("dispatchEvent(new Event('offline'))")
    page.wait_for_function("window.digitstream.stats.connections === 2", timeout=WAIT_MS)
    assert page.evaluate("fakeSockets[0].readyState") == 2  # still closing: its close never came
    assert_no_page_errors(page)
    context.close()


def test_an_unanswered_ping_gives_the_socket_up_without_waiting_for_its_close(
    browser: Browser, server: ServerProcess
) -> None:
    context = scripted_context(browser, HANGING_CLOSE)  # the fake never answers a ping either
    context.clock.install()
    page = connected_page(context, server.base_url)
    page.clock.fast_forward("00:10")  # past a ping and the pong's deadline
    page.clock.fast_forward("00:10")
    page.wait_for_function("window.digitstream.stats.connections === 2", timeout=WAIT_MS)
    assert_no_page_errors(page)
    context.close()


def test_a_server_that_keeps_closing_after_opening_is_retried_ever_more_slowly(
    browser: Browser, server: ServerProcess
) -> None:
    context = scripted_context(browser, CLOSED_AFTER_OPENING)
    page = open_page(context, server.base_url + "/")
    # "offline" is what the page says once its retries have backed off several times.
    expect(page.locator("#status")).to_have_attribute("data-state", "offline", timeout=WAIT_MS)
    assert_no_page_errors(page)
    context.close()


def test_without_websockets_the_page_classifies_over_http(browser: Browser, server: ServerProcess) -> None:
    context = scripted_context(browser, "delete window.WebSocket")
    page = context.new_page()
    page.goto(server.base_url + "/")
    expect(page.locator("#status")).to_have_attribute("data-state", "fallback")
    draw_digit(page, 7)
    wait_settled(page)
    expect(page.locator("#prediction")).to_have_attribute("data-digit", "7")
    expect(page.locator("#status")).to_have_attribute("data-state", "fallback")
    assert sum(meter_values(page)) == pytest.approx(100, abs=1.5)
    expect(page.locator("#preview")).to_be_visible()
    context.close()


def test_over_http_a_busy_servers_503_is_retried(browser: Browser, server: ServerProcess) -> None:
    context = scripted_context(browser, "delete window.WebSocket")
    refused: list[str] = []

    def busy_once(route: Route) -> None:
        if refused:
            route.continue_()
            return
        refused.append(route.request.url)
        body = {"error": "The server is busy; send the snapshot again in a moment.", "code": "overloaded"}
        route.fulfill(status=503, content_type="application/json", body=json.dumps(body))

    context.route("**/api/classify", busy_once)
    page = open_page(context, server.base_url + "/")
    draw_digit(page, 7)
    wait_settled(page)
    expect(page.locator("#prediction")).to_have_attribute("data-digit", "7")
    assert len(refused) == 1
    assert_no_page_errors(page)
    context.close()


def test_a_drawing_finished_before_http_is_allowed_is_classified_over_http(
    browser: Browser, server: ServerProcess
) -> None:
    context = scripted_context(browser, UPGRADES_BLOCKED)
    page = open_page(context, server.base_url + "/")
    draw_digit(page, 7)  # while the first socket hangs: nothing can carry the drawing yet
    assert page.evaluate("window.digitstream.sentSeq") == 0
    page.evaluate("failSockets()")
    wait_settled(page)
    expect(page.locator("#prediction")).to_have_attribute("data-digit", "7")
    assert_no_page_errors(page)
    context.close()


def test_page_reconnects_and_resends_after_a_server_restart(
    browser: Browser, restartable_server: Future[ServerProcess]
) -> None:
    server = restartable_server.result(timeout=180)
    context = browser.new_context(viewport=DESKTOP)
    try:
        page = connected_page(context, server.base_url)
        draw_digit(page, 7)
        wait_settled(page)
        expect(page.locator("#prediction")).to_have_attribute("data-digit", "7")

        server.stop()
        expect(page.locator("#status")).to_have_attribute(
            "data-state", re.compile("reconnecting|offline"), timeout=WAIT_MS
        )
        # The old answer stays, dimmed, and the page says plainly why.
        expect(page.locator("#connection-notice")).to_contain_text("server cannot be reached", timeout=WAIT_MS)
        expect(page.locator("#connection-notice")).to_be_visible()
        assert page.eval_on_selector(".results", "el => getComputedStyle(el).filter") == "grayscale(1)"
        assert float(page.eval_on_selector(".bar.is-top .bar-fill", "el => getComputedStyle(el).opacity")) < 0.5
        expect(page.locator("#prediction")).to_have_attribute("data-digit", "7")
        # Mark the shown answer, so only a fresh answer from the new server can replace it.
        page.evaluate("document.querySelector('#prediction').dataset.digit = 'stale'")
        server.start()  # a fresh process on the same port

        expect(page.locator("#status")).to_have_attribute("data-state", "connected", timeout=WAIT_MS)
        wait_settled(page)
        expect(page.locator("#prediction")).to_have_attribute("data-digit", "7")
        expect(page.locator("#connection-notice")).to_be_hidden()
        assert stats(page)["connections"] == 2
        assert stats(page)["resends"] == 1
        assert_no_page_errors(page)
    finally:
        context.close()
