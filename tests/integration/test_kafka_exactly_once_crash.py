"""Kafka to Kafka, exactly once, through a crash, on the real stack: `pipeline-worker
sensor-aggregates` (a registered job under Kafka authority) SIGKILLed mid-stream and
restarted leaves every sensor-minute's aggregate exactly once for read_committed readers,
each counting exactly the readings of its minute (its window state, open at the kill, came
back from the changelog, neither losing nor repeating a reading); a zombie (an old instance
resumed after a newer one took over its member id) is fenced and stops, exit 1."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka.admin import AdminClient

from pipeline.adapters.avro import aggregate_codec
from pipeline.domain import Reading
from pipeline.domain.windows import WindowAggregate
from pipeline.entrypoints.bootstrap import Pipeline, bootstrap
from pipeline.entrypoints.settings import (
    KafkaSettings,
    RegistrySettings,
    Settings,
    TopicSettings,
    WorkerSettings,
)
from tests.integration.conftest import settings_env
from tests.integration.topics import read_committed
from tests.services import KAFKA, REGISTRY, require_service

pytestmark = pytest.mark.integration

SENSORS = 12
PER_MINUTE = 20
"""Readings per sensor and minute, 3 s apart, valued 10, 11, …, 29."""
RATE = 800
"""Readings produced per second: the stream outlasts the worker's first life."""


@pytest.fixture
async def pipeline() -> AsyncIterator[Pipeline]:
    """A pipeline on the real Kafka and registry (no database: the job needs none), with
    topics and groups no other test uses; they are deleted afterwards."""
    run = uuid.uuid4().hex[:10]
    settings = Settings(
        kafka=KafkaSettings(
            bootstrap_servers=require_service(KAFKA),
            options={"session.timeout.ms": "6000", "heartbeat.interval.ms": "1000"},
        ),
        registry=RegistrySettings(url=require_service(REGISTRY)),
        topics=TopicSettings(
            sensor_readings=f"eos-readings-{run}",
            sensor_aggregates=f"eos-aggregates-{run}",
            system_alerts=f"eos-alerts-{run}",
            ecommerce_events=f"eos-shop-{run}",
            transactions=f"eos-tx-{run}",
            social_posts=f"eos-posts-{run}",
            sensor_readings_partitions=3,
        ),
        worker=WorkerSettings(group_id_prefix=f"eos-{run}", batch_size=100, batch_timeout=0.2),
    )
    pipeline = await bootstrap(settings, database=False)
    await pipeline.ensure_topics()
    yield pipeline
    await pipeline.aclose()
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    names = [t for t in admin.list_topics(timeout=10).topics if run in t]
    for future in admin.delete_topics(names, operation_timeout=20).values():
        future.exception()


def worker_env(pipeline: Pipeline, instance: str, session_s: int) -> dict[str, str]:
    options = {"session.timeout.ms": str(session_s * 1000), "heartbeat.interval.ms": "1000"}
    return settings_env(pipeline.settings) | {
        "PIPELINE_KAFKA__OPTIONS": json.dumps(options),
        "PIPELINE_TOPICS__SENSOR_AGGREGATES": pipeline.settings.topics.sensor_aggregates,
        "PIPELINE_TOPICS__SENSOR_READINGS_PARTITIONS": "3",
        "PIPELINE_WORKER__BATCH_SIZE": "100",
        "PIPELINE_WORKER__INSTANCE_ID": instance,
        "PIPELINE_WORKER__SENSOR_AGGREGATES_GRACE_S": "0",
        # The last minute of every sensor closes once its partition is read to its end and
        # quiet for 15 s.
        "PIPELINE_WORKER__IDLE_TIMEOUT_S": "15",
    }


async def start_worker(
    pipeline: Pipeline, instance: str, *, stderr: int | None = None, session_s: int = 6
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "pipeline.entrypoints.worker", "sensor-aggregates"),
        env=worker_env(pipeline, instance, session_s),
        stderr=stderr,
    )


def readings(base: datetime, minutes: range) -> list[Reading]:
    """PER_MINUTE readings of each sensor in each minute, in event-time order."""
    return [
        Reading(
            sensor_id=f"s-{sensor:02d}",
            sensor_type="temperature",
            value=10.0 + n,
            unit="celsius",
            timestamp=base + timedelta(minutes=minute, seconds=3 * n),
            location="lab",
        )
        for minute in minutes
        for n in range(PER_MINUTE)
        for sensor in range(SENSORS)
    ]


async def produce(pipeline: Pipeline, stream: list[Reading]) -> None:
    """`stream`, keyed by sensor, at about RATE readings per second."""
    topic, codec = pipeline.settings.topics.sensor_readings, pipeline.reading_codec
    step = RATE // 20
    for start in range(0, len(stream), step):
        for r in stream[start : start + step]:
            await pipeline.log.publish(topic, r.sensor_id.encode(), await codec.encode(r))
        await pipeline.log.flush()
        await asyncio.sleep(1 / 20)


