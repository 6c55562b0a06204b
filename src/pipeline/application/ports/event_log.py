"""The partitioned, replayable event log and its consumers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol, runtime_checkable

from pipeline.application.errors import PublishError
from pipeline.application.ports.records import OutgoingRecord, Record, TopicPartition, TopicSpec

OffsetResolver = Callable[[Sequence[TopicPartition]], Awaitable[Mapping[TopicPartition, int]]]
"""Given newly assigned partitions, the offsets to resume from (partitions absent from the
answer resume from the group's committed offset, or the beginning)."""


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

    async def seek(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Read the given assigned partitions on from the given offsets: the next records
        returned from each start at its offset, and records of it fetched before (not yet
        returned) are dropped. Partitions not assigned are ignored; pausing is kept."""
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
class CaughtUp(Protocol):
    """A consumer that knows, without asking the broker, which partitions it has read to
    their end (the idle timers of a job's partitions start only then)."""

    def caught_up(self) -> frozenset[TopicPartition]:
        """The assigned partitions known to have nothing left to read: the position has
        reached the end last learned (a partition whose end is not known yet is not)."""
        ...


@runtime_checkable
class EventLog(Protocol):
    """The partitioned, replayable event log (Kafka, or in memory)."""

    async def ensure_topics(self, specs: Sequence[TopicSpec]) -> None:
        """Create the topics that do not exist yet; existing ones are left as they are, except
        that a topic holding copies of another's records gets room for them (see TopicSpec)."""
        ...

    async def delete_topics(self, names: Sequence[str]) -> None:
        """Delete the topics of `names` that exist, with their records and the offsets
        groups committed on them; names that do not exist are ignored. Once it returns,
        `ensure_topics` makes a new, empty topic of any of the names."""
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

    async def deliver(
        self, records: Sequence[OutgoingRecord], timeout: float = 30.0
    ) -> list[PublishError | None]:
        """Publish `records` and wait for the answer on each: None where it was acknowledged,
        the error where it was refused for good (RecordTooLarge: over its topic's size
        limit). Raise (BrokerUnavailable, PublishError) when an outcome stays unknown."""
        ...

    def consumer(
        self,
        *,
        group_id: str,
        topics: Sequence[str],
        resolve_offsets: OffsetResolver | None = None,
        co_partitioned: bool = False,
        interleaved: bool = False,
    ) -> EventConsumer:
        """Join consumer group `group_id` on `topics`. Partitions are shared with the
        group's other members; on every assignment `resolve_offsets` says where to resume.

        `interleaved`: polls take small runs of each assigned partition in turn, so that a
        batch read from a backlog holds every partition's records from about the same
        stretch of its log. A job writing a re-keyed topic asks for it: each partition of
        its output follows the order it read its input partitions in, and runs of minutes
        of event time from one input partition after another would reach a windowed job
        downstream as late records.

        `co_partitioned`: the member holding partition p of one topic holds partition p of
        every topic of the same partition count (Kafka's range assignor), as a job joining
        co-partitioned topics needs; every member of the group must ask for it. A rebalance
        then revokes every member's partitions before assigning them again (eager), where
        the default moves only the partitions that change owner (cooperative-sticky)."""
        ...

    def reader(self, *, group_id: str, start: Mapping[TopicPartition, int]) -> EventConsumer:
        """Read the given partitions from the given offsets, outside group management."""
        ...

    async def end_offsets(self, topic: str) -> dict[int, int]:
        """The high watermark (offset of the next record) of every partition of `topic`."""
        ...

    async def offsets_for_time(self, topic: str, timestamp_ms: int) -> dict[int, int]:
        """Per partition of `topic`, the first offset whose record timestamp is at or after
        `timestamp_ms` (the partition's end offset when there is none)."""
        ...

    async def close(self) -> None:
        """Flush what is queued and release resources."""
        ...
