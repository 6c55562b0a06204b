"""The sensors worker with its time-series sinks on the real stack (Kafka, PostgreSQL, the
registry and the stack's time-series server), killed with SIGKILL mid-stream and restarted:
every reading is one point, every sensor-minute one point, read back through the server's
export API."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.adapters.clock import ManualClock
from pipeline.application.generators.production import planned_readings
from pipeline.application.generators.sensors import SensorFleetConfig
from pipeline.domain import Reading
from pipeline.domain.time import window_start
from pipeline.entrypoints.bootstrap import Pipeline, bootstrap
from pipeline.entrypoints.settings import Settings
from pipeline.jobs.sensor_points import AGGREGATE_MEASUREMENT, READING_MEASUREMENT
from tests.integration.conftest import settings_env
from tests.timeseries import stored_points, timeseries_url

pytestmark = pytest.mark.integration


def run_readings(run: str, count: int) -> list[Reading]:
    """Generated readings of sensors named for this run only (the server is shared)."""
    now = datetime.now(UTC).replace(microsecond=0)
    fleet = SensorFleetConfig(sensors=40, anomaly_rate=0.02)
    stream = planned_readings(seed=11, now=now, count=count, rate=0, fleet=fleet)
    return [replace(g.event, sensor_id=f"{run}-{g.event.sensor_id}") for g in stream]


def to_millisecond(at: datetime) -> datetime:
    """`at` as the time-series keeps it (points are stored to the millisecond)."""
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


async def publish(pipeline: Pipeline, readings: list[Reading]) -> None:
    topic = pipeline.settings.topics.sensor_readings
    await pipeline.ensure_topics()
    for reading in readings:
        value = await pipeline.reading_codec.encode(reading)
        await pipeline.log.publish(topic, reading.sensor_id.encode(), value)
    await pipeline.log.flush()


async def test_killed_worker_restarted_leaves_every_reading_and_minute_as_one_point(
    settings: Settings,
) -> None:
    url = timeseries_url()
    run = f"ts{uuid.uuid4().hex[:8]}"
    count = 20_000
    readings = run_readings(run, count)
    pipeline = await bootstrap(settings, clock=ManualClock(readings[-1].timestamp))
    env = settings_env(settings) | {
        "PIPELINE_WORKER__BATCH_SIZE": "200",
        "PIPELINE_TIMESERIES__URL": url,
        "PIPELINE_TIMESERIES__BUCKET": "e2e",
    }
    worker_cmd = [sys.executable, "-m", "pipeline.entrypoints.worker", "sensors"]
    try:
        await publish(pipeline, readings)
        first = await asyncio.create_subprocess_exec(*worker_cmd, env=env)
        stored = 0
        async with asyncio.timeout(120):
            while stored < count // 10:
                await asyncio.sleep(0.05)
                stored = await pipeline.store.count_readings()
        os.kill(first.pid, signal.SIGKILL)
        await first.wait()
        assert 0 < await pipeline.store.count_readings() < count, "the kill must land mid-stream"

        second = await asyncio.create_subprocess_exec(*worker_cmd, "--until-caught-up", env=env)
        assert await asyncio.wait_for(second.wait(), 180) == 0

        assert await pipeline.store.count_readings() == count
        mine = f'sensor_id=~"{run}-.+"'
        points = await stored_points(url, READING_MEASUREMENT, mine)
        assert len(points) == count
        by_identity = {(p.tags["sensor_id"], p.time): p for p in points}
        assert len(by_identity) == count  # once per measurement, tags and time
        for reading in readings:
            point = by_identity[reading.sensor_id, to_millisecond(reading.timestamp)]
            assert point.tags["sensor_type"] == reading.sensor_type
            assert point.fields["value"] == pytest.approx(reading.value, rel=1e-9)
        minutes: dict[tuple[str, datetime], int] = {}
        for reading in readings:
            key = (reading.sensor_id, window_start(reading.timestamp, timedelta(minutes=1)))
            minutes[key] = minutes.get(key, 0) + 1
        aggregates = await stored_points(url, AGGREGATE_MEASUREMENT, mine)
        assert sorted((p.tags["sensor_id"], p.time) for p in aggregates) == sorted(minutes)
        for point in aggregates:
            # The server keeps one of the values a minute was written with (README).
            assert 1 <= point.fields["count"] <= minutes[point.tags["sensor_id"], point.time]
    finally:
        await pipeline.aclose()
