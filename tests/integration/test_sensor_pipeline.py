"""End to end on the real stack: generator → Kafka (Avro, schema registry) → worker →
PostgreSQL, including a worker killed with SIGKILL mid-stream and idempotent replays."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.adapters.clock import ManualClock
from pipeline.application.generators.production import planned_readings
from pipeline.application.generators.sensors import SensorFleetConfig
from pipeline.application.ports import TopicPartition
from pipeline.domain import Reading, WindowAggregate, check_thresholds
from pipeline.domain.time import window_start
from pipeline.entrypoints.bootstrap import Pipeline, bootstrap
from pipeline.entrypoints.replay import plan_replay, replay_job
from pipeline.entrypoints.sensors import (
    produce_sensors,
)
from pipeline.entrypoints.settings import Settings
from pipeline.entrypoints.worker import run_named_job
from pipeline.streams.aggregates import RunningStats
from tests.integration.conftest import settings_env
from tests.integration.topics import assert_stored_offsets_at_ends

pytestmark = pytest.mark.integration

SEED = 7
SENSORS = 40


def expected_readings(now: datetime, count: int, rate: float = 0) -> list[Reading]:
    """The readings `produce_sensors` publishes for this seed, count, rate and clock."""
    fleet = SensorFleetConfig(sensors=SENSORS, anomaly_rate=0.02)
    stream = planned_readings(seed=SEED, now=now, count=count, rate=rate, fleet=fleet)
    return [g.event for g in stream]


async def produce(pipeline: Pipeline, count: int, rate: float = 0) -> None:
    sent = await produce_sensors(
        pipeline, count=count, rate=rate, seed=SEED, sensors=SENSORS, anomaly_rate=0.02
    )
    assert sent == count


async def all_aggregates(pipeline: Pipeline, readings: list[Reading]) -> list[WindowAggregate]:
    start = min(r.timestamp for r in readings) - timedelta(minutes=1)
    end = max(r.timestamp for r in readings) + timedelta(minutes=1)
    result: list[WindowAggregate] = []
    for sensor in sorted({r.sensor_id for r in readings}):
        result += await pipeline.store.aggregates(sensor, start, end)
    return result


def aggregate_window(readings: list[Reading]) -> list[WindowAggregate]:
    """The one-minute statistics of `readings` per sensor, computed here in one pass, ordered
    by (sensor_id, window_start): what the job's windows must have stored."""
    stats: dict[tuple[str, datetime], tuple[str, RunningStats]] = {}
    for reading in readings:
        start = window_start(reading.timestamp, timedelta(minutes=1))
        entry = stats.setdefault((reading.sensor_id, start), (reading.sensor_type, RunningStats()))
        entry[1].add(reading.value)
    return [
        WindowAggregate(
            sensor_id=sensor_id,
            sensor_type=kind,
            window_start=start,
            window_end=start + timedelta(minutes=1),
            count=s.count,
            min=s.min,
            max=s.max,
            mean=s.mean,
            stddev=s.stddev,
        )
        for (sensor_id, start), (kind, s) in sorted(stats.items())
    ]


def assert_same_aggregates(actual: list[WindowAggregate], expected: list[WindowAggregate]) -> None:
    assert [(a.sensor_id, a.window_start, a.count) for a in actual] == [
        (e.sensor_id, e.window_start, e.count) for e in expected
    ]
    for a, e in zip(actual, expected, strict=True):
        assert a.min == e.min
        assert a.max == e.max
        assert a.mean == pytest.approx(e.mean, rel=1e-9)
        assert a.stddev == pytest.approx(e.stddev, rel=1e-6, abs=1e-9)


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


async def test_every_reading_lands_once_with_exact_aggregates_and_alerts(
    settings: Settings, now: datetime
) -> None:
    count = 4_000
    pipeline = await bootstrap(settings, clock=ManualClock(now))
    try:
        await produce(pipeline, count)

        stats = await asyncio.wait_for(
            run_named_job(pipeline, "sensors", until_caught_up=True), 120
        )

        readings = expected_readings(now, count)
        assert stats.records == count
        assert await pipeline.store.count_readings() == count
        assert_same_aggregates(await all_aggregates(pipeline, readings), aggregate_window(readings))
        expected_alerts = {
            a.alert_id for r in readings if (a := check_thresholds(r, settings.domain_thresholds()))
        }
        assert expected_alerts, "the seeded stream is expected to cross a threshold"
        stored = {a.alert_id for a in await pipeline.store.alerts(limit=10_000)}
        assert stored == expected_alerts
        published = await pipeline.log.end_offsets(settings.topics.system_alerts)
        assert sum(published.values()) == len(expected_alerts)
        assert await pipeline.store.unpublished_alerts(10) == []
    finally:
        await pipeline.aclose()


