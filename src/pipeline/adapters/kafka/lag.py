"""The lag of a librdkafka consumer's partitions, for `KafkaConsumerBase.lag`.

Blocking librdkafka calls: run it in the consumer's worker thread. It raises KafkaException;
the consumer translates it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from confluent_kafka import Consumer
from confluent_kafka import TopicPartition as KafkaTopicPartition

from pipeline.application.ports import TopicPartition


def partitions_lag(
    consumer: Consumer,
    partitions: Sequence[TopicPartition],
    starts: Mapping[TopicPartition, int],
    timeout: float,
) -> int:
    """Records left in `partitions`: high watermark - position, where the position of a
    partition not read yet is its start offset (from `starts`, committed, or the low
    watermark)."""
    positions = consumer.position(
        [KafkaTopicPartition(tp.topic, tp.partition) for tp in partitions]
    )
    unknown = [
        tp
        for tp, pos in zip(partitions, positions, strict=True)
        if pos.offset < 0 and tp not in starts
    ]
    committed: dict[TopicPartition, int] = {}
    if unknown:
        query = [KafkaTopicPartition(tp.topic, tp.partition) for tp in unknown]
        for c in consumer.committed(query, timeout=timeout):
            committed[TopicPartition(c.topic, c.partition)] = c.offset
    total = 0
    for tp, pos in zip(partitions, positions, strict=True):
        low, high = consumer.get_watermark_offsets(
            KafkaTopicPartition(tp.topic, tp.partition),
            timeout=timeout,
            cached=False,
        )
        position = pos.offset
        if position < 0:
            position = starts.get(tp, committed.get(tp, -1))
        if position < 0:
            position = low
        total += max(0, high - position)
    return total
