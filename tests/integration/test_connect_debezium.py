"""Kafka Connect with Debezium's PostgreSQL source (`scripts/stack up --connect`): the repo's
connector config deployed with `pipeline connect deploy` streams the `sensor_metadata`
reference table into its compacted topic, a table materialized from that topic shows a
row changed in PostgreSQL within seconds, and so do the sensors job's alerts (it joins the
topic as a global table for each sensor's limits)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from pipeline.adapters.connect.configs import slot_name
from pipeline.adapters.connect.debezium import sensor_metadata_key, sensor_metadata_value
from pipeline.adapters.kafka import KafkaEventLog
from pipeline.application.access import Principals
from pipeline.domain import Reading, SensorMetadata
from pipeline.entrypoints.bootstrap import Pipeline, bootstrap
from pipeline.entrypoints.settings import Settings
from pipeline.entrypoints.worker import run_named_job
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


SENSOR = "e2e-temp-1"
READING_EVERY_S = 0.1
AFTER_UPDATE_S = 12.0
"""How long readings go on after the UPDATE: the change must take hold with at least
`QUIET_S` of them left to show that it held."""
QUIET_S = 2.0


def temperature(value: float) -> Reading:
    now = datetime.now(UTC)
    return Reading(
        sensor_id=SENSOR,
        sensor_type="temperature",
        value=value,
        unit="celsius",
        timestamp=now.replace(microsecond=now.microsecond // 1000 * 1000),  # Avro's millis
        location="e2e-hall",
        battery_level=80.0,
        signal_strength=-60.0,
    )


class Readings:
    """Publishes a 30 °C reading of SENSOR every READING_EVERY_S (above a row's high of 20,
    below its type's 45) and remembers their event times."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self.sent: list[datetime] = []
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        topic = self._pipeline.settings.topics.sensor_readings
        codec = self._pipeline.reading_codec
        while not self._stop.is_set():
            reading = temperature(30.0)
            await self._pipeline.log.publish(topic, SENSOR.encode(), await codec.encode(reading))
            self.sent.append(reading.timestamp)
            await asyncio.sleep(READING_EVERY_S)

    async def stop(self) -> None:
        self._stop.set()
        await self._task
        await self._pipeline.log.flush()


async def until(check: Callable[[], object], worker: asyncio.Task[object], what: str) -> None:
    """Wait for `check()` (awaited when a coroutine) to be true, while the worker runs."""
    deadline = time.monotonic() + 60
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if worker.done():
            worker.result()  # its error, else:
            raise AssertionError(f"the worker stopped before {what}")
        assert time.monotonic() < deadline, f"no {what} within 60 s"
        await asyncio.sleep(0.2)


async def test_a_row_changed_in_postgresql_changes_the_sensors_jobs_alerts_within_seconds(
    deployed: Settings,
) -> None:
    database = make_url(deployed.database.url.get_secret_value())
    rows = await asyncpg.connect(
        database.set(drivername="postgresql").render_as_string(hide_password=False)
    )
    pipeline = await bootstrap(deployed)
    stop = asyncio.Event()
    worker: asyncio.Task[object] = asyncio.create_task(
        run_named_job(pipeline, "sensors", stop=stop)
    )
    readings = Readings(pipeline)
    store = pipeline.store
    stored_after_update: list[tuple[float, int]] = []
    """(seconds after the UPDATE, readings stored): when the stored ones showed the change."""
    try:
        await until(store.count_readings, worker, "reading stored")

        before = await store.count_readings()
        inserted = datetime.now(UTC)
        await rows.execute(
            "INSERT INTO sensor_metadata (sensor_id, location, high) VALUES ($1, 'hall', 20)",
            SENSOR,
        )
        await until(lambda: store.alerts(source=SENSOR, limit=1), worker, "alert")
        seen = datetime.now(UTC)

        updated = datetime.now(UTC)
        await rows.execute("UPDATE sensor_metadata SET high = 40 WHERE sensor_id = $1", SENSOR)
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < AFTER_UPDATE_S:
            stored_after_update.append((elapsed, await store.count_readings()))
            await asyncio.sleep(0.2)
        await readings.stop()
        sent = readings.sent

        async def all_stored() -> bool:
            return await store.count_readings() == len(sent)

        await until(all_stored, worker, "every reading stored")
        alerts = await store.alerts(source=SENSOR, limit=10_000)
    finally:
        await readings.stop()
        stop.set()
        await worker
        await pipeline.aclose()
        await rows.close()

    alerted = sorted(a.timestamp for a in alerts)
    first, last = alerted[0], alerted[-1]
    # One partition, one key: readings are stored in the order they were sent. Those stored
    # before the INSERT met the type's limits (30 < 45); from the first alert to the last,
    # every reading met the row's (30 > 20); after the UPDATE, 30 < 40 again, for good.
    assert before > 0
    assert first > sent[before - 1]
    assert alerted == [t for t in sent if first <= t <= last]
    assert {a.threshold for a in alerts} == {20.0}
    quiet = [t for t in sent if t > last]
    assert quiet, "no reading after the last alert"
    assert quiet[-1] - quiet[0] >= timedelta(seconds=QUIET_S)
    # When the change showed: by event time, the reading the worker first checked against
    # the new limit (the worker's lag makes it early by that lag); by the wall clock, the
    # first poll of the store holding such a reading (late by the lag and the poll).
    by_event_time = max(last - updated, timedelta(0)).total_seconds()
    by_wall_clock = next((s for s, n in stored_after_update if sent[n - 1] > last), None)
    assert by_wall_clock is not None, "no reading after the last alert stored in time"
    print(
        f"sensor_metadata row → sensors job's alerts: INSERT → first alert stored "
        f"{(seen - inserted).total_seconds():.2f}s; UPDATE → readings no longer alerting "
        f"{by_event_time:.2f}s by their event time, {by_wall_clock:.2f}s until stored "
        f"(readings every {READING_EVERY_S}s, load average {os.getloadavg()[0]:.1f})"
    )
