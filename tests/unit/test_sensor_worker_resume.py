"""Where the sensors worker resumes: from the offsets stored with its last batch, and never
from offsets past the end of the log."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.adapters.clock import ManualClock
from pipeline.adapters.memory import (
    InMemoryEventLog,
    InMemorySchemaRegistry,
    InMemorySensorStore,
)
from pipeline.application.errors import ConfigurationError
from pipeline.application.ports import TopicPartition
from pipeline.application.ports.checkpoint import CheckpointBatch
from pipeline.entrypoints.bootstrap import Pipeline, bootstrap
from pipeline.entrypoints.replay import plan_replay, replay_job
from pipeline.entrypoints.sensors import produce_sensors
from pipeline.entrypoints.settings import Settings
from pipeline.entrypoints.worker import run_named_job
from tests.faults import FaultyCheckpoint
from tests.projection import checkpoint_for


@pytest.fixture
async def pipeline(clock: ManualClock) -> Pipeline:
    return await bootstrap(
        Settings(),
        log=InMemoryEventLog(),
        registry=InMemorySchemaRegistry(),
        store=InMemorySensorStore(),
        clock=clock,
    )


async def test_worker_resumes_after_the_offsets_stored_with_its_last_batch(
    pipeline: Pipeline,
) -> None:
    await produce_sensors(pipeline, count=300, rate=0, seed=1, sensors=10)
    first = await asyncio.wait_for(run_named_job(pipeline, "sensors", until_caught_up=True), 10)
    await produce_sensors(pipeline, count=120, rate=0, seed=2, sensors=10)

    second = await asyncio.wait_for(run_named_job(pipeline, "sensors", until_caught_up=True), 10)

    assert (first.records, second.records) == (300, 120)
    assert await pipeline.store.count_readings() == 420


async def test_worker_refuses_offsets_stored_past_the_end_of_the_log(
    pipeline: Pipeline,
) -> None:
    topic = pipeline.settings.topics.sensor_readings
    await pipeline.ensure_topics()
    await produce_sensors(pipeline, count=60, rate=0, seed=1, sensors=10)
    # A database kept from a log that had more records (the topic was recreated since).
    await pipeline.checkpoint.commit(
        CheckpointBatch(
            group_id=pipeline.group_id("sensors"),
            start_offsets={},
            next_offsets={TopicPartition(topic, p): 1_000 for p in range(6)},
        )
    )

    with pytest.raises(ConfigurationError, match="past the end of the log"):
        await asyncio.wait_for(run_named_job(pipeline, "sensors", until_caught_up=True), 10)
    assert await pipeline.store.count_readings() == 0


def test_dead_letter_topic_is_partitioned_like_its_topic_and_never_expires(
    pipeline: Pipeline,
) -> None:
    specs = {spec.name: spec for spec in pipeline.topic_specs()}
    readings = pipeline.settings.topics.sensor_readings

    dlq = specs[f"{readings}.dlq"]

    assert dlq.partitions == specs[readings].partitions
    # Dead letters keep their original (possibly old) timestamps: time-based retention
    # would delete them as soon as they are written.
    assert dlq.config["retention.ms"] == "-1"


async def test_replay_retries_a_transient_store_failure_and_covers_the_whole_plan(
    clock: ManualClock,
) -> None:
    store = InMemorySensorStore()
    pipeline = await bootstrap(
        Settings(), log=InMemoryEventLog(), registry=InMemorySchemaRegistry(), store=store,
        checkpoint=FaultyCheckpoint(checkpoint_for(store), failures=1, only_with_rows=True),
        clock=clock,
    )  # fmt: skip
    await produce_sensors(pipeline, count=200, rate=0, seed=1, sensors=10)
    topic = pipeline.settings.topics.sensor_readings
    plan = plan_replay(topic, await pipeline.log.end_offsets(topic), from_offset=0)

    stats = await asyncio.wait_for(replay_job(pipeline, "sensors", plan, group_id="replay"), 30)

    assert stats.records == 200
    assert stats.retries == 1
    assert await store.count_readings() == 200
