"""`/ready` checks what it claims: a broker it cannot reach (or none configured) is not
ready, every probe is bounded in time, and answers are reused briefly so probes stay cheap."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from pipeline.adapters.kafka import KafkaEventLog
from pipeline.adapters.sql.migrate import upgrade
from pipeline.entrypoints.api import create_app
from pipeline.entrypoints.api.routes import health
from pipeline.entrypoints.api.routes.health import ReadinessChecks
from pipeline.entrypoints.api.server import app_for
from pipeline.entrypoints.bootstrap import Pipeline
from pipeline.entrypoints.settings import (
    ApiSettings,
    DatabaseSettings,
    KafkaSettings,
    RegistrySettings,
    Settings,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class CountingProbe:
    def __init__(self, *, hang: bool = False, error: Exception | None = None) -> None:
        self.calls = 0
        self._hang = hang
        self._error = error

    async def __call__(self) -> object:
        self.calls += 1
        if self._hang:
            await asyncio.Event().wait()
        await asyncio.sleep(0.01)
        if self._error is not None:
            raise self._error
        return None


async def test_an_answer_is_reused_for_the_ttl_then_probed_again() -> None:
    probe, clock = CountingProbe(), Clock()
    checks = ReadinessChecks({"database": probe}, ttl=2.0, clock=clock)

    first = await checks.results()
    clock.now += 1.9
    second = await checks.results()
    clock.now += 0.2
    third = await checks.results()

    assert first == second == third == {"database": "ok"}
    assert probe.calls == 2


async def test_concurrent_requests_share_one_round_of_probes() -> None:
    probe = CountingProbe()
    checks = ReadinessChecks({"database": probe})

    answers = await asyncio.gather(*(checks.results() for _ in range(20)))

    assert answers == [{"database": "ok"}] * 20
    assert probe.calls == 1


async def test_a_probe_that_hangs_is_reported_in_bounded_time_and_not_started_twice() -> None:
    hanging, clock = CountingProbe(hang=True), Clock()
    checks = ReadinessChecks({"broker": hanging}, timeout=0.05, ttl=1.0, clock=clock)

    first = await asyncio.wait_for(checks.results(), 1)
    clock.now += 5
    second = await asyncio.wait_for(checks.results(), 1)

    assert first == second == {"broker": "no answer within 0.05s"}
    assert hanging.calls == 1  # the second round waited for the same probe


async def test_a_failing_probe_names_its_error() -> None:
    checks = ReadinessChecks({"database": CountingProbe(error=OSError("connection refused"))})

    assert await checks.results() == {"database": "OSError: connection refused"}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again on exit: nothing listens there


async def test_a_kafka_broker_that_does_not_answer_makes_the_api_unready(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health, "CHECK_TIMEOUT", 0.5)
    pipeline.log = KafkaEventLog(f"127.0.0.1:{_closed_port()}", timeout=2.0)

    async with AsyncTestClient(create_app(pipeline, ApiSettings())) as client:
        response = await client.get("/ready")

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == "ok"
    assert checks["broker"] != "ok"


async def test_pipeline_api_without_a_broker_is_not_ready_and_says_why(tmp_path: Path) -> None:
    # What `pipeline api` builds when PIPELINE_KAFKA__BOOTSTRAP_SERVERS is unset.
    settings = Settings(
        kafka=KafkaSettings(),
        registry=RegistrySettings(),
        database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/api.db"),
    )
    await asyncio.to_thread(upgrade, settings.database.url.get_secret_value())

    async with AsyncTestClient(app_for(settings)) as client:
        response = await client.get("/ready")

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == "ok"
    assert checks["broker"].startswith("not configured: PIPELINE_KAFKA__BOOTSTRAP_SERVERS")
