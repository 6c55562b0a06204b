"""`pipeline api`: settings and overrides, and the app that bootstraps its own pipeline."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from litestar.testing import AsyncTestClient

from pipeline.adapters.sql.migrate import upgrade
from pipeline.application.errors import ConfigurationError
from pipeline.entrypoints.api.server import app_for
from pipeline.entrypoints.cli import build_parser, cmd_api
from pipeline.entrypoints.runtime import EXIT_USAGE
from pipeline.entrypoints.settings import (
    DatabaseSettings,
    KafkaSettings,
    RegistrySettings,
    Settings,
)


def test_the_api_command_takes_host_port_and_workers() -> None:
    args = build_parser().parse_args(
        ["api", "--host", "0.0.0.0", "--port", "9000", "--workers", "4"]
    )

    assert (args.host, args.port, args.workers) == ("0.0.0.0", 9000, 4)
    assert args.run is cmd_api


async def test_an_impossible_port_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["api", "--port", "70000"])

    assert await cmd_api(args, Settings()) == EXIT_USAGE
    assert "port" in capsys.readouterr().err


def test_api_keys_must_be_sha256_hex(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINE_API__API_KEY_HASHES", '["not-a-digest"]')

    with pytest.raises(ValueError, match="SHA-256"):
        Settings()


def embedded(tmp_path: Path) -> Settings:
    # Explicit sections win over the environment: embedded log and registry, a SQLite file.
    return Settings(
        kafka=KafkaSettings(),
        registry=RegistrySettings(),
        database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/api.db"),
    )


async def test_the_served_app_bootstraps_its_pipeline_on_startup(tmp_path: Path) -> None:
    settings = embedded(tmp_path)
    await asyncio.to_thread(upgrade, settings.database.url.get_secret_value())

    async with AsyncTestClient(app_for(settings)) as client:
        response = await client.get("/ready")

    # The database is the one bootstrapped from the settings (the broker: test_readiness).
    assert response.json()["checks"]["database"] == "ok"


async def test_the_served_app_keeps_its_startup_objects_out_of_full_collections(
    tmp_path: Path,
) -> None:
    settings = embedded(tmp_path)
    await asyncio.to_thread(upgrade, settings.database.url.get_secret_value())
    gc.unfreeze()

    async with AsyncTestClient(app_for(settings)):
        frozen = gc.get_freeze_count()

    # Modules, the app and the pipeline: scanning them in every full collection held the
    # event loop (the figures: benchmarks/ws_fanout.py).
    assert frozen > 10_000


async def test_serving_an_unmigrated_database_is_refused_before_listening(
    tmp_path: Path,
) -> None:
    args = build_parser().parse_args(["api", "--port", "0"])

    with pytest.raises(ConfigurationError, match=r"revision none.*pipeline db upgrade"):
        await cmd_api(args, embedded(tmp_path))


async def test_the_served_app_refuses_to_start_on_an_unmigrated_database(
    tmp_path: Path,
) -> None:
    refused: list[str] = []
    try:
        async with AsyncTestClient(app_for(embedded(tmp_path))):
            pass
    except* ConfigurationError as group:  # the test client's task group wraps it
        refused = [str(error) for error in group.exceptions]

    assert len(refused) == 1
    assert "pipeline db upgrade" in refused[0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_stops_the_server_gracefully_with_exit_code_0(tmp_path: Path, workers: int) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/api.db"
    upgrade(url)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_")}
    command = [sys.executable, "-m", "pipeline.entrypoints.cli", "api", "--port", str(port)]
    log = tmp_path / "api.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [*command, "--workers", str(workers)],
            env={**env, "PIPELINE_DATABASE__URL": url},
            stdout=output,
            stderr=subprocess.STDOUT,
            # Its own process group: whatever happens, the test can stop every process of it.
            start_new_session=True,
        )
        try:
            _wait_until_healthy(port, process)
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=60)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    assert code == 0, log.read_text()[-2000:]
    assert "Application shutdown complete" in log.read_text()


def _wait_until_healthy(port: int, process: subprocess.Popen[bytes]) -> None:
    # Generous: two worker processes importing the whole stack on a loaded 2-core machine
    # have taken 25 s.
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None, "pipeline api exited before serving"
        assert time.monotonic() < deadline, "pipeline api did not answer within 120 s"
        time.sleep(0.1)
