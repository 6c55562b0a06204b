"""Kafka authority: what one batch of a Kafka-to-Kafka job writes in its transaction.

Under Kafka authority a batch is one transaction on the event log: its sinks' rows (each to
its topic), its changed state entries (to the changelog topic of their step, in the
partition of their source partition, a deletion as a tombstone), its dead letters (to
`<topic>.dlq`) and its consumed offsets. This module turns a `CheckpointBatch` into those
records, for the partitions the writer still holds; the adapters (Kafka, in memory) make
them durable together with the offsets.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Protocol, runtime_checkable

from pipeline.application.dead_letters import dead_letter_headers
from pipeline.application.errors import ConfigurationError
from pipeline.application.ports.checkpoint import CheckpointBatch, CheckpointStore
from pipeline.application.ports.event_log import EventConsumer
from pipeline.application.ports.records import TopicPartition
from pipeline.application.topic_names import changelog_topic, dead_letter_topic
from pipeline.streams import Job
from pipeline.streams.state import STREAM_TIME_STEP

CHANGELOG_CONFIG: Final[Mapping[str, str]] = MappingProxyType({"cleanup.policy": "compact"})
"""Topic configuration of changelog topics: only the latest entry per key is kept."""

RowEncoder = Callable[[Any], Awaitable[tuple[bytes | None, bytes | None]]]
"""How a sink's row becomes a record: its (key, value) bytes."""


@dataclass(frozen=True, slots=True)
class TopicSink:
    """Where one of a job's sinks writes under Kafka authority: `topic`, each row as the
    record `await encode(row)` returns (placed by its key, as the log places keys)."""

    topic: str
    encode: RowEncoder


class TransactionalCheckpoint(CheckpointStore, Protocol):
    """A `CheckpointStore` committing each batch as one Kafka transaction, bound to one
    member of a consumer group and its own transactional producer."""

    async def start(self) -> None:
        """Fence older instances of this member, create the changelog topics and check the
        output topics exist."""
        ...

    async def close(self) -> None:
        """Release the transactional producer."""
        ...


@runtime_checkable
class TransactionalLog(Protocol):
    """An event log that can commit a group member's batches as transactions (Kafka, and the
    in-memory log)."""

    def transactional_checkpoint(
        self,
        consumer: EventConsumer,
        *,
        member_id: str,
        sinks: Mapping[str, TopicSink],
        steps: Sequence[str],
    ) -> TransactionalCheckpoint:
        """The Kafka-authority checkpoint of `consumer` (a member made by this log), with
        transactional.id `<group>-<member_id>`."""
        ...


