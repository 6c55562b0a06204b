"""Kafka Connect with Debezium's PostgreSQL source (`scripts/stack up --connect`): the repo's
connector config deployed with `pipeline connect deploy` streams the `sensor_metadata`
reference table into its compacted topic, and a table materialized from that topic shows a
row changed in PostgreSQL within seconds."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from pipeline.adapters.connect.configs import slot_name
from pipeline.adapters.connect.debezium import sensor_metadata_key, sensor_metadata_value
from pipeline.adapters.kafka import KafkaEventLog
from pipeline.application.access import Principals
from pipeline.domain import SensorMetadata
from pipeline.entrypoints.bootstrap import bootstrap
from pipeline.entrypoints.settings import Settings
from tests.databases import _admin_dsn
from tests.integration.conftest import settings_env
from tests.integration.secured import grant
from tests.services import CONNECT, KAFKA, SASL_BOOTSTRAP, require_service

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

PIPELINE = [sys.executable, "-m", "pipeline.entrypoints.cli"]
CHANGE_SEEN_S = 15.0
"""A change of a row must reach the table within this (the issue: "within seconds")."""


def pipeline(settings: Settings, *argv: str) -> subprocess.CompletedProcess[str]:
    env = settings_env(settings) | {CONNECT: require_service(CONNECT)}
    return subprocess.run(
        [*PIPELINE, *argv], check=False, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
async def deployed(settings: Settings) -> AsyncIterator[Settings]:
    """The sensor-metadata connector of `settings`' database running, its topic created."""
    require_service(CONNECT)
    admin = await bootstrap(settings)
    try:
        await admin.ensure_topics()
    finally:
        await admin.aclose()
    if os.environ.get(SASL_BOOTSTRAP):  # the stack runs ACLs: Connect needs its own
        await grant(settings, Principals(connect="User:connect"))
    deploy = pipeline(settings, "connect", "deploy")
    assert deploy.returncode == 0, deploy.stderr
    name = f"{settings.worker.group_id_prefix}-sensor-metadata"
    assert deploy.stdout == f"{name}\tcreated\n"
    try:
        deadline = time.monotonic() + 90
        while (status := pipeline(settings, "connect", "status")).returncode != 0:
            assert time.monotonic() < deadline, status.stdout + status.stderr
            await asyncio.sleep(1)
        assert status.stdout.startswith(f"{name}\tRUNNING\ttask0=RUNNING")
        yield settings
    finally:
        assert pipeline(settings, "connect", "delete", "sensor-metadata").returncode == 0
        await drop_slot(slot_name(name))


async def drop_slot(slot: str) -> None:
    """Drop the connector's replication slot once its task has let go of it (a slot left
    behind keeps WAL for ever and keeps its database from being dropped)."""
    connection = await asyncpg.connect(_admin_dsn())
    try:
        deadline = time.monotonic() + 60
        while await connection.fetchval(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", slot
        ):
            await connection.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                "WHERE slot_name = $1 AND NOT active",
                slot,
            )
            assert time.monotonic() < deadline, f"replication slot {slot} still active"
            await asyncio.sleep(0.5)
    finally:
        await connection.close()


async def seen_within(check: Callable[[], bool]) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < CHANGE_SEEN_S, "the change did not reach the table"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def test_a_row_changed_in_postgresql_reaches_the_table_within_seconds(
    deployed: Settings,
) -> None:
    database = make_url(deployed.database.url.get_secret_value())
    rows = await asyncpg.connect(
        database.set(drivername="postgresql").render_as_string(hide_password=False)
    )
    log = KafkaEventLog(require_service(KAFKA), timeout=20.0)
    table = log.changelog_table(
        deployed.topics.sensor_metadata,
        decode_key=sensor_metadata_key,
        decode_value=sensor_metadata_value,
    )
    try:
        await table.start()

        await rows.execute(
            "INSERT INTO sensor_metadata (sensor_id, location, high) VALUES ('t-1', 'hall', 40)"
        )
        inserted = await seen_within(lambda: table.get("t-1") is not None)
        assert table.get("t-1") == SensorMetadata(sensor_id="t-1", location="hall", high=40.0)

        await rows.execute("UPDATE sensor_metadata SET high = 30 WHERE sensor_id = 't-1'")
        updated = await seen_within(
            lambda: (row := table.get("t-1")) is not None and row.high == 30.0
        )

        await rows.execute("DELETE FROM sensor_metadata WHERE sensor_id = 't-1'")
        deleted = await seen_within(lambda: table.get("t-1") is None)
    finally:
        await table.close()
        await log.close()
        await rows.close()
    assert table.rejected == 0
    print(f"row → table: insert {inserted:.2f}s, update {updated:.2f}s, delete {deleted:.2f}s")
