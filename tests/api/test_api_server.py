"""`pipeline api`: settings and overrides, and the app that bootstraps its own pipeline."""

from __future__ import annotations

import asyncio
from pathlib import Path

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

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}


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
