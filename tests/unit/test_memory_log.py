"""InMemoryEventLog behaviour beyond the shared contract (tests/contract/test_event_log.py)."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.adapters.memory import InMemoryEventLog
from pipeline.adapters.memory.partitioner import murmur2
from pipeline.application.ports import TopicPartition, TopicSpec

TOPIC = "readings"


@pytest.fixture
async def log() -> InMemoryEventLog:
    event_log = InMemoryEventLog()
    await event_log.ensure_topics([TopicSpec(name=TOPIC, partitions=2)])
    return event_log


@pytest.mark.parametrize(
    ("key", "java_hash"),
    [
        # The reference values of Kafka's own test of its murmur2 (Utils.murmur2, signed).
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (b"abc", 479470107),
    ],
)
def test_murmur2_matches_kafkas_java_implementation(key: bytes, java_hash: int) -> None:
    assert murmur2(key) == java_hash & 0xFFFFFFFF


async def test_records_without_key_go_round_robin_over_the_partitions(
    log: InMemoryEventLog,
) -> None:
    for _ in range(6):
        await log.publish(TOPIC, None, b"v")

    assert await log.end_offsets(TOPIC) == {0: 3, 1: 3}


async def test_a_partition_moves_to_a_new_member_only_after_its_owner_polls_again(
    log: InMemoryEventLog,
) -> None:
    owner = log.consumer(group_id="g", topics=[TOPIC])
    await owner.poll(10, 0)
    newcomer = log.consumer(group_id="g", topics=[TOPIC])

    await newcomer.poll(10, 0)
    before_owner_polled = newcomer.assignment()
    await owner.poll(10, 0)
    await newcomer.poll(10, 0)

    assert before_owner_polled == frozenset()
    assert owner.assignment() == {TopicPartition(TOPIC, 0)}
    assert newcomer.assignment() == {TopicPartition(TOPIC, 1)}


async def test_a_waiting_member_hands_over_partitions_without_waiting_for_its_timeout(
    log: InMemoryEventLog,
) -> None:
    owner = log.consumer(group_id="g", topics=[TOPIC])
    await owner.poll(10, 0)
    owner_waiting = asyncio.create_task(owner.poll(10, 30))
    await asyncio.sleep(0)
    newcomer = log.consumer(group_id="g", topics=[TOPIC])

    await newcomer.poll(10, 0.2)

    assert newcomer.assignment() == {TopicPartition(TOPIC, 1)}
    assert owner.assignment() == {TopicPartition(TOPIC, 0)}
    assert not owner_waiting.done()
    await owner.close()
    assert await owner_waiting == []


async def test_closing_a_consumer_ends_its_waiting_poll_at_once(log: InMemoryEventLog) -> None:
    consumer = log.consumer(group_id="g", topics=[TOPIC])
    waiting = asyncio.create_task(consumer.poll(10, 30))
    await asyncio.sleep(0.01)

    await consumer.close()

    assert await asyncio.wait_for(waiting, 1) == []


async def test_a_committed_offset_past_the_end_restarts_from_the_earliest_record(
    log: InMemoryEventLog,
) -> None:
    await log.ensure_topics([TopicSpec(name="single", partitions=1)])
    await log.publish("single", None, b"first")
    await log.reader(group_id="g", start={}).commit({TopicPartition("single", 0): 99})

    records = await log.consumer(group_id="g", topics=["single"]).poll(10, 0)

    assert [r.offset for r in records] == [0]


async def test_members_get_partitions_of_a_topic_created_after_they_joined() -> None:
    log = InMemoryEventLog()
    consumer = log.consumer(group_id="g", topics=["later"])
    await consumer.poll(10, 0)

    await log.ensure_topics([TopicSpec(name="later", partitions=2)])
    await log.publish("later", None, b"v")
    records = await consumer.poll(10, 0)

    assert consumer.assignment() == {TopicPartition("later", 0), TopicPartition("later", 1)}
    assert [r.value for r in records] == [b"v"]


async def test_consecutive_polls_start_from_different_partitions(log: InMemoryEventLog) -> None:
    for _ in range(4):
        await log.publish(TOPIC, None, b"v")  # two records in each partition
    consumer = log.consumer(group_id="g", topics=[TOPIC])

    partitions = [(await consumer.poll(1, 0))[0].partition for _ in range(4)]

    assert partitions == [0, 1, 0, 1]


async def test_poll_refuses_to_return_less_than_one_record(log: InMemoryEventLog) -> None:
    consumer = log.consumer(group_id="g", topics=[TOPIC])

    with pytest.raises(ValueError, match="max_records"):
        await consumer.poll(0, 0)
