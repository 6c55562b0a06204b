"""The checkpoint of a job under database authority: one transaction per batch holding the
rows the batch writes to its sinks, the state its steps changed, its dead letters and the
offsets it consumed — so a batch is either wholly durable or not at all.

Sinks are bound by name: a `CheckpointStore` adapter is built with the sink writers of its
technology (e.g. the readings table's COPY-and-insert for PostgreSQL), and writes each
batch's `SinkRows` through them inside the checkpoint's transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from pipeline.application.ports.dead_letters import DeadLetter
from pipeline.application.ports.records import Record, TopicPartition
from pipeline.streams.state import StateChange


@dataclass(frozen=True, slots=True, kw_only=True)
class SinkRows:
    """The rows one batch sends to one sink, each with the source partition (task) it was
    computed in and the record it came from (None for a window's result)."""

    sink: str
    rows: Sequence[object]
    parts: Sequence[int]
    origins: Sequence[Record | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckpointBatch:
    """Everything one batch makes durable, in one transaction."""

    group_id: str
    start_offsets: Mapping[TopicPartition, int]
    """The first offset the batch read in each partition: a partition whose stored offset is
    already past it was handled by someone else (a zombie's batch, or a repeat) and is
    fenced — none of its rows, state or offsets are written."""
    next_offsets: Mapping[TopicPartition, int]
    writes: Sequence[SinkRows] = ()
    state: Sequence[StateChange] = ()
    dead_letters: Sequence[DeadLetter] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Committed:
    """What committing a batch changed."""

    written: Mapping[str, int] = field(default_factory=dict)
    """Rows a sink really inserted or changed, by sink name (a repeated row counts 0)."""
    events: Sequence[object] = ()
    """What the sinks report as newly stored (e.g. alerts for the outbox relay)."""
    fenced: Mapping[TopicPartition, int] = field(default_factory=dict)
    """Partitions skipped because their stored offset was past the batch's start, with that
    stored offset: the caller restores their state and reads on from there."""


@dataclass(frozen=True, slots=True)
class SinkResult:
    """What one sink writer did with one batch's rows (an adapter's sink writers return it;
    the store adds them up into `Committed`)."""

    written: int
    """Rows really inserted or changed (a row already stored as it is counts 0)."""
    events: Sequence[object] = ()
    """What the sink newly stored and someone should hear about (e.g. new alerts)."""


@runtime_checkable
class CheckpointStore(Protocol):
    """Where a job under database authority keeps its sinks' rows, state and offsets."""

    async def commit(self, batch: CheckpointBatch) -> Committed:
        """In one transaction: lock the group's offsets of the batch's partitions, fence the
        partitions already past the batch's start, write the rest's sink rows, state
        changes, dead letters (idempotent by source) and next offsets."""
        ...

    async def stored_offsets(
        self, group_id: str, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """The next offset to read per partition, as stored with the group's last batch."""
        ...

    async def load_state(
        self, group_id: str, parts: Sequence[int]
    ) -> Mapping[int, Mapping[str, Collection[tuple[bytes, bytes]]]]:
        """The group's state of the given source partitions: per partition, per step id,
        the serialized (key, value) pairs (a dict's items, where the backing keeps the
        latest value per key in one)."""
        ...

    async def ping(self) -> None:
        """Return when the store answers; raise StoreUnavailable when it cannot."""
        ...

    async def close(self) -> None:
        """Finish the work the store does in the background (PostgreSQL: folding the state
        log); called once by its owner, after the last commit."""
        ...
