"""The shop, payment and social streams on the real stack: `pipeline produce` publishes each
event once, Avro-encoded with the registry, to its topic, keyed for co-partitioning, with its
ground-truth label in the headers; a reader in another process decodes exactly the generated
stream."""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from pipeline.adapters.clock import ManualClock
from pipeline.adapters.registry import ConfluentSchemaRegistry
from pipeline.application.generators.base import label_from_headers
from pipeline.application.generators.production import planned_events
from pipeline.application.generators.simulations import SIMULATIONS
from pipeline.entrypoints.bootstrap import bootstrap
from pipeline.entrypoints.settings import Settings
from pipeline.entrypoints.simulated import produce_simulated, routes
from pipeline.entrypoints.simulated_processes import produce_in_processes
from tests.integration.conftest import settings_env
from tests.integration.topics import read_topic

pytestmark = pytest.mark.integration

SEED = 11
COUNT = 3_000
KEYS = {
    "ShopEvent": "session_id",
    "Transaction": "account_id",
    "AccountProfile": "account_id",
    "PaymentOutcome": "account_id",
    "Post": "post_id",
    "Engagement": "post_id",
}


def keyed(event: Any) -> bytes:
    key: str = getattr(event, KEYS[type(event).__name__])
    return key.encode()


async def read_back(
    settings: Settings, registry: ConfluentSchemaRegistry, domain: str, sent: Counter[str]
) -> Counter[tuple[bytes | None, Any, Any]]:
    """(key, event, label) of every record on the domain's topics, decoded by another codec."""
    reader = await bootstrap(settings, registry=registry)
    try:
        found: Counter[tuple[bytes | None, Any, Any]] = Counter()
        for topic, route in {r.topic: r for r in routes(reader, domain).values()}.items():
            records = await read_topic(reader, topic, sent[topic])
            events = await route.codec.decode_many([r.value for r in records])
            found.update(
                (record.key, event, label_from_headers(record.headers))
                for record, event in zip(records, events, strict=True)
            )
    finally:
        await reader.aclose()
    return found


@pytest.mark.parametrize("domain", sorted(SIMULATIONS))
async def test_produced_stream_reads_back_exactly_with_keys_and_labels(
    domain: str, settings: Settings, other_registry: ConfluentSchemaRegistry
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    pipeline = await bootstrap(settings, clock=ManualClock(now))
    try:
        sent = await produce_simulated(pipeline, domain, count=COUNT, rate=0, seed=SEED)
    finally:
        await pipeline.aclose()
    expected = list(planned_events(SIMULATIONS[domain], seed=SEED, now=now, count=COUNT, rate=0))
    found = await read_back(settings, other_registry, domain, sent)

    assert sent.total() == COUNT
    assert found == Counter((keyed(g.event), g.event, g.label) for g in expected)


async def test_processes_together_publish_the_one_process_stream(
    settings: Settings, other_registry: ConfluentSchemaRegistry
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    pipeline = await bootstrap(settings)
    try:
        await pipeline.ensure_topics()
    finally:
        await pipeline.aclose()

    sent = await produce_in_processes(
        settings,
        "payments",
        processes=2,
        count=COUNT,
        rate=0,
        seed=SEED,
        now=now,
        stop=asyncio.Event(),
    )

    expected = planned_events(SIMULATIONS["payments"], seed=SEED, now=now, count=COUNT, rate=0)
    found = await read_back(settings, other_registry, "payments", sent)
    assert sent.total() == COUNT
    assert found == Counter((keyed(g.event), g.event, g.label) for g in expected)


async def test_account_profiles_go_to_a_compacted_topic_partitioned_like_the_payments(
    settings: Settings,
) -> None:
    pipeline = await bootstrap(settings)
    try:
        await produce_simulated(pipeline, "payments", count=100, rate=0, seed=SEED)
    finally:
        await pipeline.aclose()
    topics = settings.topics
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topics.accounts)

    configs = next(iter(admin.describe_configs([resource]).values())).result()
    partitions = {
        name: len(admin.list_topics(name, timeout=10).topics[name].partitions)
        for name in (topics.accounts, topics.transactions, topics.payment_outcomes)
    }

    assert configs["cleanup.policy"].value == "compact"
    assert len(set(partitions.values())) == 1


async def test_the_produce_command_reports_what_it_sent_per_topic(settings: Settings) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pipeline.entrypoints.cli",
        "produce",
        "social",
        "--rate",
        "0",
        "--count",
        "500",
        "--seed",
        "3",
        env=settings_env(settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=os.getcwd(),
    )
    _, err = await asyncio.wait_for(process.communicate(), 120)

    assert process.returncode == 0, err.decode()
    summary = err.decode().strip().splitlines()[-1]
    assert summary.startswith("produced 500 social events: ")
    assert settings.topics.social_posts in summary
