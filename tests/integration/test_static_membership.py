"""Static group membership on Kafka (`group.instance.id`, PIPELINE_WORKER__INSTANCE_ID): a
member restarted under its id takes its partitions back without a rebalance; two live
members with one id is a configuration error, not a silent tug of war."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from uuid import uuid4

import pytest
from confluent_kafka.admin import AdminClient

from pipeline.adapters.kafka import KafkaEventLog
from pipeline.application.errors import ConfigurationError
from pipeline.application.ports import EventConsumer, TopicPartition, TopicSpec
from tests.services import KAFKA, require_service

pytestmark = pytest.mark.integration

FAST = {"session.timeout.ms": "6000", "heartbeat.interval.ms": "300"}


class Recorder:
    def __init__(self) -> None:
        self.calls: list[list[TopicPartition]] = []

    async def __call__(self, partitions: Sequence[TopicPartition]) -> Mapping[TopicPartition, int]:
        self.calls.append(sorted(partitions))
        return {}


@pytest.fixture
async def topic() -> AsyncIterator[str]:
    bootstrap = require_service(KAFKA)
    name = f"static-{uuid4().hex}"
    log = KafkaEventLog(bootstrap)
    await log.ensure_topics([TopicSpec(name=name, partitions=4)])
    await log.close()
    yield name
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.delete_topics([name], operation_timeout=20).values():
        await asyncio.wrap_future(future)


def static_log(instance_id: str | None) -> KafkaEventLog:
    return KafkaEventLog(
        require_service(KAFKA), consumer_config=FAST, group_instance_id=instance_id, timeout=20
    )


async def poll_until(members: Sequence[EventConsumer], done: Callable[[], bool]) -> None:
    """Poll every member until `done()`; fail after 30 s (or raise what a poll raises)."""
    deadline = time.monotonic() + 30
    while not done():
        assert time.monotonic() < deadline, "the group did not reach the expected state"
        await asyncio.gather(*(member.poll(100, 0.3) for member in members))


async def test_a_member_restarted_under_its_instance_id_takes_its_partitions_back_alone(
    topic: str,
) -> None:
    group = f"g-{uuid4().hex}"
    other_asked = Recorder()
    other = static_log(None).consumer(group_id=group, topics=[topic], resolve_offsets=other_asked)
    first = static_log("worker-1").consumer(group_id=group, topics=[topic])
    try:
        await poll_until(
            [first, other], lambda: len(first.assignment()) == 2 == len(other.assignment())
        )
        held = first.assignment()
        other_asked.calls.clear()
        await first.close()  # a static member leaves no LeaveGroup behind: like a crash

        again = static_log("worker-1").consumer(group_id=group, topics=[topic])
        try:
            await poll_until([again, other], lambda: again.assignment() == held)
            await asyncio.gather(*(m.poll(100, 1.0) for m in (again, other)))
        finally:
            await again.close()

        assert other.assignment() | held == {TopicPartition(topic, p) for p in range(4)}
        assert other_asked.calls == []  # no rebalance moved anything to or from it
    finally:
        await other.close()


async def test_two_live_members_with_one_instance_id_is_a_configuration_error(
    topic: str,
) -> None:
    group = f"g-{uuid4().hex}"
    first = static_log("same").consumer(group_id=group, topics=[topic])
    members = [first]
    try:
        await poll_until(members, lambda: bool(first.assignment()))
        members.append(static_log("same").consumer(group_id=group, topics=[topic]))

        with pytest.raises(ConfigurationError, match="PIPELINE_WORKER__INSTANCE_ID"):
            await poll_until(members, lambda: False)
    finally:
        for member in members:
            await member.close()
