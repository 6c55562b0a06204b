"""On the three-broker stack (`scripts/stack up --brokers 3`): the application's topics get
three replicas and min.insync.replicas=2, and a stream keeps flowing, every record delivered,
while the broker leading its partitions is SIGKILLed (then restarted for the next tests).

The long fault tests (100,000 readings, a worker, the quorum leader) are in tests/cluster."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import ConfigResource

from pipeline.adapters.kafka import KafkaEventLog
from pipeline.application.ports import TopicPartition, TopicSpec
from pipeline.application.topic_policy import TopicKind, topic_config
from tests.cluster_nodes import kill_node, partition_leaders, replicas, restart_stack
from tests.services import require_cluster

pytestmark = [pytest.mark.integration, pytest.mark.cluster]


@pytest.fixture
async def log() -> AsyncIterator[KafkaEventLog]:
    event_log = KafkaEventLog(require_cluster(), timeout=30.0)
    yield event_log
    await event_log.close()


async def test_created_topics_have_three_replicas_and_need_two_in_sync(log: KafkaEventLog) -> None:
    topic = f"cluster-rf-{uuid.uuid4().hex[:10]}"

    await log.ensure_topics(
        [
            TopicSpec(
                name=topic, partitions=3, config=topic_config(TopicKind.EVENTS, retention_hours=1)
            )
        ]
    )

    assert {p: sorted(r) for p, (r, _) in replicas(require_cluster(), topic).items()} == {
        p: [1, 2, 3] for p in range(3)
    }
    admin = AdminClient({"bootstrap.servers": require_cluster()})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    config = admin.describe_configs([resource])[resource].result()
    assert config["min.insync.replicas"].value == "2"
    assert config["retention.ms"].value == "3600000"


@pytest.fixture
def restart_killed_brokers() -> object:
    yield None
    restart_stack()


async def test_a_stream_keeps_flowing_with_every_record_when_its_leaders_broker_is_killed(
    log: KafkaEventLog, restart_killed_brokers: object
) -> None:
    bootstrap = require_cluster()
    topic = f"cluster-kill-{uuid.uuid4().hex[:10]}"
    await log.ensure_topics([TopicSpec(name=topic, partitions=3)])
    victim = partition_leaders(bootstrap, topic)[0]
    total, killed_after = 3_000, 1_000
    consumer = log.consumer(group_id=f"cluster-kill-{uuid.uuid4().hex[:8]}", topics=[topic])
    seen: list[bytes] = []

    async def produce() -> float:
        kill_time = 0.0
        for number in range(total):
            await log.publish(topic, f"k{number % 50}".encode(), str(number).encode())
            if number == killed_after:
                await log.flush()
                kill_time = await asyncio.to_thread(kill_node, victim)
            if number % 100 == 99:
                await asyncio.sleep(0.02)  # a stream, not a burst: ~5,000 records/s at most
        await log.flush(60)
        return kill_time

    async def consume() -> None:
        deadline = time.monotonic() + 120
        while len(set(seen)) < total and time.monotonic() < deadline:
            batch = await consumer.poll(1000, 0.5)
            seen.extend(record.value or b"" for record in batch)
            if batch:
                await consumer.commit(
                    {TopicPartition(r.topic, r.partition): r.offset + 1 for r in batch}
                )

    try:
        killed_at, _ = await asyncio.gather(produce(), consume())
    finally:
        await consumer.close()

    assert killed_at > 0
    assert sorted(set(seen), key=int) == [str(n).encode() for n in range(total)]
    assert victim not in partition_leaders(bootstrap, topic).values()
