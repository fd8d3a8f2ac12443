"""Process lifecycle: the CLI, the app factory, graceful shutdown."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import websockets
from PIL import Image
from websockets.exceptions import ConnectionClosed

from server.config import Settings, add_options, from_args, from_env
from tests.inprocess import InProcessServer, SwitchablePredictor
from tests.support import ANSWER_TIMEOUT_S, REPO, ServerProcess, canvas_png, closed_with, free_port, holdout


def test_help_explains_every_setting_with_its_flag_and_environment_variable() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server", "serve", "--help"], cwd=REPO, capture_output=True, text=True, check=True
    )
    help_text = " ".join(result.stdout.split())
    for field in dataclasses.fields(Settings):
        flag, variable = "--" + field.name.replace("_", "-"), "DIGITSTREAM_" + field.name.upper()
        assert f"{flag} " in help_text and f"[{variable}]" in help_text, field.name


def test_a_flag_wins_over_its_variable_which_wins_over_the_default() -> None:
    environ = {"DIGITSTREAM_MAX_BATCH_SIZE": "4", "DIGITSTREAM_ALLOWED_HOSTS": "class.example, lab.example"}
    from_variables = from_env(Settings, environ)
    assert from_variables.max_batch_size == 4 and from_variables.allowed_hosts == ("class.example", "lab.example")
    parser = argparse.ArgumentParser()
    add_options(parser, Settings, environ)
    settings = from_args(Settings, parser.parse_args(["--max-batch-size", "8"]))
    assert settings.max_batch_size == 8
    assert settings.allowed_hosts == ("class.example", "lab.example")
    assert settings.port == Settings().port


def test_a_bad_variable_is_a_usage_error_unless_its_flag_overrides_it(capsys) -> None:
    environ = {"DIGITSTREAM_PORT": "abc", "DIGITSTREAM_LOG_LEVEL": "verbose"}
    parser = argparse.ArgumentParser()
    add_options(parser, Settings, environ)
    settings = from_args(Settings, parser.parse_args(["--port", "8001", "--log-level", "debug"]))
    assert (settings.port, settings.log_level) == (8001, "debug")
    for flags, named in ((["--log-level", "debug"], "--port"), (["--port", "8001"], "--log-level")):
        with pytest.raises(SystemExit):
            parser.parse_args(flags)
        assert f"argument {named}:" in capsys.readouterr().err
    with pytest.raises(ValueError, match="DIGITSTREAM_PORT='abc'"):
        from_env(Settings, environ)


def test_environment_variables_are_the_fallback_for_flags(tmp_path) -> None:
    port = free_port()
    env = {**os.environ, "DIGITSTREAM_PORT": str(port), "DIGITSTREAM_MAX_BATCH_SIZE": "4"}
    process = subprocess.Popen(
        [sys.executable, "-m", "server"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        server = ServerProcess(port=port, process=process)
        server.wait_healthy()
        assert httpx.get(f"{server.base_url}/healthz").json()["max_batch_size"] == 4
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)


UVICORN_FACTORY = [sys.executable, "-m", "uvicorn", "--factory", "server.app:create_app"]


def test_uvicorn_factory_serves_the_app() -> None:
    port = free_port()
    command = [*UVICORN_FACTORY, "--port", str(port)]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ServerProcess(port=port, process=process).wait_healthy()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)


@pytest.mark.parametrize("command", [None, UVICORN_FACTORY], ids=["python -m server", "uvicorn --factory"])
@pytest.mark.asyncio(loop_scope="session")
async def test_sigterm_answers_in_flight_snapshots_then_closes_with_1001(tmp_path, command) -> None:
    server = ServerProcess(command=command, log_path=tmp_path / "server.log").start()
    x, y = holdout()
    drawers = []
    try:
        for _ in range(5):
            drawers.append(await websockets.connect(server.ws_url))
        answered_early = set()
        for index, ws in enumerate(drawers):
            await ws.send(canvas_png(x[index]))
            # the pong proves the server has read the snapshot: it is in flight from here on
            await ws.send(json.dumps({"type": "ping", "t": index}))
        for index, ws in enumerate(drawers):
            while (message := json.loads(await asyncio.wait_for(ws.recv(), 10)))["type"] != "pong":
                answered_early.add(index)
        stopped_at = time.monotonic()
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        for index, ws in enumerate(drawers):
            if index not in answered_early:
                message = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert message["type"] == "prediction" and message["seq"] == 1
                assert message["digit"] == y[index]
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        # uvicorn re-raises the signal after a clean shutdown, as Unix programs should
        assert await asyncio.to_thread(server.process.wait, 10) in (0, -signal.SIGTERM)
        assert time.monotonic() - stopped_at < 5
    finally:
        server.stop(signal.SIGKILL)
    assert "Traceback" not in server.log_text()


async def stalled_client(server: ServerProcess) -> tuple[websockets.ClientConnection, asyncio.Task]:
    """A client that stopped reading while the server was sending to it: a tiny receive buffer,
    and far more pongs asked for than every buffer between the two holds. Returns once the
    server has stopped reading it too, because the send it is stuck in comes first."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    lazy = await websockets.connect(server.ws_url, sock=sock, max_queue=1)
    # as large as a control message may be, incompressible, and its pong is as large
    ping = json.dumps({"type": "ping", "t": base64.b64encode(os.urandom(Settings().max_text_bytes // 2)).decode()})

    sent = [0]

    async def send_and_never_read() -> None:
        with contextlib.suppress(ConnectionClosed, OSError):
            while True:
                await lazy.send(ping)
                sent[0] += 1

    sender = asyncio.create_task(send_and_never_read())
    deadline = time.monotonic() + 60
    unchanged, last = 0, -1
    while unchanged < 10:  # the server has stopped taking its frames, for ten looks in a row
        assert time.monotonic() < deadline, "the server kept reading a client that never reads"
        await asyncio.sleep(0.05)
        blocked = lazy.transport.get_write_buffer_size() > 0 and sent[0] == last
        unchanged, last = (unchanged + 1 if blocked else 0), sent[0]
    return lazy, sender


async def close_code_past_answers(ws: websockets.ClientConnection) -> int | None:
    with contextlib.suppress(ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), 10)
    return ws.close_code


async def sigterm_beside_a_stalled_client(server: ServerProcess) -> tuple[int | None, float]:
    """SIGTERM while a drawer is connected and another client has stopped reading; returns the
    drawer's close code and how long the process took to exit."""
    x, _ = holdout()
    lazy, sender = await stalled_client(server)
    try:
        async with websockets.connect(server.ws_url) as drawer:
            await drawer.send(canvas_png(x[0]))
            assert json.loads(await asyncio.wait_for(drawer.recv(), 30))["type"] == "prediction"
            stopped_at = time.monotonic()
            assert server.process is not None
            server.process.send_signal(signal.SIGTERM)
            code = await close_code_past_answers(drawer)
            assert await asyncio.to_thread(server.process.wait, 30) in (0, -signal.SIGTERM)
            return code, time.monotonic() - stopped_at
    finally:
        sender.cancel()
        lazy.transport.abort()


@pytest.mark.asyncio(loop_scope="session")
async def test_sigterm_beside_a_client_that_stopped_reading_ends_in_time(tmp_path) -> None:
    server = ServerProcess(log_path=tmp_path / "server.log").start()
    try:
        code, took_s = await sigterm_beside_a_stalled_client(server)
    finally:
        server.stop(signal.SIGKILL)
    log = server.log_text()
    assert code == 1001
    assert took_s < 5
    assert "Application shutdown complete." in log, "the lifespan shutdown (rooms, queue) must run"
    assert "Traceback" not in log
    assert not [line for line in log.splitlines() if line.startswith("ERROR")]


@pytest.mark.asyncio(loop_scope="session")
async def test_sigterm_under_uvicorn_factory_drains_and_closes_with_1001_too(tmp_path) -> None:
    """The app drains before uvicorn's own shutdown; only the client that stopped reading is
    uvicorn's to drop, after its --timeout-graceful-shutdown (README, "Configuration")."""
    command = [*UVICORN_FACTORY, "--timeout-graceful-shutdown", "1"]
    server = ServerProcess(command=command, log_path=tmp_path / "server.log").start()
    try:
        code, took_s = await sigterm_beside_a_stalled_client(server)
    finally:
        server.stop(signal.SIGKILL)
    assert code == 1001
    assert took_s < 5  # the app's drain, uvicorn's 1 s for the stalled client, the lifespan shutdown
    assert "Application shutdown complete." in server.log_text(), "the lifespan shutdown runs all the same"


PNG_END = b"IEND\xaeB`\x82"


def all_written(directory: Path) -> bool:
    saved = list(directory.glob("*.png"))
    return bool(saved) and all(path.read_bytes().endswith(PNG_END) for path in saved)


def test_save_inputs_writes_what_the_model_was_given(tmp_path) -> None:
    inputs = tmp_path / "inputs"
    server = ServerProcess(args=["--save-inputs", str(inputs)], log_path=tmp_path / "server.log").start()
    try:
        x, _ = holdout()
        response = httpx.post(
            f"{server.base_url}/api/classify", content=canvas_png(x[0]), headers={"content-type": "image/png"}
        )
        assert response.status_code == 200
        deadline = time.monotonic() + 10
        # written on a thread after the answer: wait until a whole PNG (ending in IEND) is there
        while not all_written(inputs) and time.monotonic() < deadline:
            time.sleep(0.05)
        saved = list(inputs.glob("*.png"))
        assert len(saved) == 1
        assert saved[0].name.endswith(f"-pred{response.json()['predicted_digit']}.png")
        assert Image.open(saved[0]).size == (28, 28)
    finally:
        server.stop()


def test_the_readme_names_every_flag() -> None:
    readme = (REPO / "README.md").read_text()
    missing = [
        field.name for field in dataclasses.fields(Settings) if f"`--{field.name.replace('_', '-')}`" not in readme
    ]
    assert not missing


@pytest.mark.asyncio(loop_scope="session")
async def test_a_snapshot_sent_while_the_server_drains_is_answered_in_its_turn_with_shutting_down() -> None:
    predictor = SwitchablePredictor()
    server = InProcessServer(Settings(), predictor.load).start()
    frame = canvas_png(holdout()[0][0], size=128)
    try:
        async with asyncio.timeout(ANSWER_TIMEOUT_S), websockets.connect(server.ws_url) as ws:
            predictor.gate.clear()
            await ws.send(frame)
            await asyncio.to_thread(predictor.waiting.wait, ANSWER_TIMEOUT_S)  # snapshot 1 is in the model
            await begin_drain(server)
            await ws.send(frame)
            await ws.send(json.dumps({"type": "ping", "t": 1}))
            assert json.loads(await ws.recv()) == {"type": "pong", "t": 1}  # so snapshot 2 was read
            async with httpx.AsyncClient() as client:
                late = await client.post(
                    f"{server.base_url}/api/classify", content=frame, headers={"content-type": "image/png"}
                )
            assert (late.status_code, late.json()["code"]) == (503, "shutting_down")
            predictor.gate.set()
            answers = [json.loads(await ws.recv()) for _ in range(2)]
            assert [(a["type"], a["seq"]) for a in answers] == [("prediction", 1), ("error", 2)]
            assert answers[1]["code"] == "shutting_down"
            assert await closed_with(ws) == 1001
    finally:
        predictor.gate.set()
        server.stop()


@pytest.mark.asyncio(loop_scope="session")
async def test_a_second_exit_signal_during_the_drain_does_not_cut_it_short() -> None:
    """A `--workers` worker hears its process group's signal (Ctrl+C, systemd), then its parent's."""
    predictor = SwitchablePredictor()
    server = InProcessServer(Settings(), predictor.load).start()
    try:
        async with asyncio.timeout(ANSWER_TIMEOUT_S), websockets.connect(server.ws_url) as ws:
            predictor.gate.clear()
            await ws.send(canvas_png(holdout()[0][0], size=128))
            await asyncio.to_thread(predictor.waiting.wait, ANSWER_TIMEOUT_S)
            await begin_drain(server)  # the first signal
            server.server.should_exit = True  # what uvicorn's handler does with the second
            while await listening(server.settings.port):  # uvicorn's shutdown has begun
                await asyncio.sleep(0.01)
            predictor.gate.set()
            assert json.loads(await ws.recv())["type"] == "prediction"
            assert await closed_with(ws) == 1001
    finally:
        predictor.gate.set()
        server.stop()


async def begin_drain(server: InProcessServer) -> None:
    """What the first exit signal does, until the server has stopped accepting."""
    asyncio.run_coroutine_threadsafe(server.service.drain(), server.loop)
    while server.service.accepting:
        await asyncio.sleep(0.01)


async def listening(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    return True
