"""The wheel is the product: installed on its own, away from the checkout, it serves the page."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support import REPO, ServerProcess


@pytest.mark.slow
def test_a_built_wheel_installed_on_its_own_serves_the_page(tmp_path: Path) -> None:
    dist, site = tmp_path / "dist", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(dist), str(REPO)], check=True)
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), *map(str, dist.glob("*.whl"))], check=True)
    env = {**os.environ, "PYTHONPATH": str(site)}
    imported = subprocess.run(
        [sys.executable, "-c", "import server; print(server.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(imported.stdout.strip()).is_relative_to(site)

    server = ServerProcess(
        command=[str(site / "bin" / "digitstream"), "serve"],
        env={"PYTHONPATH": str(site)},
        log_path=tmp_path / "server.log",
    ).start()
    try:
        page = httpx.get(f"{server.base_url}/")
        script = httpx.get(f"{server.base_url}/js/main.js")
        dashboard = httpx.get(f"{server.base_url}/classroom")
    finally:
        server.stop()
    assert page.status_code == 200 and "<canvas" in page.text
    assert script.status_code == 200 and "import" in script.text
    assert dashboard.status_code == 200
