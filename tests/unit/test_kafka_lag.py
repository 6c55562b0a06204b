"""`partitions_lag` from what librdkafka knows: cached watermarks where a fetch gave them, one
request for the ends (and one for the beginnings) of the rest, never a query per partition."""

from __future__ import annotations

from typing import Any

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, OFFSET_INVALID
from confluent_kafka import TopicPartition as KafkaTopicPartition

from pipeline.adapters.kafka.lag import partitions_lag
from pipeline.application.ports import TopicPartition

TOPIC = "t"


class Librdkafka:
    """A consumer's view: positions, committed offsets, cached watermarks, listed offsets."""

    def __init__(
        self,
        *,
        positions: dict[int, int],
        committed: dict[int, int],
        cached: dict[int, tuple[int, int]],
        ends: dict[int, int],
        beginnings: dict[int, int],
    ) -> None:
        self.positions, self.committed_at, self.cached = positions, committed, cached
        self.listed = {OFFSET_END: ends, OFFSET_BEGINNING: beginnings}
        self.requests: list[tuple[int, list[int]]] = []

    def position(self, tps: list[KafkaTopicPartition]) -> list[KafkaTopicPartition]:
        return [KafkaTopicPartition(TOPIC, t.partition, self.positions[t.partition]) for t in tps]

    def committed(self, tps: list[KafkaTopicPartition], timeout: float) -> list[Any]:
        return [
            KafkaTopicPartition(TOPIC, t.partition, self.committed_at.get(t.partition, -1001))
            for t in tps
        ]

    def get_watermark_offsets(self, tp: KafkaTopicPartition, cached: bool) -> tuple[int, int]:
        assert cached, "a query per partition waits behind the fetch"
        return self.cached.get(tp.partition, (OFFSET_INVALID, OFFSET_INVALID))

    def offsets_for_times(self, tps: list[KafkaTopicPartition], timeout: float) -> list[Any]:
        which = {t.offset for t in tps}
        assert len(which) == 1
        [kind] = which
        self.requests.append((kind, [t.partition for t in tps]))
        return [
            KafkaTopicPartition(TOPIC, t.partition, self.listed[kind][t.partition]) for t in tps
        ]


def lag(consumer: Librdkafka, starts: dict[int, int] | None = None) -> int:
    parts = [TopicPartition(TOPIC, p) for p in sorted(consumer.positions)]
    begun = {TopicPartition(TOPIC, p): o for p, o in (starts or {}).items()}
    return partitions_lag(consumer, parts, begun, timeout=1.0)  # type: ignore[arg-type]


def test_cached_ends_need_no_request() -> None:
    consumer = Librdkafka(
        positions={0: 7, 1: OFFSET_INVALID},
        committed={},
        cached={0: (0, 10), 1: (2, 5)},
        ends={},
        beginnings={},
    )

    assert lag(consumer, starts={1: 3}) == 3 + 2
    assert consumer.requests == []


def test_ends_unknown_are_asked_for_in_one_request_and_empty_partitions_need_no_beginning() -> None:
    consumer = Librdkafka(
        positions={0: OFFSET_INVALID, 1: OFFSET_INVALID, 2: OFFSET_INVALID, 3: 4},
        committed={1: 6},
        cached={},
        ends={0: 0, 1: 9, 2: 12, 3: 8},
        beginnings={2: 10},
    )

    # 0: empty; 1: from its committed 6; 2: from its beginning 10; 3: from its position 4.
    assert lag(consumer) == 0 + 3 + 2 + 4
    assert consumer.requests == [(OFFSET_END, [0, 1, 2, 3]), (OFFSET_BEGINNING, [2])]
