from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ServerProcess


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real uvicorn server with the bundled model, shared by the integration tests."""
    log_path = Path(tmp_path_factory.mktemp("server")) / "server.log"
    process = ServerProcess(log_path=log_path).start()
    yield process
    process.stop()
