"""Ports: what the application needs from the outside world, as Protocols.

Adapters in `pipeline.adapters` implement them twice: in memory (the embedded default and the
fast fake) and for real (Kafka, PostgreSQL, a Confluent-compatible schema registry). One
contract suite per port, in tests/contract, proves both behave alike.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeVar, runtime_checkable

from pipeline.application.errors import DecodeError
from pipeline.domain.alerts import Alert, Severity
from pipeline.domain.sensors import Reading
from pipeline.domain.windows import WindowAggregate

T = TypeVar("T")


@dataclass(frozen=True, slots=True, order=True)
class TopicPartition:
    """One partition of one topic."""

    topic: str
    partition: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    """One record read from the event log."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    """Broker or producer timestamp (CreateTime), milliseconds since the epoch."""
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def topic_partition(self) -> TopicPartition:
        """Where the record lives."""
        return TopicPartition(self.topic, self.partition)


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicSpec:
    """A topic the application owns: created with an explicit partition count."""

    name: str
    partitions: int
    config: Mapping[str, str] = field(default_factory=dict)


OffsetResolver = Callable[[Sequence[TopicPartition]], Awaitable[Mapping[TopicPartition, int]]]
"""Given newly assigned partitions, the offsets to resume from (partitions absent from the
answer resume from the group's committed offset, or the beginning)."""


@runtime_checkable
class Clock(Protocol):
    """Processing time."""

    def now(self) -> datetime:
        """The current time, tz-aware UTC."""
        ...


@runtime_checkable
class EventConsumer(Protocol):
    """A member of a consumer group (or a manual reader) of the event log."""

    async def poll(self, max_records: int, timeout: float) -> list[Record]:
        """Up to `max_records` records, waiting at most `timeout` seconds for the first."""
        ...

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Record, for the group, the next offset to read in each partition."""
        ...

    def assignment(self) -> frozenset[TopicPartition]:
        """The partitions currently assigned to this consumer."""
        ...

    async def lag(self) -> int:
        """Records left to read in the assigned partitions (high watermark − position)."""
        ...

    async def pause(self) -> None:
        """Stop returning records from every assigned partition, and from any partition
        assigned while paused, until `resume`. Polls still wait their timeout and keep the
        consumer in its group; records already fetched are kept for after `resume`."""
        ...

    async def resume(self) -> None:
        """Return records again, from where the consumer was when paused: in order, none
        skipped, none repeated."""
        ...

    async def close(self) -> None:
        """Leave the group and release resources; records already polled stay processed."""
        ...


@runtime_checkable
class EventLog(Protocol):
    """The partitioned, replayable event log (Kafka, or in memory)."""

    async def ensure_topics(self, specs: Sequence[TopicSpec]) -> None:
        """Create the topics that do not exist yet; existing ones are left as they are."""
        ...

    async def publish(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]] = (),
        timestamp_ms: int | None = None,
    ) -> None:
        """Queue one record for delivery; records with the same key keep their order.
        `timestamp_ms` sets the record's CreateTime (default: now); a None value is a
        tombstone (dead letters keep the value they had)."""
        ...

    async def flush(self, timeout: float = 30.0) -> None:
        """Wait until every queued record is acknowledged; raise PublishError if one failed."""
        ...

    def consumer(
        self,
        *,
        group_id: str,
        topics: Sequence[str],
        resolve_offsets: OffsetResolver | None = None,
    ) -> EventConsumer:
        """Join consumer group `group_id` on `topics`. Partitions are shared with the
        group's other members; on every assignment `resolve_offsets` says where to resume."""
        ...

    def reader(self, *, group_id: str, start: Mapping[TopicPartition, int]) -> EventConsumer:
        """Read the given partitions from the given offsets, outside group management."""
        ...

    async def end_offsets(self, topic: str) -> dict[int, int]:
        """The high watermark (offset of the next record) of every partition of `topic`."""
        ...

    async def close(self) -> None:
        """Flush what is queued and release resources."""
        ...


@runtime_checkable
class SchemaRegistry(Protocol):
    """Versioned schemas by subject, with global ids (Confluent-compatible)."""

    async def register(self, subject: str, schema: str) -> int:
        """Register `schema` under `subject` (idempotent) and return its global id;
        raise IncompatibleSchema if it breaks the subject's compatibility level."""
        ...

    async def schema(self, schema_id: int) -> str:
        """The schema text with id `schema_id`; raise UnknownSchemaId if there is none."""
        ...

    async def set_compatibility(self, subject: str, level: str) -> None:
        """Set the subject's compatibility level (BACKWARD, FORWARD, FULL, NONE, …)."""
        ...

    async def compatibility(self, subject: str) -> str:
        """The subject's compatibility level (the registry default if none is set)."""
        ...


class Codec(Protocol[T]):
    """Turns events into wire bytes and back."""

    async def encode(self, event: T) -> bytes:
        """The wire bytes of `event`."""
        ...

    async def decode_many(self, payloads: Sequence[bytes | None]) -> list[T | DecodeError]:
        """Decode each payload; a payload that cannot be decoded yields its DecodeError
        in its place instead of failing the batch."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ProjectedReading:
    """A valid reading, where it came from in the log, and the alerts it raised."""

    source: TopicPartition
    offset: int
    reading: Reading
    alerts: tuple[Alert, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetter:
    """A record that could not be processed, kept as it was read, with why it failed.

    It goes to the dead-letter topic `<topic>.dlq` and to the store (table `dead_letters`);
    its natural key is where it was read: (topic, partition, offset)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    """The original record's timestamp, milliseconds since the epoch."""
    error_class: str
    """The stable name of the failure, e.g. `bad_magic_byte`, `reading_out_of_range`."""
    message: str
    stack_trace: str | None
    attempts: int
    first_failed_at: datetime
    last_failed_at: datetime
    worker_id: str
    group_id: str
    headers: tuple[tuple[str, bytes], ...] = ()
    """The original record's headers (kept on the dead-letter topic, not in the store)."""

    @property
    def source(self) -> TopicPartition:
        """Where the record was read."""
        return TopicPartition(self.topic, self.partition)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetterFilter:
    """Which stored dead letters a query wants; None means any. Ranges are [from, to)."""

    topic: str | None = None
    partition: int | None = None
    error_class: str | None = None
    since: datetime | None = None
    """Last failure at or after."""
    until: datetime | None = None
    """Last failure before."""
    from_offset: int | None = None
    to_offset: int | None = None


@runtime_checkable
class DeadLetterStore(Protocol):
    """The dead letters stored with the batches that rejected them, for inspection."""

    async def find_dead_letters(
        self, query: DeadLetterFilter, *, limit: int = 100
    ) -> list[DeadLetter]:
        """Dead letters matching `query`, by topic, partition and offset."""
        ...

    async def dead_letter(self, topic: str, partition: int, offset: int) -> DeadLetter | None:
        """The dead letter of the record at (topic, partition, offset), if there is one."""
        ...

    async def purge_dead_letters(self, query: DeadLetterFilter) -> int:
        """Delete the dead letters matching `query`; return how many were deleted."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class SensorBatch:
    """What one consumed batch changes in the sensor projection.

    `next_offsets` covers every partition of the batch, including records that were invalid
    and produced no row: they are consumed too."""

    group_id: str
    readings: Sequence[ProjectedReading]
    next_offsets: Mapping[TopicPartition, int]
    dead_letters: Sequence[DeadLetter] = ()
    """Records of the batch that produced no row, stored (idempotently, by their source
    topic, partition and offset) in the same transaction as the offsets."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AppliedBatch:
    """What applying a batch changed."""

    readings_inserted: int
    skipped: int
    """Readings at offsets the group had already applied (a replayed or zombie batch)."""
    new_alerts: tuple[Alert, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredAlert:
    """An alert as stored, with whether (and when) a person acknowledged it."""

    alert: Alert
    acknowledged_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AlertPosition:
    """Where a page of alerts (newest event time first, then by id) ended: the next page
    starts after it. Keyset pagination, so pages stay stable while alerts are added."""

    timestamp: datetime
    alert_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertFilter:
    """Which stored alerts a query wants; None means any."""

    source: str | None = None
    sensor_type: str | None = None
    severity: Severity | None = None
    acknowledged: bool | None = None
    since: datetime | None = None
    """Event time at or after."""
    until: datetime | None = None
    """Event time before."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TypeStats:
    """Statistics of the readings of one sensor type (or of all) in a time range."""

    count: int
    sensors: int
    """Distinct sensor ids."""
    mean: float | None
    min: float | None
    max: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadingStats:
    """Statistics of the readings stored for a time range, overall and per sensor type."""

    overall: TypeStats
    by_type: Mapping[str, TypeStats]
    alerts: int
    """Alerts raised on readings in the range."""


@runtime_checkable
class SensorStore(Protocol):
    """The sensor projection: readings, one-minute aggregates, alerts and consumed offsets."""

    async def apply(self, batch: SensorBatch) -> AppliedBatch:
        """In one transaction: skip readings below the group's stored offsets, insert the
        rest (a reading already stored is left as it is), fold exactly the readings really
        inserted into their one-minute aggregates (so a repeated batch changes nothing), insert
        new alerts, store `next_offsets`."""
        ...

    async def stored_offsets(
        self, group_id: str, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """The next offset to read per partition, as stored with the group's last batch."""
        ...

    async def unpublished_alerts(self, limit: int) -> list[Alert]:
        """Stored alerts not yet published to the alerts topic, oldest first."""
        ...

    async def mark_published(self, alert_ids: Sequence[uuid.UUID]) -> None:
        """Record that these alerts were published."""
        ...

    async def latest_readings(
        self, *, sensor_id: str | None = None, sensor_type: str | None = None, limit: int = 10
    ) -> list[Reading]:
        """The most recent readings by event time, newest first."""
        ...

    async def aggregates(
        self, sensor_id: str, start: datetime, end: datetime
    ) -> list[WindowAggregate]:
        """The one-minute aggregates of a sensor with window_start in [start, end)."""
        ...

    async def alerts(self, *, source: str | None = None, limit: int = 100) -> list[Alert]:
        """Stored alerts, newest first."""
        ...

    async def count_readings(self) -> int:
        """How many readings are stored."""
        ...

    async def has_sensor(self, sensor_id: str) -> bool:
        """Whether any reading of `sensor_id` is stored."""
        ...

    async def reading_stats(
        self,
        *,
        since: datetime,
        until: datetime,
        sensor_type: str | None = None,
        sensor_id: str | None = None,
    ) -> ReadingStats:
        """Count, distinct sensors, mean, min and max of the readings with event time in
        [since, until), overall and per sensor type, and how many alerts they raised."""
        ...

    async def find_alerts(
        self, query: AlertFilter, *, after: AlertPosition | None = None, limit: int = 100
    ) -> list[StoredAlert]:
        """Stored alerts matching `query`, newest event time first (ties by alert id),
        starting after `after` (the last alert of the previous page)."""
        ...

    async def acknowledge_alert(self, alert_id: uuid.UUID, at: datetime) -> StoredAlert | None:
        """Mark the alert acknowledged at `at` (an alert already acknowledged keeps its
        first time) and return it; None when there is no such alert."""
        ...

    async def ping(self) -> None:
        """Return when the store answers; raise StoreUnavailable when it cannot."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