async def test_worker_killed_mid_stream_resumes_and_stores_every_reading_exactly_once(
    settings: Settings, now: datetime
) -> None:
    count = 30_000
    pipeline = await bootstrap(settings, clock=ManualClock(now))
    env = settings_env(settings) | {"PIPELINE_WORKER__BATCH_SIZE": "200"}
    worker_cmd = [sys.executable, "-m", "pipeline.entrypoints.worker", "sensors"]
    try:
        await produce(pipeline, count)
        first = await asyncio.create_subprocess_exec(*worker_cmd, env=env)
        stored = 0
        async with asyncio.timeout(120):
            while stored < count // 10:
                await asyncio.sleep(0.05)
                stored = await pipeline.store.count_readings()
        os.kill(first.pid, signal.SIGKILL)
        await first.wait()
        at_kill = await pipeline.store.count_readings()
        assert 0 < at_kill < count, "the kill must land mid-stream"

        second = await asyncio.create_subprocess_exec(*worker_cmd, "--until-caught-up", env=env)
        assert await asyncio.wait_for(second.wait(), 180) == 0

        readings = expected_readings(now, count)
        assert await pipeline.store.count_readings() == count
        aggregates = await all_aggregates(pipeline, readings)
        assert sum(a.count for a in aggregates) == count
        assert_same_aggregates(aggregates, aggregate_window(readings))
        topic = settings.topics.sensor_readings
        await assert_stored_offsets_at_ends(pipeline, "sensors", topic)
    finally:
        await pipeline.aclose()


async def test_replaying_twice_leaves_the_same_rows(settings: Settings, now: datetime) -> None:
    count = 3_000
    pipeline = await bootstrap(settings, clock=ManualClock(now))
    try:
        await produce(pipeline, count)
        await asyncio.wait_for(run_named_job(pipeline, "sensors", until_caught_up=True), 120)
        readings = expected_readings(now, count)
        before = await all_aggregates(pipeline, readings)
        alerts_before = await pipeline.store.alerts(limit=10_000)
        topic = settings.topics.sensor_readings
        plan = plan_replay(topic, await pipeline.log.end_offsets(topic), from_offset=0)

        first = await replay_job(pipeline, "sensors", plan, group_id="replay-a")
        second = await replay_job(pipeline, "sensors", plan, group_id="replay-b")

        assert first.records == second.records == count
        assert first.written.get("readings", 0) == second.written.get("readings", 0) == 0
        assert first.written.get("aggregates_1m", 0) == 0  # the same values: nothing changed
        assert await pipeline.store.count_readings() == count
        assert await all_aggregates(pipeline, readings) == before
        assert await pipeline.store.alerts(limit=10_000) == alerts_before
    finally:
        await pipeline.aclose()


async def test_two_workers_in_one_group_share_the_partitions_and_store_everything_once(
    settings: Settings, now: datetime
) -> None:
    count, rate = 6_000, 1_500.0
    pipeline = await bootstrap(settings, clock=ManualClock(now))
    other = await bootstrap(settings)
    stop = asyncio.Event()
    try:
        await pipeline.ensure_topics()
        workers = [
            asyncio.create_task(run_named_job(p, "sensors", stop=stop)) for p in (pipeline, other)
        ]
        # Produced over about four seconds, so both members join while records still arrive.
        await produce(pipeline, count, rate=rate)
        async with asyncio.timeout(120):
            while await pipeline.store.count_readings() < count:
                await asyncio.sleep(0.1)
        stop.set()
        stats = await asyncio.wait_for(asyncio.gather(*workers), 30)

        assert all(s.records > 0 for s in stats), "both members must get partitions"
        assert sum(s.written["readings"] for s in stats) == count
        assert await pipeline.store.count_readings() == count
        readings = expected_readings(now, count, rate=rate)
        aggregates = await all_aggregates(pipeline, readings)
        assert_same_aggregates(aggregates, aggregate_window(readings))
    finally:
        stop.set()
        await other.aclose()
        await pipeline.aclose()


async def test_sigterm_finishes_the_batch_in_hand_commits_and_exits_cleanly(
    settings: Settings, now: datetime
) -> None:
    count = 20_000
    pipeline = await bootstrap(settings, clock=ManualClock(now))
    env = settings_env(settings) | {"PIPELINE_WORKER__BATCH_SIZE": "500"}
    try:
        await produce(pipeline, count)
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pipeline.entrypoints.worker", "sensors", env=env
        )
        async with asyncio.timeout(120):
            while await pipeline.store.count_readings() == 0:
                await asyncio.sleep(0.05)

        worker.send_signal(signal.SIGTERM)

        assert await asyncio.wait_for(worker.wait(), 30) == 0
        topic = settings.topics.sensor_readings
        ends = await pipeline.log.end_offsets(topic)
        offsets = await pipeline.checkpoint.stored_offsets(
            pipeline.group_id("sensors"), [TopicPartition(topic, p) for p in ends]
        )
        # Every record consumed is a valid reading: the rows are exactly the records up to
        # the stored offsets, so no batch was left half done.
        assert sum(offsets.values()) == await pipeline.store.count_readings()
    finally:
        await pipeline.aclose()