async def committed_outputs(pipeline: Pipeline) -> int:
    topic = pipeline.settings.topics.sensor_aggregates
    bootstrap_servers = pipeline.settings.kafka.bootstrap_servers or ""
    return len(await asyncio.to_thread(read_committed, bootstrap_servers, topic))


async def wait_for_outputs(pipeline: Pipeline, at_least: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (seen := await committed_outputs(pipeline)) < at_least:
        assert time.monotonic() < deadline, f"{seen} of {at_least} outputs after {timeout} s"
        await asyncio.sleep(0.3)


async def aggregates(pipeline: Pipeline) -> list[WindowAggregate]:
    topic = pipeline.settings.topics.sensor_aggregates
    records = await asyncio.to_thread(
        read_committed, pipeline.settings.kafka.bootstrap_servers or "", topic
    )
    assert all(r.key is not None and r.value is not None for r in records)
    decoded = await aggregate_codec(pipeline.registry, topic).decode_many(
        [r.value for r in records]
    )
    assert all(isinstance(a, WindowAggregate) for a in decoded), decoded
    return decoded


def assert_each_minute_once_with_all_its_readings(
    found: list[WindowAggregate], base: datetime, minutes: int
) -> None:
    per_window = Counter((a.sensor_id, a.window_start - base) for a in found)
    assert per_window == Counter(
        {(f"s-{s:02d}", timedelta(minutes=m)): 1 for s in range(SENSORS) for m in range(minutes)}
    )
    assert {(a.count, a.min, a.max, a.mean) for a in found} == {(PER_MINUTE, 10.0, 29.0, 19.5)}


async def stop(worker: asyncio.subprocess.Process) -> None:
    worker.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(worker.wait(), 30) == 0


@pytest.fixture
def base() -> datetime:
    """Event times start here: an hour ago, on a minute."""
    return (datetime.now(UTC) - timedelta(hours=1)).replace(second=0, microsecond=0)


async def test_a_worker_killed_mid_stream_and_restarted_writes_every_aggregate_exactly_once(
    pipeline: Pipeline, base: datetime
) -> None:
    minutes = 40
    first = await start_worker(pipeline, "worker-1")
    killed = asyncio.Event()

    async def held_stream() -> None:
        # The second half waits for the kill, so the kill falls mid-stream however long the
        # worker takes to start on a loaded machine.
        await produce(pipeline, readings(base, range(minutes // 2)))
        await killed.wait()
        await produce(pipeline, readings(base, range(minutes // 2, minutes)))

    stream = asyncio.create_task(held_stream())
    restarted = None
    try:
        await wait_for_outputs(pipeline, 2 * SENSORS, timeout=120)
        first.send_signal(signal.SIGKILL)
        await first.wait()
        killed.set()
        restarted = await start_worker(pipeline, "worker-1")
        await stream
        await wait_for_outputs(pipeline, SENSORS * minutes, timeout=120)
        await stop(restarted)
    finally:
        stream.cancel()
        for worker in (first, restarted):
            if worker is not None and worker.returncode is None:
                worker.kill()

    assert_each_minute_once_with_all_its_readings(await aggregates(pipeline), base, minutes)


async def test_a_zombie_resumed_after_a_newer_instance_took_its_member_id_stops_fenced(
    pipeline: Pipeline, base: datetime
) -> None:
    # A session longer than the pause: the zombie wakes up still believing it is a member.
    # (Woken after its session expired, it would rejoin under its instance id, and Kafka
    # would hand the membership back to it, fencing the newer one instead.)
    zombie = await start_worker(pipeline, "worker-1", stderr=asyncio.subprocess.PIPE, session_s=120)
    newer = None
    try:
        await produce(pipeline, readings(base, range(10)))
        await wait_for_outputs(pipeline, 2 * SENSORS, timeout=60)
        zombie.send_signal(signal.SIGSTOP)  # paused (GC, a VM migration): it does not know
        newer = await start_worker(pipeline, "worker-1", session_s=120)
        await produce(pipeline, readings(base, range(10, 20)))
        await wait_for_outputs(pipeline, 15 * SENSORS, timeout=120)
        zombie.send_signal(signal.SIGCONT)

        assert await asyncio.wait_for(zombie.wait(), 60) == 1
        assert zombie.stderr is not None
        stderr = (await zombie.stderr.read()).decode()
        assert stderr.splitlines()[-1].startswith("pipeline-worker: error:"), stderr
        assert "fenced" in stderr.splitlines()[-1], stderr
        await wait_for_outputs(pipeline, 20 * SENSORS, timeout=60)
        await stop(newer)
    finally:
        for worker in (zombie, newer):
            if worker is not None and worker.returncode is None:
                worker.send_signal(signal.SIGCONT)
                worker.kill()

    assert_each_minute_once_with_all_its_readings(await aggregates(pipeline), base, 20)
