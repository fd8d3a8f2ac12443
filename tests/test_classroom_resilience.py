"""The classroom when the network misbehaves, in real Chromium against the real server: a
rate-limited dashboard waits instead of forgetting its class, a refused rejoin is tried again,
a phone whose socket drops gets its seat back, a reloaded page blanks its tile, and two
students with one name are told apart.

Playwright's WebSocket routing sits between page and server (every frame still reaches the
real server) so a test can drop a connection or answer one frame itself at a chosen moment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from contextlib import ExitStack

import pytest
from playwright.sync_api import Browser, Page, WebSocketRoute, expect

from tests.browser_support import (
    DESKTOP,
    PHONE,
    SEVEN,
    WAIT_MS,
    assert_no_page_errors,
    class_of,
    close_checked,
    draw,
    join_by_link,
    new_page,
    open_page,
    start_class,
    wait_settled,
)
from tests.support import ServerProcess

pytestmark = pytest.mark.browser

RETRY_AFTER_S = 2
STUDENT_SOCKET = re.compile(r"/ws$")
TEACHER_SOCKET = re.compile(r"/ws/teacher$")


def rate_limited() -> str:
    return json.dumps(
        {
            "type": "error",
            "code": "rate_limited",
            "retry_after": RETRY_AFTER_S,
            "message": "Too many wrong codes or secrets from this network; wait a minute.",
        }
    )


def classroom_unavailable() -> str:
    """As a server whose Redis is briefly unreachable answers a join: no retry_after."""
    return json.dumps(
        {
            "type": "error",
            "code": "classroom_unavailable",
            "message": "Classes are unavailable right now; drawing still works. Try again in a moment.",
        }
    )


# Real sockets to the real server, held in their handshake until the test calls
# letSocketsOpen(): a phone on a slow or still-connecting network.
HELD_SOCKETS = """
const RealWebSocket = window.WebSocket;
const held = [];
window.letSocketsOpen = () => { window.socketsMayOpen = true; for (const open of held.splice(0)) open(); };
window.WebSocket = class HeldWebSocket extends EventTarget {
  #real = null;
  constructor(url) {
    super();
    Object.assign(this, { url, readyState: 0, bufferedAmount: 0, binaryType: 'blob' });
    const open = () => {
      this.#real = new RealWebSocket(url);
      this.#real.binaryType = this.binaryType;
      for (const type of ['open', 'message', 'close']) {
        this.#real.addEventListener(type, (e) => {
          this.readyState = this.#real.readyState;
          this.dispatchEvent(new e.constructor(e.type, e));
        });
      }
    };
    if (window.socketsMayOpen) open(); else held.push(open);
  }
  send(data) { this.#real.send(data); }
  close() {
    if (this.#real) return this.#real.close();
    this.readyState = 3;
    this.dispatchEvent(new Event('close'));
  }
};
"""


def stored(page: Page, key: str) -> dict | None:
    return page.evaluate(f"JSON.parse(sessionStorage.getItem('{key}'))")


def assert_out_of_class(student: Page) -> None:
    expect(student.locator("#room-banner")).to_be_hidden()
    assert stored(student, "digitstream.room") is None


def test_a_rate_limited_dashboard_keeps_its_class_and_comes_back(browser: Browser, server: ServerProcess) -> None:
    answered: list[WebSocketRoute] = []

    def teacher_socket(ws: WebSocketRoute) -> None:
        if answered:
            ws.connect_to_server()
            return
        answered.append(ws)

        def refuse(_auth: str | bytes) -> None:
            ws.send(rate_limited())
            ws.close(code=1008)

        ws.on_message(refuse)

    context = browser.new_context(viewport=DESKTOP)
    context.route_web_socket(TEACHER_SOCKET, teacher_socket)
    dashboard = open_page(context, f"{server.base_url}/classroom")
    dashboard.click("#create")
    expect(dashboard.locator("#status")).to_contain_text("retrying", timeout=WAIT_MS)
    expect(dashboard.locator("#room")).to_be_visible()
    assert stored(dashboard, "digitstream.classroom") is not None
    # After retry_after the dashboard authenticates again with the secret it kept.
    expect(dashboard.locator("#status")).to_have_attribute("data-state", "connected", timeout=WAIT_MS)
    expect(dashboard.locator("#start")).to_be_hidden()
    assert_no_page_errors(dashboard)
    context.close()


def test_a_command_that_did_not_reach_the_class_says_so(browser: Browser, server: ServerProcess) -> None:
    sockets: list[WebSocketRoute] = []
    offline = [False]

    def teacher_socket(ws: WebSocketRoute) -> None:
        sockets.append(ws)
        if offline[0]:
            ws.close()
            return
        upstream = ws.connect_to_server()

        def from_page(message: str | bytes) -> None:
            if isinstance(message, str) and json.loads(message).get("type") == "clear_all":
                ws.send(classroom_unavailable())  # as a server whose Redis is away answers it
            else:
                upstream.send(message)

        ws.on_message(from_page)

    context = browser.new_context(viewport=DESKTOP)
    context.route_web_socket(TEACHER_SOCKET, teacher_socket)
    dashboard = open_page(context, f"{server.base_url}/classroom")
    start_class(dashboard)
    notice = dashboard.locator("#command-notice")
    dashboard.click("#clear-all")
    expect(notice).to_have_text(json.loads(classroom_unavailable())["message"])
    offline[0] = True
    sockets[-1].close()
    expect(dashboard.locator("#status")).not_to_have_attribute("data-state", "connected", timeout=WAIT_MS)
    dashboard.click("#prompts button:text-is('3')")
    expect(notice).to_contain_text("Not sent")
    offline[0] = False
    expect(dashboard.locator("#status")).to_have_attribute("data-state", "connected", timeout=WAIT_MS)
    expect(notice).to_have_text("")
    assert_no_page_errors(dashboard)
    context.close()


@pytest.mark.parametrize("refusal", [rate_limited, classroom_unavailable])
def test_a_refused_rejoin_waits_and_rejoins_without_the_dialog(
    browser: Browser, server: ServerProcess, refusal: Callable[[], str]
) -> None:
    dashboard = new_page(browser, f"{server.base_url}/classroom", DESKTOP)
    code = start_class(dashboard)
    connections: list[WebSocketRoute] = []
    refused: list[str] = []

    def student_socket(ws: WebSocketRoute) -> None:
        connections.append(ws)
        upstream = ws.connect_to_server()

        def from_page(message: str | bytes) -> None:
            # The second connection's first join is refused, to be tried again later.
            if len(connections) == 2 and not refused and isinstance(message, str) and '"join"' in message:
                refused.append(message)
                ws.send(refusal())
                return
            upstream.send(message)

        ws.on_message(from_page)

    context = browser.new_context(viewport=PHONE)
    context.route_web_socket(STUDENT_SOCKET, student_socket)
    student = open_page(context, "about:blank")  # its first socket is the class page's
    join_by_link(student, server.base_url, code, "Ana")
    draw(student, SEVEN)
    connections[0].close()  # the Wi-Fi drops
    # Until the rejoin is let in (seconds later) the dashboard has no present Ana: her tile
    # is gone, or kept as away where the server holds seats.
    present = dashboard.locator(".tile:not([data-away=true])")
    expect(present).to_have_count(0, timeout=WAIT_MS)
    expect(present).to_have_count(1, timeout=WAIT_MS)
    assert refused and len(connections) == 2
    expect(student.locator("#room-banner")).to_be_visible()
    expect(student.locator("#join-dialog")).to_be_hidden()
    assert student.evaluate("window.digitstream.strokeCount") == 1
    close_checked(dashboard, student)


@pytest.mark.parametrize("right_code", [True, False])
def test_a_join_asked_for_before_the_socket_opens_goes_out_once_it_does(
    browser: Browser, server: ServerProcess, right_code: bool
) -> None:
    dashboard = new_page(browser, f"{server.base_url}/classroom", DESKTOP)
    code = start_class(dashboard) if right_code else "ZZZZZZZZ"
    context = browser.new_context(viewport=PHONE)
    context.add_init_script(HELD_SOCKETS)
    student = open_page(context, f"{server.base_url}/?room={code}")
    expect(student.locator("#join-dialog")).to_be_visible(timeout=WAIT_MS)
    student.fill("#join-name", "Ana")
    student.click("#join-dialog button[type=submit]")
    expect(student.locator("#join-error")).to_contain_text("Not connected yet")
    student.evaluate("letSocketsOpen()")
    if right_code:
        expect(student.locator("#room-banner")).to_be_visible(timeout=WAIT_MS)
        expect(student.locator("#join-dialog")).to_be_hidden()
    else:
        # Her own join, refused: said in the dialog she is looking at, not as a lost class.
        expect(student.locator("#join-error")).to_have_text("No open class has that code.", timeout=WAIT_MS)
        expect(student.locator("#room-notice")).to_have_text("")
    close_checked(dashboard, student)


def test_a_join_called_off_before_the_socket_opens_never_goes_out(browser: Browser, server: ServerProcess) -> None:
    dashboard = new_page(browser, f"{server.base_url}/classroom", DESKTOP)
    code = start_class(dashboard)
    context = browser.new_context(viewport=PHONE)
    context.add_init_script(HELD_SOCKETS)
    student = open_page(context, f"{server.base_url}/?room={code}")
    expect(student.locator("#join-dialog")).to_be_visible(timeout=WAIT_MS)
    student.fill("#join-name", "Ana")
    student.click("#join-dialog button[type=submit]")
    expect(student.locator("#join-error")).to_contain_text("Not connected yet")
    student.click("#join-dialog button[type=button]")  # Cancel
    student.evaluate("letSocketsOpen()")
    draw(student, SEVEN)  # answered after anything sent before it on the socket
    wait_settled(student)
    expect(student.locator("#join-dialog")).to_be_hidden()
    assert_out_of_class(student)
    close_checked(dashboard, student)


def test_leave_while_the_rejoin_is_on_its_way_is_not_undone(browser: Browser, server: ServerProcess) -> None:
    dashboard = new_page(browser, f"{server.base_url}/classroom", DESKTOP)
    code = start_class(dashboard)
    connections: list[WebSocketRoute] = []
    holding = [False]
    held: list[tuple[WebSocketRoute, str | bytes]] = []  # (the server side, a frame from the page)

    def student_socket(ws: WebSocketRoute) -> None:
        connections.append(ws)
        upstream = ws.connect_to_server()

        def from_page(message: str | bytes) -> None:
            if holding[0]:
                held.append((upstream, message))
            else:
                upstream.send(message)

        ws.on_message(from_page)

    context = browser.new_context(viewport=PHONE)
    context.route_web_socket(STUDENT_SOCKET, student_socket)
    student = open_page(context, "about:blank")
    join_by_link(student, server.base_url, code, "Lea")
    tiles = dashboard.locator(".tile")
    expect(tiles).to_have_count(1, timeout=WAIT_MS)
    holding[0] = True  # the rejoin is slow to reach the server
    connections[-1].close()  # the Wi-Fi drops
    student.wait_for_function("window.digitstream.stats.connections === 2", timeout=WAIT_MS)
    student.click("#room-leave")
    expect(student.locator("#room-banner")).to_be_hidden()
    holding[0] = False
    for upstream, message in held:
        upstream.send(message)
    expect(tiles).to_have_count(0, timeout=WAIT_MS)
    assert_out_of_class(student)
    close_checked(dashboard, student)


def test_a_phone_whose_socket_drops_keeps_its_seat(browser: Browser, server: ServerProcess) -> None:
    """Needs the server's stable seats: `joined.rejoin`, a held seat and `away` tiles."""
    dashboard = new_page(browser, f"{server.base_url}/classroom", DESKTOP)
    code = start_class(dashboard)
    connections: list[WebSocketRoute] = []
    joins: list[dict] = []
    offline = [False]

    def student_socket(ws: WebSocketRoute) -> None:
        connections.append(ws)
        if offline[0]:
            ws.close()  # the phone is still out of reach
            return
        upstream = ws.connect_to_server()

        def from_page(message: str | bytes) -> None:
            if isinstance(message, str) and json.loads(message).get("type") == "join":
                joins.append(json.loads(message))
            upstream.send(message)

        ws.on_message(from_page)

    with ExitStack() as students:
        class_of(students, server, code, 2)
        context = browser.new_context(viewport=PHONE)
        context.route_web_socket(STUDENT_SOCKET, student_socket)
        student = open_page(context, "about:blank")  # its first socket is the class page's
        join_by_link(student, server.base_url, code, "Pablo")
        class_of(students, server, code, 2)  # two more after Pablo: his tile is not the last
        draw(student, SEVEN)
        tiles = dashboard.locator(".tile")
        expect(tiles).to_have_count(5, timeout=WAIT_MS)
        pablo = dashboard.locator(".tile", has=dashboard.locator(".tile-name", has_text="Pablo"))
        seat = pablo.get_attribute("data-student")
        place = tiles.evaluate_all("(all, id) => all.findIndex(t => t.dataset.student === id)", seat)
        saved = stored(student, "digitstream.room")
        assert saved is not None and saved["rejoin"]
        token = saved["rejoin"]

        offline[0] = True
        connections[-1].close()
        expect(pablo).to_have_attribute("data-away", "true", timeout=WAIT_MS)
        expect(tiles).to_have_count(5)
        offline[0] = False

        expect(pablo).to_have_attribute("data-away", "false", timeout=WAIT_MS)
        assert pablo.get_attribute("data-student") == seat
        assert tiles.evaluate_all("(all, id) => all.findIndex(t => t.dataset.student === id)", seat) == place
        assert joins[-1]["rejoin"] == token
        expect(pablo).to_have_attribute("data-digit", "7", timeout=WAIT_MS)
        close_checked(dashboard, student)


def test_a_reloaded_page_takes_its_seat_back_and_blanks_its_tile(browser: Browser, server: ServerProcess) -> None:
    """A reload keeps the seat (the tab's storage) but not the strokes: the tile must not go on
    showing, and counting, a drawing the pad no longer has."""
    dashboard = new_page(browser, f"{server.base_url}/classroom", DESKTOP)
    code = start_class(dashboard)
    student = new_page(browser, "about:blank", PHONE)
    join_by_link(student, server.base_url, code, "Rosa")
    draw(student, SEVEN)
    rosa = dashboard.locator(".tile", has=dashboard.locator(".tile-name", has_text="Rosa"))
    expect(rosa).to_have_attribute("data-digit", "7", timeout=WAIT_MS)
    seat = rosa.get_attribute("data-student")
    student.reload()
    expect(student.locator("#room-banner")).to_be_visible(timeout=WAIT_MS)
    expect(rosa).to_have_attribute("data-digit", "", timeout=WAIT_MS)
    assert rosa.get_attribute("data-student") == seat
    expect(dashboard.locator(".tile")).to_have_count(1)
    close_checked(dashboard, student)


def test_two_students_with_one_name_each_see_the_name_they_were_given(browser: Browser, server: ServerProcess) -> None:
    """Needs the server's unique names (`joined.name` may differ from the name asked for)."""
    dashboard = new_page(browser, f"{server.base_url}/classroom", DESKTOP)
    code = start_class(dashboard)
    first = new_page(browser, f"{server.base_url}/", PHONE)
    second = new_page(browser, f"{server.base_url}/", PHONE)
    join_by_link(first, server.base_url, code, "Ana")
    join_by_link(second, server.base_url, code, "Ana")
    names = [first.locator("#room-name").inner_text(), second.locator("#room-name").inner_text()]
    assert names[0] != names[1] and all(name.startswith("Ana") for name in names)
    expect(dashboard.locator(".tile-name")).to_have_text(names, timeout=WAIT_MS)
    for page in (dashboard, first, second):
        page.context.close()
