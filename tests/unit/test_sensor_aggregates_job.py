"""The registered `sensor-aggregates` job, wired by the composition root: readings in, one
final Avro `SensorAggregate` per sensor and minute out on its topic, under Kafka authority
(on the in-memory log)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.adapters.avro import aggregate_codec
from pipeline.adapters.clock import ManualClock
from pipeline.adapters.memory import InMemoryEventLog, InMemorySchemaRegistry, InMemorySensorStore
from pipeline.application.errors import ConfigurationError
from pipeline.application.ports import Record, TopicPartition
from pipeline.domain import Reading
from pipeline.domain.windows import WindowAggregate
from pipeline.entrypoints.bootstrap import Pipeline, bootstrap
from pipeline.entrypoints.jobs import JOBS
from pipeline.entrypoints.replay import plan_replay, replay_job
from pipeline.entrypoints.settings import Settings
from pipeline.entrypoints.worker import run_named_job

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.fixture
async def pipeline() -> Pipeline:
    settings = Settings.model_validate({"worker": {"sensor_aggregates_grace_s": 0}})
    return await bootstrap(
        settings,
        log=InMemoryEventLog(),
        registry=InMemorySchemaRegistry(),
        store=InMemorySensorStore(),
        clock=ManualClock(T0 + timedelta(minutes=10)),
    )


def reading(sensor: str, at: datetime, value: float) -> Reading:
    return Reading(
        sensor_id=sensor,
        sensor_type="temperature",
        value=value,
        unit="celsius",
        timestamp=at,
        location="hall",
    )


async def publish(pipeline: Pipeline, readings: list[Reading]) -> None:
    topic = pipeline.settings.topics.sensor_readings
    for r in readings:
        await pipeline.log.publish(
            topic, r.sensor_id.encode(), await pipeline.reading_codec.encode(r)
        )
    await pipeline.log.flush()


async def records_of(pipeline: Pipeline, topic: str) -> list[Record]:
    ends = await pipeline.log.end_offsets(topic)
    reader = pipeline.log.reader(
        group_id="check", start={TopicPartition(topic, p): 0 for p in ends}
    )
    found: list[Record] = []
    while len(found) < sum(ends.values()):
        found += await reader.poll(1000, 0.01)
    await reader.close()
    return found


async def test_each_sensor_minute_leaves_once_as_an_avro_aggregate_keyed_by_sensor(
    pipeline: Pipeline,
) -> None:
    await pipeline.ensure_topics()
    await publish(
        pipeline,
        [
            reading("s-1", T0 + timedelta(seconds=10), 20.0),
            reading("s-1", T0 + timedelta(seconds=50), 22.0),
            reading("s-2", T0 + timedelta(seconds=30), 5.0),
            reading("s-1", T0 + timedelta(minutes=1, seconds=5), 30.0),
            reading("s-2", T0 + timedelta(minutes=1, seconds=5), 6.0),
            reading("s-1", T0 + timedelta(seconds=20), 9_999.0),  # out of range: a dead letter
        ],
    )
    # A second run: minute 1 closes only now, with its state restored from the changelog.
    await asyncio.wait_for(run_named_job(pipeline, "sensor-aggregates", until_caught_up=True), 5)
    await publish(pipeline, [reading(s, T0 + timedelta(minutes=2), 1.0) for s in ("s-1", "s-2")])

    await asyncio.wait_for(run_named_job(pipeline, "sensor-aggregates", until_caught_up=True), 5)

    topic = pipeline.settings.topics.sensor_aggregates
    codec = aggregate_codec(pipeline.registry, topic)
    records = await records_of(pipeline, topic)
    decoded = await codec.decode_many([r.value for r in records])
    found = {
        (a.sensor_id, a.window_start - T0): a for a in decoded if isinstance(a, WindowAggregate)
    }
    assert len(found) == len(records) == 4
    assert [r.key for r in records if r.key not in (b"s-1", b"s-2")] == []
    first = found[("s-1", timedelta(0))]
    assert (first.count, first.min, first.max, first.mean) == (2, 20.0, 22.0, 21.0)
    assert found[("s-2", timedelta(0))].count == 1
    assert found[("s-1", timedelta(minutes=1))].count == 1
    assert found[("s-2", timedelta(minutes=1))].mean == 6.0
    dead = await records_of(pipeline, f"{pipeline.settings.topics.sensor_readings}.dlq")
    assert len(dead) == 1


def test_the_job_is_registered_under_kafka_authority_and_the_sensors_job_is_not() -> None:
    settings = Settings()

    assert JOBS["sensor-aggregates"].authority(settings) == "kafka"
    assert JOBS["sensors"].authority(settings) == "database"


async def test_a_job_writing_to_topics_is_not_replayed_as_a_group_of_its_own(
    pipeline: Pipeline,
) -> None:
    await pipeline.ensure_topics()
    topic = pipeline.settings.topics.sensor_readings
    await publish(pipeline, [reading("s-1", T0, 1.0)])
    plan = plan_replay(topic, await pipeline.log.end_offsets(topic), from_offset=0)

    with pytest.raises(ConfigurationError, match="rewinding its own group"):
        await replay_job(pipeline, "sensor-aggregates", plan, group_id="replay")
