"""`InMemoryEventLog`: the embedded event log, a partitioned log with offsets in memory."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from pipeline.adapters.memory.log_consumer import InMemoryGroupConsumer, InMemoryLogReader
from pipeline.adapters.memory.log_state import LogState, PartitionLog, TopicLog
from pipeline.adapters.memory.table import InMemoryChangelogTable
from pipeline.adapters.memory.transactions import InMemoryTransactionalCheckpoint
from pipeline.application.errors import ConfigurationError, PublishError, RecordTooLarge
from pipeline.application.kafka_authority import TopicSink
from pipeline.application.ports import (
    DEFAULT_MAX_MESSAGE_BYTES,
    MAX_MESSAGE_BYTES,
    EventConsumer,
    OffsetResolver,
    OutgoingRecord,
    TopicPartition,
    TopicSpec,
)
from pipeline.application.ports.tables import KeyDecoder, ValueDecoder

K = TypeVar("K")
V = TypeVar("V")

_BATCH_OVERHEAD = 61
"""Bytes of a Kafka record batch's header (magic v2), which its size limit counts too."""


def _varint_bytes(number: int) -> int:
    zigzag = (number << 1) ^ (number >> 63)
    size = 1
    while zigzag >= 0x80:
        zigzag >>= 7
        size += 1
    return size


def batch_bytes(
    key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes]]
) -> int:
    """The size of a record alone in an uncompressed Kafka record batch (format v2): what a
    topic's `max.message.bytes` is compared with."""
    body = 3  # attributes, timestamp delta 0, offset delta 0
    for part in (key, value):
        body += 1 if part is None else _varint_bytes(len(part)) + len(part)
    body += _varint_bytes(len(headers))
    for name, header in headers:
        encoded = name.encode()
        body += _varint_bytes(len(encoded)) + len(encoded)
        body += _varint_bytes(len(header)) + len(header)
    return _BATCH_OVERHEAD + _varint_bytes(body) + body


