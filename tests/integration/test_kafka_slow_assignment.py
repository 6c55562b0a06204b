"""A group member whose start offsets take longer to resolve than the Kafka timeout (a
partition leader's broker just died, a slow database) fails that poll transiently — the worker
retries it — and resolves the partitions on a later poll, never reading them from elsewhere."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping, Sequence

import pytest

from pipeline.adapters.kafka import KafkaEventLog
from pipeline.application.errors import TransientError
from pipeline.application.ports import Record, TopicPartition, TopicSpec
from tests.services import KAFKA, require_service

pytestmark = pytest.mark.integration


async def test_a_resolution_slower_than_the_timeout_is_transient_and_retried() -> None:
    log = KafkaEventLog(
        require_service(KAFKA),
        consumer_config={"session.timeout.ms": "6000", "heartbeat.interval.ms": "500"},
        timeout=1.0,
    )
    topic = f"slow-assign-{uuid.uuid4().hex[:10]}"
    await log.ensure_topics([TopicSpec(name=topic, partitions=1)])
    for value in range(5):
        await log.publish(topic, b"k", str(value).encode())
    await log.flush()
    calls = 0

    async def resolve(partitions: Sequence[TopicPartition]) -> Mapping[TopicPartition, int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(2.0)  # longer than the 1 s timeout
        return {tp: 3 for tp in partitions}

    consumer = log.consumer(
        group_id=f"slow-{uuid.uuid4().hex[:8]}", topics=[topic], resolve_offsets=resolve
    )
    records: list[Record] = []
    failures: list[TransientError] = []
    deadline = time.monotonic() + 60
    try:
        while len(records) < 2 and time.monotonic() < deadline:
            try:
                records += await consumer.poll(100, 0.5)
            except TransientError as error:
                failures.append(error)
    finally:
        await consumer.close()
        await log.delete_topics([topic])
        await log.close()

    assert failures, "the slow resolution was not reported"
    assert "were not resolved within 1s" in str(failures[0])
    assert [r.value for r in records] == [b"3", b"4"]
