from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.support import ServerProcess


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real uvicorn server with the bundled model, shared by the integration tests. Every
    test comes from 127.0.0.1 and many open a class, so the suite is one school's address
    with as many open classes as it likes; the per-address cap has tests of its own."""
    log_path = Path(tmp_path_factory.mktemp("server")) / "server.log"
    school = ["--rooms-per-address", "1000", "--room-creation-burst", "1000"]
    process = ServerProcess(args=school, log_path=log_path).start()
    yield process
    process.stop()


# `make test CHROMIUM=…` (or the environment) picks another build; Playwright's own download
# cannot work offline, so the browser tests drive Debian's.
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """A real Chromium per browser module: Playwright's sync API runs an event loop of its
    own while it is open, which the asyncio tests of other modules cannot share."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
