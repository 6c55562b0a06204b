"""`pipeline replay` of a job under Kafka authority, on the real stack: `sensor-aggregates`
is rewound to a time (its group's offsets and its window state together), and the next
`pipeline-worker` run emits, from there, exactly the aggregates a first run emitted —
a window already open at that time is not emitted again from part of its readings; while
a worker of the job runs, the replay refuses and changes nothing."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka.admin import AdminClient

from pipeline.domain import Reading
from pipeline.entrypoints.bootstrap import Pipeline, bootstrap
from pipeline.entrypoints.settings import (
    KafkaSettings,
    RegistrySettings,
    Settings,
    TopicSettings,
    WorkerSettings,
)
from tests.integration.conftest import settings_env
from tests.integration.test_kafka_exactly_once_crash import aggregates
from tests.services import KAFKA, REGISTRY, require_service

pytestmark = pytest.mark.integration

SENSORS = 6
MINUTES = 10
PER_MINUTE = 12
"""Readings per sensor and minute, 5 s apart."""


@pytest.fixture
async def pipeline() -> AsyncIterator[Pipeline]:
    """A pipeline on the real Kafka and registry with topics and groups of its own."""
    run = uuid.uuid4().hex[:10]
    settings = Settings(
        kafka=KafkaSettings(bootstrap_servers=require_service(KAFKA)),
        registry=RegistrySettings(url=require_service(REGISTRY)),
        topics=TopicSettings(
            sensor_readings=f"rewind-readings-{run}",
            sensor_aggregates=f"rewind-aggregates-{run}",
            system_alerts=f"rewind-alerts-{run}",
            ecommerce_events=f"rewind-shop-{run}",
            transactions=f"rewind-tx-{run}",
            social_posts=f"rewind-posts-{run}",
            sensor_readings_partitions=3,
        ),
        worker=WorkerSettings(group_id_prefix=f"rewind-{run}", batch_size=100),
    )
    pipeline = await bootstrap(settings, database=False)
    await pipeline.ensure_topics()
    yield pipeline
    await pipeline.aclose()
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    names = [t for t in admin.list_topics(timeout=10).topics if run in t]
    for future in admin.delete_topics(names, operation_timeout=20).values():
        future.exception()


def env(pipeline: Pipeline) -> dict[str, str]:
    return settings_env(pipeline.settings) | {
        "PIPELINE_TOPICS__SENSOR_AGGREGATES": pipeline.settings.topics.sensor_aggregates,
        "PIPELINE_TOPICS__SENSOR_READINGS_PARTITIONS": "3",
        "PIPELINE_WORKER__SENSOR_AGGREGATES_GRACE_S": "0",
        # No wall-clock closing: what closes is what the readings close, in every run.
        "PIPELINE_WORKER__IDLE_TIMEOUT_S": "3600",
    }


async def run(pipeline: Pipeline, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *args,
        env=env(pipeline),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 180)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def worker_until_caught_up(pipeline: Pipeline) -> None:
    code, _, err = await run(
        pipeline,
        *(sys.executable, "-m", "pipeline.entrypoints.worker", "sensor-aggregates"),
        "--until-caught-up",
    )
    assert code == 0, err


async def replay(pipeline: Pipeline, *args: str) -> tuple[int, str, str]:
    return await run(
        pipeline,
        *(sys.executable, "-m", "pipeline.entrypoints.cli", "replay", "sensor-aggregates"),
        *args,
    )


async def produce(pipeline: Pipeline, base: datetime) -> None:
    """Every sensor's readings, minute after minute, each stamped with its event time."""
    topic, codec = pipeline.settings.topics.sensor_readings, pipeline.reading_codec
    for minute in range(MINUTES):
        for n in range(PER_MINUTE):
            for sensor in range(SENSORS):
                at = base + timedelta(minutes=minute, seconds=5 * n)
                reading = Reading(
                    sensor_id=f"s-{sensor}",
                    sensor_type="temperature",
                    value=10.0 + n * (sensor + 1) + minute,
                    unit="celsius",
                    timestamp=at,
                    location="lab",
                )
                await pipeline.log.publish(
                    topic,
                    reading.sensor_id.encode(),
                    await codec.encode(reading),
                    timestamp_ms=int(at.timestamp() * 1000),
                )
    await pipeline.log.flush()


@pytest.fixture
def base() -> datetime:
    return (datetime.now(UTC) - timedelta(hours=1)).replace(second=0, microsecond=0)


async def test_a_rewound_job_emits_again_from_that_time_what_its_first_run_emitted(
    pipeline: Pipeline, base: datetime
) -> None:
    await produce(pipeline, base)
    await worker_until_caught_up(pipeline)
    first = await aggregates(pipeline)
    # Every minute but the last (still open) closed once per sensor.
    assert len(first) == SENSORS * (MINUTES - 1)

    at = base + timedelta(minutes=4, seconds=30)
    code, out, err = await replay(pipeline, "--from-time", at.isoformat())
    assert code == 0, err
    summary = json.loads(out)
    assert summary["group_id"] == pipeline.group_id("sensor-aggregates")
    assert summary["partial_partitions"] == [0, 1, 2]
    assert summary["state_entries_deleted"] > 0
    await worker_until_caught_up(pipeline)

    again = Counter(await aggregates(pipeline)) - Counter(first)
    # Minute 4 was open at 4:30: it is not emitted from its last half; minutes 5 to 8 are
    # emitted again exactly as the first run emitted them.
    assert again == Counter(a for a in first if a.window_start >= base + timedelta(minutes=5))
    assert again.total() == SENSORS * 4


async def test_replay_refuses_while_a_worker_of_the_job_runs_and_changes_nothing(
    pipeline: Pipeline, base: datetime
) -> None:
    await produce(pipeline, base)
    await worker_until_caught_up(pipeline)
    before = Counter(await aggregates(pipeline))
    worker = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "pipeline.entrypoints.worker", "sensor-aggregates"),
        env=env(pipeline),
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        group = pipeline.group_id("sensor-aggregates")
        admin = AdminClient({"bootstrap.servers": pipeline.settings.kafka.bootstrap_servers})
        for _ in range(120):  # until it joined the group
            described = admin.describe_consumer_groups([group])[group].result()
            if described.members:
                break
            await asyncio.sleep(0.5)
        code, _, err = await replay(pipeline, "--from-offset", "0")
        assert code == 1
        assert "active member" in err
        assert err.count("\n") == 1
    finally:
        worker.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(worker.wait(), 60) == 0
    await worker_until_caught_up(pipeline)
    assert Counter(await aggregates(pipeline)) == before  # nothing was emitted again
