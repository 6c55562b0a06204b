"""Fixtures of the end-to-end tests on the real stack: unique topics and a fresh database."""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from pipeline.adapters.registry import ConfluentSchemaRegistry
from pipeline.entrypoints.settings import (
    DatabaseSettings,
    KafkaSettings,
    RegistrySettings,
    Settings,
    TopicSettings,
    WorkerSettings,
)
from tests.databases import fresh_database
from tests.services import KAFKA, REGISTRY, require_service


@pytest.fixture
async def registry() -> AsyncIterator[ConfluentSchemaRegistry]:
    """A client of the real schema registry."""
    client = ConfluentSchemaRegistry(require_service(REGISTRY))
    yield client
    await client.close()


@pytest.fixture
async def other_registry() -> AsyncIterator[ConfluentSchemaRegistry]:
    """A second client with empty caches: what a reader in another process sees."""
    client = ConfluentSchemaRegistry(require_service(REGISTRY))
    yield client
    await client.close()


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    async with fresh_database("e2e") as url:
        yield url


@pytest.fixture
def settings(database_url: str) -> Iterator[Settings]:
    """Settings for the real stack with topics no other test uses; the topics are deleted
    after the test."""
    run = uuid.uuid4().hex[:10]
    yield Settings(
        kafka=KafkaSettings(
            bootstrap_servers=require_service(KAFKA),
            # Fast group membership for tests: a killed member is noticed within seconds.
            options={"session.timeout.ms": "6000", "heartbeat.interval.ms": "1000"},
        ),
        database=DatabaseSettings(url=database_url),  # type: ignore[arg-type]
        registry=RegistrySettings(url=require_service(REGISTRY)),
        topics=TopicSettings(
            sensor_readings=f"e2e-readings-{run}",
            system_alerts=f"e2e-alerts-{run}",
            ecommerce_events=f"e2e-shop-{run}",
            transactions=f"e2e-tx-{run}",
            social_posts=f"e2e-posts-{run}",
            accounts=f"e2e-accounts-{run}",
            payment_outcomes=f"e2e-outcomes-{run}",
            social_engagement=f"e2e-engagement-{run}",
            sensor_metadata=f"e2e-metadata-{run}",
        ),
        worker=WorkerSettings(group_id_prefix=f"e2e-{run}", batch_size=500, batch_timeout=0.2),
    )
    delete_topics_of(run)


def delete_topics_of(run: str) -> None:
    """Delete the topics whose names hold `run`: those a test's settings name and those
    derived from them (dead-letter, late, retry and changelog topics). A broker that keeps
    every test's partitions slows down as the suite goes on (~10,000 partitions after a few
    runs of it on a developer's stack). Best effort: a broker a test left down keeps them."""
    admin = AdminClient({"bootstrap.servers": require_service(KAFKA)})
    with contextlib.suppress(KafkaException):
        names = [name for name in admin.list_topics(timeout=10).topics if run in name]
        if names:
            for future in admin.delete_topics(names, operation_timeout=10).values():
                future.result()


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a `pipeline` subprocess use `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_")}
    topics = settings.topics
    env.update(
        {
            "PIPELINE_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers or "",
            "PIPELINE_KAFKA__OPTIONS": json.dumps(settings.kafka.options),
            "PIPELINE_DATABASE__URL": settings.database.url.get_secret_value(),
            "PIPELINE_REGISTRY__URL": settings.registry.url or "",
            "PIPELINE_TOPICS__SENSOR_READINGS": topics.sensor_readings,
            "PIPELINE_TOPICS__SYSTEM_ALERTS": topics.system_alerts,
            "PIPELINE_TOPICS__ECOMMERCE_EVENTS": topics.ecommerce_events,
            "PIPELINE_TOPICS__TRANSACTIONS": topics.transactions,
            "PIPELINE_TOPICS__SOCIAL_POSTS": topics.social_posts,
            "PIPELINE_TOPICS__ACCOUNTS": topics.accounts,
            "PIPELINE_TOPICS__PAYMENT_OUTCOMES": topics.payment_outcomes,
            "PIPELINE_TOPICS__SOCIAL_ENGAGEMENT": topics.social_engagement,
            "PIPELINE_TOPICS__SENSOR_METADATA": topics.sensor_metadata,
            "PIPELINE_WORKER__GROUP_ID_PREFIX": settings.worker.group_id_prefix,
            "PIPELINE_WORKER__BATCH_SIZE": str(settings.worker.batch_size),
            "PIPELINE_LOG_LEVEL": "WARNING",
        }
    )
    return env
