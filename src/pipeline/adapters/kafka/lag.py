"""The lag of a librdkafka consumer's partitions, for `KafkaConsumerBase.lag`.

Blocking librdkafka calls: run it in the consumer's worker thread. It raises KafkaException;
the consumer translates it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer
from confluent_kafka import TopicPartition as KafkaTopicPartition

from pipeline.application.ports import TopicPartition


def partitions_lag(
    consumer: Consumer,
    partitions: Sequence[TopicPartition],
    starts: Mapping[TopicPartition, int],
    timeout: float,
) -> int:
    """Records left in `partitions`: end - position, where the position of a partition not
    read yet is its start offset (from `starts`, committed, or the partition's beginning).

    The ends are the high watermarks of the last fetch responses, as librdkafka caches them
    (no request; `caught_up` trusts the same figures), and for a partition no fetch has
    answered yet, asked for together with the others in one request per leader; so are the
    beginnings a position needs (a partition not read yet, with no start or committed
    offset, and records). A query per partition (`get_watermark_offsets(cached=False)`)
    took 0.5 s each on an idle topic: each queued on the broker's connection behind the
    consumer's fetch, which the broker holds for `fetch.wait.max.ms` when it has nothing."""
    asked = [KafkaTopicPartition(tp.topic, tp.partition) for tp in partitions]
    positions = [p.offset for p in consumer.position(asked)]
    unknown = [
        tp for tp, at in zip(partitions, positions, strict=True) if at < 0 and tp not in starts
    ]
    committed: dict[TopicPartition, int] = {}
    if unknown:
        query = [KafkaTopicPartition(tp.topic, tp.partition) for tp in unknown]
        for c in consumer.committed(query, timeout=timeout):
            committed[TopicPartition(c.topic, c.partition)] = c.offset
    lows: dict[TopicPartition, int] = {}
    ends: dict[TopicPartition, int] = {}
    for tp, ktp in zip(partitions, asked, strict=True):
        lows[tp], high = consumer.get_watermark_offsets(ktp, cached=True)
        if high >= 0:
            ends[tp] = high
    ends.update(_listed(consumer, [tp for tp in partitions if tp not in ends], OFFSET_END, timeout))
    position = {
        tp: at if at >= 0 else starts.get(tp, committed.get(tp, -1))
        for tp, at in zip(partitions, positions, strict=True)
    }
    # An empty partition (end 0: an idle retry topic, a new one) needs no beginning.
    beginnings = _listed(
        consumer,
        [tp for tp in partitions if position[tp] < 0 and lows[tp] < 0 and ends[tp] > 0],
        OFFSET_BEGINNING,
        timeout,
    )
    total = 0
    for tp in partitions:
        if ends[tp] <= 0:
            continue  # empty: nothing left, wherever it starts
        start = position[tp] if position[tp] >= 0 else beginnings.get(tp, lows[tp])
        total += max(0, ends[tp] - start)
    return total


def _listed(
    consumer: Consumer, partitions: Sequence[TopicPartition], which: int, timeout: float
) -> dict[TopicPartition, int]:
    """The end (OFFSET_END) or beginning (OFFSET_BEGINNING) offset of each of `partitions`:
    one ListOffsets request per leader (`offsets_for_times` passes these two as the
    protocol's "latest" and "earliest"; the end is the last stable offset under
    read_committed)."""
    if not partitions:
        return {}
    query = [KafkaTopicPartition(tp.topic, tp.partition, which) for tp in partitions]
    return {
        TopicPartition(r.topic, r.partition): r.offset
        for r in consumer.offsets_for_times(query, timeout=timeout)
    }
