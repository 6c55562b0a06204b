"""The dead-letter property on the real stack (Kafka, schema registry, PostgreSQL): valid
readings interleaved with random bytes, truncated Avro, wrong magic bytes, unknown schema ids
and impossible values; every valid reading lands once in PostgreSQL, every bad record once on
`<topic>.dlq` and in `dead_letters` with the right error class, and the worker never stops.

Each example gets its own topics and database, so few examples are run."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.adapters.clock import ManualClock
from pipeline.application.dead_letters import H_ERROR_CLASS, dead_letter_topic
from pipeline.application.ports import DeadLetterFilter
from pipeline.entrypoints.bootstrap import bootstrap
from pipeline.entrypoints.settings import (
    DatabaseSettings,
    KafkaSettings,
    RegistrySettings,
    Settings,
    TopicSettings,
    WorkerSettings,
)
from pipeline.entrypoints.worker import run_named_job
from tests.databases import fresh_database
from tests.integration.conftest import delete_topics_of
from tests.integration.topics import read_topic
from tests.services import KAFKA, REGISTRY, require_service
from tests.unit import test_dead_letters_property as unit

pytestmark = pytest.mark.integration


def stack_settings(database_url: str, batch_size: int, run: str) -> Settings:
    return Settings(
        kafka=KafkaSettings(bootstrap_servers=require_service(KAFKA)),
        database=DatabaseSettings(url=database_url),  # type: ignore[arg-type]
        registry=RegistrySettings(url=require_service(REGISTRY)),
        topics=TopicSettings(
            sensor_readings=f"dlqprop-readings-{run}",
            system_alerts=f"dlqprop-alerts-{run}",
            ecommerce_events=f"dlqprop-shop-{run}",
            transactions=f"dlqprop-tx-{run}",
            social_posts=f"dlqprop-posts-{run}",
            sensor_readings_partitions=3,
        ),
        worker=WorkerSettings(
            group_id_prefix=f"dlqprop-{run}", batch_size=batch_size, batch_timeout=0.2
        ),
    )


async def scenario(items: list[tuple[str, object]], batch_size: int) -> None:
    run = uuid.uuid4().hex[:10]
    async with fresh_database("dlqprop") as url:
        pipeline = await bootstrap(
            stack_settings(url, batch_size, run), clock=ManualClock(unit.NOW)
        )
        try:
            await pipeline.ensure_topics()
            topic = pipeline.settings.topics.sensor_readings
            expected: dict[bytes, str] = {}
            valid = 0
            for i, (kind, parameter) in enumerate(items):
                value, error_class = await unit.record_for(pipeline, i, kind, parameter)
                key = f"rec-{i}".encode()
                await pipeline.log.publish(topic, key, value)
                if error_class is None:
                    valid += 1
                else:
                    expected[key] = error_class
            await pipeline.log.flush()

            stats = await asyncio.wait_for(
                run_named_job(pipeline, "sensors", until_caught_up=True), 60
            )

            assert stats.records == len(items)
            assert await pipeline.store.count_readings() == valid
            letters = await read_topic(pipeline, dead_letter_topic(topic), len(expected))
            assert len(letters) == len(expected)
            assert {r.key: dict(r.headers)[H_ERROR_CLASS].decode() for r in letters} == expected
            stored = await pipeline.dead_letter_store().find_dead_letters(
                DeadLetterFilter(), limit=len(items) + 1
            )
            assert {x.key: x.error_class for x in stored} == expected
            assert len(stored) == len(expected)
        finally:
            await pipeline.aclose()
            delete_topics_of(run)


@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
@given(items=st.lists(unit.ITEMS, min_size=5, max_size=30), batch_size=st.integers(1, 12))
def test_every_record_ends_once_in_postgres_or_the_dead_letters(
    items: list[tuple[str, object]], batch_size: int
) -> None:
    require_service(KAFKA)
    asyncio.run(scenario(items, batch_size))
