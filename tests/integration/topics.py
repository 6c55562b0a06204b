"""Reading back what a topic holds, for assertions on the real broker."""

from __future__ import annotations

import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError
from confluent_kafka import TopicPartition as KafkaTopicPartition

from pipeline.adapters.kafka.messages import to_record
from pipeline.application.ports import Record, TopicPartition
from pipeline.entrypoints.bootstrap import Pipeline


async def read_topic(pipeline: Pipeline, topic: str, expected: int) -> list[Record]:
    """Every record of `topic`, waiting up to 30 s for `expected` of them."""
    ends = await pipeline.log.end_offsets(topic)
    reader = pipeline.log.reader(
        group_id="inspect", start={TopicPartition(topic, p): 0 for p in ends}
    )
    records: list[Record] = []
    deadline = time.monotonic() + 30
    try:
        # Everything the topic holds (its end offsets are final: the writer flushed).
        while len(records) < max(expected, sum(ends.values())) and time.monotonic() < deadline:
            records += await reader.poll(1000, 0.5)
    finally:
        await reader.close()
    return records


def read_committed(bootstrap_servers: str, topic: str) -> list[Record]:
    """Every record of `topic` a read_committed consumer sees, up to the last stable offset
    of each partition (blocking: call it through asyncio.to_thread)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": "inspect",
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([KafkaTopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        left = set(partitions)
        records: list[Record] = []
        deadline = time.monotonic() + 30
        while left:
            assert time.monotonic() < deadline, f"{topic}: partitions {left} never reached EOF"
            for message in consumer.consume(1000, 0.2):
                error = message.error()
                if error is None:
                    records.append(to_record(message))
                elif error.code() == KafkaError._PARTITION_EOF:
                    left.discard(message.partition())
                else:
                    raise AssertionError(f"{topic}: {error.str()}")
        return records
    finally:
        consumer.close()


async def assert_stored_offsets_at_ends(pipeline: Pipeline, job: str, topic: str) -> None:
    """Assert that `job`'s group stored, with its last batch, the end offset of every
    partition of `topic` (every record handled, none left behind)."""
    ends = await pipeline.log.end_offsets(topic)
    offsets = await pipeline.checkpoint.stored_offsets(
        pipeline.group_id(job), [TopicPartition(topic, p) for p in ends]
    )
    expected = {TopicPartition(topic, p): end for p, end in ends.items()}
    assert offsets == expected, f"stored offsets {offsets}, topic ends {expected}"
