"""`InMemoryEventLog`: the embedded event log, a partitioned log with offsets in memory."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TypeVar

from pipeline.adapters.memory.log_consumer import InMemoryGroupConsumer, InMemoryLogReader
from pipeline.adapters.memory.log_state import LogState, PartitionLog, TopicLog
from pipeline.adapters.memory.partitioner import partition_for_key
from pipeline.adapters.memory.table import InMemoryChangelogTable
from pipeline.application.errors import ConfigurationError, PublishError
from pipeline.application.ports import (
    EventConsumer,
    OffsetResolver,
    Record,
    TopicPartition,
    TopicSpec,
)
from pipeline.application.ports.tables import KeyDecoder, ValueDecoder

K = TypeVar("K")
V = TypeVar("V")


class InMemoryEventLog:
    """An `EventLog` in process memory, with Kafka's semantics where they matter.

    - Topics exist only once `ensure_topics` created them; publishing to another topic
      raises `PublishError` (Kafka with topic auto-creation off).
    - A keyed record goes to partition `murmur2(key) % partitions`, Kafka's default
      partitioner (see `partitioner.py`), so keys land where Kafka would put them;
      records without a key go round-robin over the partitions.
    - Offsets start at 0 and nothing is ever deleted (topic configs such as retention are
      stored, not enforced). Timestamps are the wall clock in ms at publish.
    - Consumer groups keep committed offsets; members share partitions by Kafka's range
      assignor and rebalance at their next poll when a member joins or closes.
    - Publishing is synchronous and never fails for a known topic; `flush` has nothing
      to wait for.

    Use it from a single event loop: nothing is locked, and polls wait on futures of the
    loop that created them.
    """

    def __init__(self) -> None:
        self._state = LogState()
        self._closed = False

    async def ensure_topics(self, specs: Sequence[TopicSpec]) -> None:
        """Create the topics that do not exist yet; existing ones are left as they are."""
        for spec in specs:
            if spec.partitions < 1:
                raise ConfigurationError(
                    f"topic {spec.name!r} needs at least 1 partition, not {spec.partitions}"
                )
        created = []
        for spec in specs:
            if spec.name not in self._state.topics:
                self._state.topics[spec.name] = TopicLog(
                    name=spec.name,
                    partitions=[PartitionLog() for _ in range(spec.partitions)],
                    config=dict(spec.config),
                )
                created.append(spec.name)
        if created:
            self._state.topics_created(created)

    async def publish(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]] = (),
        timestamp_ms: int | None = None,
    ) -> None:
        """Append one record; records with the same key keep their order. `timestamp_ms`
        (default: now) becomes the record's timestamp."""
        log = self._state.topics.get(topic)
        if log is None or self._closed:
            raise PublishError(
                "the event log is closed"
                if self._closed
                else f"unknown topic {topic!r}: create it with ensure_topics first"
            )
        partitions = log.partitions
        if key is None:
            number = log.next_unkeyed % len(partitions)
            log.next_unkeyed = number + 1
        else:
            number = partition_for_key(key, len(partitions))
        partition = partitions[number]
        records = partition.records
        records.append(
            Record(
                topic=topic,
                partition=number,
                offset=len(records),
                key=key,
                value=value,
                timestamp_ms=(
                    time.time_ns() // 1_000_000 if timestamp_ms is None else timestamp_ms
                ),
                headers=tuple(headers),
            )
        )
        partition.waiters.wake()

    async def flush(self, timeout: float = 30.0) -> None:
        """Nothing to wait for: every published record is already in the log."""

    def consumer(
        self,
        *,
        group_id: str,
        topics: Sequence[str],
        resolve_offsets: OffsetResolver | None = None,
    ) -> EventConsumer:
        """Join consumer group `group_id` on `topics` (the group rebalances)."""
        return InMemoryGroupConsumer(self._state, group_id, topics, resolve_offsets)

    def reader(self, *, group_id: str, start: Mapping[TopicPartition, int]) -> EventConsumer:
        """Read the given partitions from the given offsets, outside group management."""
        return InMemoryLogReader(self._state, group_id, start)

    async def end_offsets(self, topic: str) -> dict[int, int]:
        """The next offset of every partition of `topic` (empty if there is no such topic)."""
        log = self._state.topics.get(topic)
        if log is None:
            return {}
        return {number: len(p.records) for number, p in enumerate(log.partitions)}

    def changelog_table(
        self, topic: str, *, decode_key: KeyDecoder[K], decode_value: ValueDecoder[V]
    ) -> InMemoryChangelogTable[K, V]:
        """A table materialized from topic `topic` (call its `start`)."""
        return InMemoryChangelogTable(
            self._state, topic, decode_key=decode_key, decode_value=decode_value
        )

    async def close(self) -> None:
        """Refuse further publishes; what was published stays readable."""
        self._closed = True
