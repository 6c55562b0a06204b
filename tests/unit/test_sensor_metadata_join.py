"""The sensors job joins the `sensor_metadata` table (its Debezium changelog, as a global
table): a reading is checked against its sensor's row when there is one, else against its
type's limits; a changed row applies to the readings processed after it, a deleted one
brings the type's limits back. On the deterministic driver."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.adapters.connect.debezium import SENSOR_METADATA
from pipeline.adapters.memory import InMemoryEventLog
from pipeline.application.errors import ConfigurationError
from pipeline.application.ports import TopicSpec
from pipeline.application.tables import GlobalTables, with_global_tables
from pipeline.domain import Alert, AlertKind, Reading, SensorMetadata, Severity, alert_id_for
from pipeline.jobs.sensors import ALERTS, SensorJobConfig, sensor_job
from pipeline.streams.testing import TestDriver

READINGS = "sensor-readings"
METADATA = "sensor-metadata"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def reading(value: float, *, sensor: str = "temp-0001", seconds: int = 0) -> Reading:
    return Reading(
        sensor_id=sensor,
        sensor_type="temperature",
        value=value,
        unit="celsius",
        timestamp=NOW - timedelta(seconds=60 - seconds),
        location="site-01/floor-1",
        battery_level=80.0,
        signal_strength=-60.0,
    )


def driver() -> TestDriver:
    job = sensor_job(SensorJobConfig(topic=READINGS, metadata_topic=METADATA))
    return TestDriver(job, partitions=3, now=NOW)


def alerts(d: TestDriver) -> list[tuple[str, float | None, str]]:
    found: list[Alert] = d.results(ALERTS.name)
    return [(a.source, a.threshold, a.severity.value) for a in found]


def test_a_sensor_without_a_row_keeps_its_types_limits() -> None:
    d = driver()
    d.send(METADATA, SensorMetadata(sensor_id="temp-0002", high=20.0), key="temp-0002")
    d.send(READINGS, reading(30.0))  # temperature warns above 45
    d.send(READINGS, reading(50.0, seconds=1))
    d.run()

    assert alerts(d) == [("temp-0001", 45.0, "warning")]


def test_a_sensors_row_sets_its_limits() -> None:
    d = driver()
    d.send(METADATA, SensorMetadata(sensor_id="temp-0001", high=25.0), key="temp-0001")
    d.send(READINGS, reading(30.0))
    d.send(READINGS, reading(80.0, seconds=1))  # the type's critical_high (70) still holds
    d.run()

    assert alerts(d) == [("temp-0001", 25.0, "warning"), ("temp-0001", 70.0, "critical")]


def test_an_updated_row_applies_to_the_readings_processed_after_it() -> None:
    d = driver()
    d.send(METADATA, SensorMetadata(sensor_id="temp-0001", high=25.0), key="temp-0001")
    d.send(READINGS, reading(30.0))
    d.run()
    d.send(METADATA, SensorMetadata(sensor_id="temp-0001", high=35.0), key="temp-0001")
    d.send(READINGS, reading(30.0, seconds=1))
    d.send(READINGS, reading(40.0, seconds=2))
    d.run()

    assert alerts(d) == [("temp-0001", 25.0, "warning"), ("temp-0001", 35.0, "warning")]


def test_a_deleted_row_brings_the_types_limits_back() -> None:
    d = driver()
    d.send(METADATA, SensorMetadata(sensor_id="temp-0001", high=25.0), key="temp-0001")
    d.send(READINGS, reading(30.0))
    d.run()
    d.send(METADATA, None, key="temp-0001")
    d.send(READINGS, reading(30.0, seconds=1))
    d.send(READINGS, reading(46.0, seconds=2))
    d.run()

    assert alerts(d) == [("temp-0001", 25.0, "warning"), ("temp-0001", 45.0, "warning")]


def test_an_alert_id_depends_on_the_reading_not_on_whose_limits_it_broke() -> None:
    d = driver()
    d.send(METADATA, SensorMetadata(sensor_id="temp-0001", high=25.0), key="temp-0001")
    r = reading(30.0)
    d.send(READINGS, r)
    d.run()

    (alert,) = d.results(ALERTS.name)
    assert alert.alert_id == alert_id_for("temp-0001", r.timestamp, AlertKind.THRESHOLD_HIGH)
    assert alert.severity is Severity.WARNING


def test_without_a_metadata_topic_the_job_joins_no_table() -> None:
    job = sensor_job(SensorJobConfig(topic=READINGS))

    assert job.global_tables == {}
    assert "join_global:sensor metadata" not in [n.id for n in job.plan().nodes]


def debezium_row(sensor_id: str, **limits: float | None) -> tuple[bytes, bytes]:
    """A row as Debezium writes it (connectors/sensor-metadata.json): key, value."""
    return (
        json.dumps({"sensor_id": sensor_id}).encode(),
        json.dumps({"sensor_id": sensor_id, "location": None, **limits}).encode(),
    )


async def test_the_runtime_binds_the_table_read_from_debeziums_records() -> None:
    log = InMemoryEventLog()
    await log.ensure_topics([TopicSpec(name=METADATA, partitions=1)])
    await log.publish(METADATA, *debezium_row("temp-0001", high=25.0))
    job = sensor_job(SensorJobConfig(topic=READINGS, metadata_topic=METADATA))
    spec = job.global_tables[METADATA]

    async def look_up() -> SensorMetadata | None:
        assert spec.lookup is not None
        return spec.lookup("temp-0001")  # type: ignore[no-any-return]

    row = await with_global_tables(job, log, {METADATA: SENSOR_METADATA}, look_up)

    assert row == SensorMetadata(sensor_id="temp-0001", high=25.0)


async def test_a_job_whose_global_table_has_no_codec_does_not_start() -> None:
    job = sensor_job(SensorJobConfig(topic=READINGS, metadata_topic=METADATA))

    with pytest.raises(
        ConfigurationError, match=r"no table codec for topics \['sensor-metadata'\]"
    ):
        await GlobalTables.start(job, InMemoryEventLog(), {})