class InMemoryEventLog:
    """An `EventLog` in process memory, with Kafka's semantics where they matter.

    - Topics exist only once `ensure_topics` created them; publishing to another topic
      raises `PublishError` (Kafka with topic auto-creation off).
    - A keyed record goes to partition `murmur2(key) % partitions`, Kafka's default
      partitioner (see `partitioner.py`), so keys land where Kafka would put them;
      records without a key go round-robin over the partitions.
    - A record larger than its topic's `max.message.bytes` (default Kafka's 1,048,588),
      counted as Kafka counts it (`batch_bytes`), is refused with `RecordTooLarge`.
    - Offsets start at 0 and nothing is ever deleted (topic configs such as retention are
      stored, not enforced). Timestamps are the wall clock in ms at publish.
    - Consumer groups keep committed offsets; members share partitions like Kafka's
      cooperative-sticky assignor (balanced, and a member keeps what it has: only the
      partitions that change owner move) and rebalance at their next poll when a member
      joins or closes.
    - Publishing is synchronous and otherwise never fails for a known topic; `flush` has
      nothing to wait for.

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
        # Topics that hold copies of another's records come last, sized after it.
        for spec in sorted(specs, key=lambda spec: spec.holds_records_of is not None):
            config = dict(spec.config)
            if spec.holds_records_of is not None:
                source = self._state.topics.get(spec.holds_records_of)
                if source is None:
                    raise ConfigurationError(
                        f"topic {spec.name!r} holds records of {spec.holds_records_of!r}, "
                        "which does not exist"
                    )
                config[MAX_MESSAGE_BYTES] = str(_max_bytes(source) + spec.headroom_bytes)
            existing = self._state.topics.get(spec.name)
            if existing is None:
                self._state.topics[spec.name] = TopicLog(
                    name=spec.name,
                    partitions=[PartitionLog() for _ in range(spec.partitions)],
                    config=config,
                )
                created.append(spec.name)
            elif MAX_MESSAGE_BYTES in config and spec.holds_records_of is not None:
                needed = int(config[MAX_MESSAGE_BYTES])
                if _max_bytes(existing) < needed:
                    existing.config[MAX_MESSAGE_BYTES] = str(needed)
        if created:
            self._state.topics_created(created)

    async def delete_topics(self, names: Sequence[str]) -> None:
        """Delete the topics of `names` that exist, with their records and the offsets
        groups committed on them; names that do not exist are ignored."""
        deleted = {name for name in names if self._state.topics.pop(name, None) is not None}
        if deleted:
            self._state.topics_deleted(deleted)

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
        size, limit = batch_bytes(key, value, headers), _max_bytes(log)
        if size > limit:
            raise RecordTooLarge(
                f"a record of {size} bytes is over the {limit}-byte limit of topic {topic!r}"
            )
        self._state.append(log, key, value, headers, timestamp_ms)

    async def flush(self, timeout: float = 30.0) -> None:
        """Nothing to wait for: every published record is already in the log."""

    async def deliver(
        self, records: Sequence[OutgoingRecord], timeout: float = 30.0
    ) -> list[PublishError | None]:
        """Append each record; a refused one (too large, unknown topic) gets its error."""
        if self._closed:
            raise PublishError("the event log is closed")
        outcomes: list[PublishError | None] = []
        for record in records:
            try:
                await self.publish(
                    record.topic, record.key, record.value, record.headers, record.timestamp_ms
                )
            except PublishError as error:
                outcomes.append(error)
            else:
                outcomes.append(None)
        await self.flush(timeout)
        return outcomes

    def consumer(
        self,
        *,
        group_id: str,
        topics: Sequence[str],
        resolve_offsets: OffsetResolver | None = None,
        co_partitioned: bool = False,
        interleaved: bool = False,
    ) -> EventConsumer:
        """Join consumer group `group_id` on `topics` (the group rebalances);
        `co_partitioned` assigns like Kafka's range assignor, `interleaved` takes at most
        `INTERLEAVED_RUN` records of a partition at a time (see the port)."""
        return InMemoryGroupConsumer(
            self._state,
            group_id,
            topics,
            resolve_offsets,
            co_partitioned=co_partitioned,
            interleaved=interleaved,
        )

    def reader(self, *, group_id: str, start: Mapping[TopicPartition, int]) -> EventConsumer:
        """Read the given partitions from the given offsets, outside group management."""
        return InMemoryLogReader(self._state, group_id, start)

    def transactional_checkpoint(
        self,
        consumer: EventConsumer,
        *,
        member_id: str,
        sinks: Mapping[str, TopicSink],
        steps: Sequence[str],
    ) -> InMemoryTransactionalCheckpoint:
        """The Kafka-authority checkpoint of `consumer` (a member of a group made by
        `consumer()`), as `KafkaEventLog.transactional_checkpoint` makes it on Kafka."""
        if not isinstance(consumer, InMemoryGroupConsumer):
            raise ConfigurationError("a transactional checkpoint needs a group member")
        return InMemoryTransactionalCheckpoint(
            self, self._state, consumer, member_id=member_id, sinks=sinks, steps=steps
        )

    async def end_offsets(self, topic: str) -> dict[int, int]:
        """The next offset of every partition of `topic` (empty if there is no such topic)."""
        log = self._state.topics.get(topic)
        if log is None:
            return {}
        return {number: len(p.records) for number, p in enumerate(log.partitions)}

    async def offsets_for_time(self, topic: str, timestamp_ms: int) -> dict[int, int]:
        """Per partition, the first offset at or after `timestamp_ms` (else the end)."""
        log = self._state.topics.get(topic)
        if log is None:
            return {}
        found: dict[int, int] = {}
        for number, partition in enumerate(log.partitions):
            records = partition.records
            found[number] = next(
                (r.offset for r in records if r.timestamp_ms >= timestamp_ms), len(records)
            )
        return found

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


def _max_bytes(topic: TopicLog) -> int:
    return int(topic.config.get(MAX_MESSAGE_BYTES, DEFAULT_MAX_MESSAGE_BYTES))
