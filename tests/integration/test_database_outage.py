"""Transient failures on the real stack (Kafka, schema registry, PostgreSQL).

- PostgreSQL stopped for 20 s in the middle of a stream: the worker pauses its partitions and
  keeps polling (it stays in its group), no record is lost or sent to a retry topic or the
  DLQ, and the backlog drains by itself once the database is back. The database is a private
  cluster of this test: the shared stack's server is never stopped.
- A batch that keeps failing while the database answers (a deadlock, injected by wrapping
  the real store) goes through `<topic>.retry.1` and lands in PostgreSQL exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

import asyncpg
import pytest
from confluent_kafka.admin import AdminClient
from litestar.testing import AsyncTestClient
from sqlalchemy.engine import make_url

from pipeline.adapters.sql.migrate import upgrade
from pipeline.application.dead_letters import dead_letter_topic
from pipeline.application.errors import StoreUnavailable
from pipeline.application.lag import consumer_lag
from pipeline.application.ports import DeadLetterFilter
from pipeline.application.retries import H_ATTEMPTS, H_OFFSET, H_TOPIC, retry_topic
from pipeline.application.runtime.stats import WorkerStats
from pipeline.entrypoints.api import create_app
from pipeline.entrypoints.bootstrap import Pipeline, bootstrap
from pipeline.entrypoints.sensors import produce_sensors
from pipeline.entrypoints.settings import RetrySettings, Settings
from pipeline.entrypoints.worker import run_named_job
from tests.faults import FaultyCheckpoint
from tests.integration.private_postgres import PrivatePostgres
from tests.integration.topics import read_topic

pytestmark = pytest.mark.integration

OUTAGE_S = 20.0
COUNT = 24_000
RATE = 800.0
"""Readings per second: the stream lasts 30 s, the outage starts 4 s in."""
DRAIN_DEADLINE_S = 150.0
"""How long the backlog may take to drain once the database is back: the test waits for the
last reading, this only bounds a failure (a loaded 2-core machine drains far slower than an
idle one, and the figure is not what the test is about)."""


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    cluster = PrivatePostgres()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
async def database_url(private_postgres: PrivatePostgres) -> str:
    """The tests of this module run on their private cluster, migrated to head."""
    await asyncio.to_thread(upgrade, private_postgres.url)
    return private_postgres.url


def fast_retries(settings: Settings, **retry: object) -> Settings:
    values: dict[str, object] = {"initial_backoff_s": 0.1, "max_backoff_s": 1.0}
    values.update(retry)
    return settings.model_copy(update={"retry": RetrySettings(**values)})


async def aggregated_count(url: str) -> int:
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        return int(
            await connection.fetchval("SELECT coalesce(sum(count), 0) FROM reading_aggregates_1m")
        )
    finally:
        await connection.close()


async def group_members(settings: Settings, group: str) -> set[str]:
    """Member ids of consumer group `group`, from the broker."""
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers or ""})

    def describe() -> set[str]:
        description = admin.describe_consumer_groups([group])[group].result(timeout=20)
        return {member.member_id for member in description.members}

    return await asyncio.to_thread(describe)


async def wait_until_stored(pipeline: Pipeline, count: int, timeout: float) -> None:
    """Wait until `count` readings are stored (fails after `timeout` s)."""
    started = time.monotonic()
    while (stored := await pipeline.store.count_readings()) < count:
        assert time.monotonic() - started < timeout, f"{stored} of {count} readings stored"
        await asyncio.sleep(0.25)


@pytest.mark.timeout(420)
async def test_a_database_outage_mid_stream_loses_nothing_and_drains_by_itself(
    settings: Settings, private_postgres: PrivatePostgres
) -> None:
    settings = fast_retries(settings)
    # A member that stops polling for 7 s is expelled from its group: far shorter than the
    # outage, so staying in the group shows the paused worker kept polling.
    kafka = settings.kafka.model_copy(
        update={"options": {**settings.kafka.options, "max.poll.interval.ms": "7000"}}
    )
    settings = settings.model_copy(update={"kafka": kafka})
    pipeline = await bootstrap(settings)
    group = pipeline.group_id("sensors")
    readings = settings.topics.sensor_readings
    stop = asyncio.Event()
    stats = WorkerStats()
    worker = asyncio.create_task(run_named_job(pipeline, "sensors", stop=stop, stats=stats))
    try:
        producer = asyncio.create_task(
            produce_sensors(pipeline, count=COUNT, rate=RATE, seed=3, sensors=50)
        )
        await wait_until_stored(pipeline, 1, timeout=60)
        await asyncio.sleep(3)
        members_before = await group_members(settings, group)

        await asyncio.to_thread(private_postgres.stop)
        await asyncio.sleep(OUTAGE_S)
        alive_during_outage = not worker.done()
        paused_during_outage = stats.pauses
        await asyncio.to_thread(private_postgres.start)
        sent = await asyncio.wait_for(producer, 120)
        await wait_until_stored(pipeline, COUNT, timeout=DRAIN_DEADLINE_S)
        members_after = await group_members(settings, group)

        assert alive_during_outage
        # The same single member throughout: the group never expelled it (no rebalance).
        assert len(members_before) == 1
        assert members_after == members_before
        assert not worker.done()
        assert sent == COUNT
        assert await pipeline.store.count_readings() == COUNT
        # A minute's statistics are upserted once a second: they follow within one.
        url = settings.database.url.get_secret_value()
        async with asyncio.timeout(10):
            while (aggregated := await aggregated_count(url)) < COUNT:
                await asyncio.sleep(0.25)
        assert aggregated == COUNT
        assert await consumer_lag(pipeline.log, pipeline.checkpoint, readings, group) == 0
        assert paused_during_outage >= 1
        assert stats.paused_seconds >= OUTAGE_S / 2
        assert not stats.sent_to_retry
        for topic in (dead_letter_topic(readings), retry_topic(readings, 1)):
            assert sum((await pipeline.log.end_offsets(topic)).values()) == 0
        assert await pipeline.dead_letter_store().find_dead_letters(DeadLetterFilter()) == []
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(worker, 30)
        await pipeline.aclose()


async def test_a_batch_deadlocking_past_its_budget_goes_through_retry_1_into_postgres_once(
    settings: Settings,
) -> None:
    settings = fast_retries(settings, in_place_attempts=2, topic_delays_s=[1.0, 1.0])
    real = await bootstrap(settings)
    # The real store, whose first two commits with rows fail as a deadlock would: the
    # database answers pings, only that transaction is aborted.
    deadlocking = FaultyCheckpoint(
        real.checkpoint,
        failures=2,
        only_with_rows=True,
        error=StoreUnavailable("deadlock detected"),
    )
    pipeline = await bootstrap(
        settings, log=real.log, registry=real.registry, store=real.store, checkpoint=deadlocking
    )
    readings = settings.topics.sensor_readings
    try:
        await produce_sensors(pipeline, count=300, rate=0, seed=5, sensors=30)

        stats = await asyncio.wait_for(run_named_job(pipeline, "sensors", until_caught_up=True), 60)

        retried = await read_topic(pipeline, retry_topic(readings, 1), 1)
        assert retried
        assert stats.sent_to_retry == {retry_topic(readings, 1): len(retried)}
        for record in retried:
            headers = dict(record.headers)
            assert headers[H_TOPIC].decode() == readings
            assert headers[H_ATTEMPTS] == b"2"
            assert int(headers[H_OFFSET]) >= 0
        assert await real.store.count_readings() == 300
        assert await aggregated_count(settings.database.url.get_secret_value()) == 300
        assert sum((await pipeline.log.end_offsets(dead_letter_topic(readings))).values()) == 0
    finally:
        await real.aclose()


async def test_the_api_answers_503_during_an_outage_and_recovers_on_its_own(
    settings: Settings, private_postgres: PrivatePostgres
) -> None:
    # Pooled connections are not pinged before use: the restart drops them, and the API must
    # still come back by itself (at most a 503 for a request on a dropped connection).
    pipeline = await bootstrap(settings)
    try:
        async with AsyncTestClient(create_app(pipeline, settings)) as client:
            for _ in range(3):  # several pooled connections in use before the outage
                assert (await client.get("/api/v1/sensors/latest")).status_code == 200

            await asyncio.to_thread(private_postgres.stop)
            during = await client.get("/api/v1/sensors/latest")
            await asyncio.to_thread(private_postgres.start)
            after = [(await client.get("/api/v1/sensors/latest")).status_code for _ in range(6)]

        assert during.status_code == 503
        assert during.headers["retry-after"]
        assert after[-4:] == [200, 200, 200, 200]
        assert set(after) <= {200, 503}
    finally:
        await pipeline.aclose()