@runtime_checkable
class GroupRewinding(Protocol):
    """An event log that can move a stopped group of a job under Kafka authority back to
    earlier offsets, together with the state committed with them (Kafka)."""

    async def group_offsets(
        self, group_id: str, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """The offsets group `group_id` committed for `partitions` (those it never
        committed left out), once no transaction committing some of them is open."""
        ...

    async def rewind_group(
        self,
        group_id: str,
        *,
        offsets: Mapping[TopicPartition, int],
        changelogs: Sequence[str],
        state: Sequence[OutRecord],
    ) -> int:
        """Raise GroupActive while group `group_id` has members. Otherwise commit in one
        transaction: a tombstone for every live key of the partitions `offsets` name in
        each topic of `changelogs`, then the records `state`, and `offsets` as the group's
        committed offsets. Return how many keys were tombstoned."""
        ...


def sink_topics(job: Job) -> dict[str, str] | None:
    """The topic of each of `job`'s sinks when all of them are topics (the job runs under
    Kafka authority), None when none is (database authority). A job mixing both cannot
    commit a batch atomically: ConfigurationError."""
    sinks = job.sinks
    topics = {name: sink.topic for name, sink in sinks.items() if sink.topic is not None}
    if not topics:
        return None
    if len(topics) < len(sinks):
        others = sorted(set(sinks) - set(topics))
        raise ConfigurationError(
            f"job {job.name!r} writes to topics ({', '.join(sorted(topics))}) and to sinks "
            f"that are not topics ({', '.join(others)}): one batch cannot commit to both "
            "atomically; split it into two jobs"
        )
    return topics


@dataclass(frozen=True, slots=True)
class OutRecord:
    """One record of a transaction; partition None lets the log place it by its key."""

    topic: str
    partition: int | None
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()
    timestamp_ms: int = 0
    """CreateTime; 0 means now."""


def transactional_id(group_id: str, member_id: str) -> str:
    """The transactional.id of member `member_id` of consumer group `group_id`: stable
    across the member's restarts, unique among the group's live members."""
    if not member_id:
        raise ConfigurationError("a transactional member needs a non-empty member id")
    return f"{group_id}-{member_id}"


def changelog_topics(group_id: str, steps: Iterable[str]) -> dict[str, str]:
    """The changelog topic of each stateful step, the reserved stream-time step included."""
    try:
        return {
            step: changelog_topic(group_id, step)
            for step in dict.fromkeys([STREAM_TIME_STEP, *steps])
        }
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from exc


def owned_parts(
    assigned: frozenset[TopicPartition], partition_counts: Mapping[str, int]
) -> frozenset[int]:
    """The source partitions held in every subscribed topic that has them (topic →
    partition count): the only ones whose outputs, state and offsets a member may write."""
    return frozenset(
        part
        for part in {tp.partition for tp in assigned}
        if all(
            TopicPartition(topic, part) in assigned
            for topic, count in partition_counts.items()
            if part < count
        )
    )


def lost_partitions(batch: CheckpointBatch, owned: frozenset[int]) -> list[TopicPartition]:
    """The batch's source partitions no longer held."""
    return sorted(
        tp for tp in {*batch.start_offsets, *batch.next_offsets} if tp.partition not in owned
    )


EncodedWrites = list[tuple[str, Sequence[int], list[tuple[bytes | None, bytes | None]]]]
"""Per SinkRows of a batch: (topic, parts, (key, value) per row)."""


class TransactionPlanner:
    """Turns batches into the records of their transactions (see the module doc)."""

    def __init__(self, sinks: Mapping[str, TopicSink], changelogs: Mapping[str, str]) -> None:
        self._sinks = dict(sinks)
        self._changelogs = dict(changelogs)

    async def encode(self, batch: CheckpointBatch) -> EncodedWrites:
        """Each sink's rows as records. Called before any transaction begins: a row that
        cannot be encoded fails the batch with nothing to abort, and the transaction stays
        as short as writing takes (read_committed readers wait for open ones)."""
        unknown = sorted({w.sink for w in batch.writes} - self._sinks.keys())
        if unknown:
            raise ConfigurationError(f"no topic is bound to sink(s) {unknown}")
        steps = sorted({c.step for c in batch.state} - self._changelogs.keys())
        if steps:
            raise ConfigurationError(f"step(s) {steps} have no changelog topic: declare them")
        encoded: EncodedWrites = []
        for write in batch.writes:
            sink = self._sinks[write.sink]
            encoded.append((sink.topic, write.parts, [await sink.encode(r) for r in write.rows]))
        return encoded

    def records(
        self, batch: CheckpointBatch, encoded: EncodedWrites, owned: frozenset[int]
    ) -> tuple[list[OutRecord], dict[str, int]]:
        """The transaction's records for the source partitions in `owned`, and how many
        rows each sink gets."""
        records: list[OutRecord] = []
        written: dict[str, int] = {}
        for write, (topic, parts, rows) in zip(batch.writes, encoded, strict=True):
            before = len(records)
            records.extend(
                OutRecord(topic, None, key, value)
                for part, (key, value) in zip(parts, rows, strict=True)
                if part in owned
            )
            written[write.sink] = written.get(write.sink, 0) + len(records) - before
        changelogs = self._changelogs
        records.extend(
            OutRecord(changelogs[change.step], change.part, change.key, change.value)
            for change in batch.state
            if change.part in owned
        )
        records.extend(
            OutRecord(
                dead_letter_topic(letter.topic),
                None,
                letter.key,
                letter.value,
                (*letter.headers, *dead_letter_headers(letter)),
                letter.timestamp_ms,
            )
            for letter in batch.dead_letters
            if letter.partition in owned
        )
        return records, written

    def offsets(self, batch: CheckpointBatch, owned: frozenset[int]) -> dict[TopicPartition, int]:
        """The batch's next offsets of the source partitions in `owned`."""
        return {tp: o for tp, o in batch.next_offsets.items() if tp.partition in owned}
