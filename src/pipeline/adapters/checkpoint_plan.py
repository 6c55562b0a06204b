"""What a CheckpointBatch asks of a store once the group's stored offsets are known: which
partitions are fenced, and the rest of the batch grouped for set-based writes. Shared by the
SQL and in-memory checkpoint stores, so that they fence alike."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from pipeline.application.errors import ConfigurationError
from pipeline.application.ports.checkpoint import CheckpointBatch
from pipeline.application.ports.dead_letters import DeadLetter
from pipeline.application.ports.records import Record, TopicPartition
from pipeline.streams.state import StateChange


@dataclass(frozen=True, slots=True)
class SinkWrite:
    """One sink's rows of a batch (every `SinkRows` of that sink, in order), less the rows
    of fenced partitions."""

    sink: str
    rows: Sequence[object]
    origins: Sequence[Record | None]


@dataclass(frozen=True, slots=True)
class CheckpointPlan:
    """What is left to write of a batch."""

    fenced: dict[TopicPartition, int]
    """Every partition of the batch whose partition number is fenced, with its stored
    offset."""
    writes: list[SinkWrite]
    upserts: list[StateChange]
    """State entries to store, one per (step, partition, key): the batch's last change."""
    deletes: list[StateChange]
    dead_letters: list[DeadLetter]
    next_offsets: list[tuple[TopicPartition, int]]
    """Sorted by partition."""


def check_sinks(batch: CheckpointBatch, bound: Collection[str]) -> None:
    """Refuse a batch that writes to a sink the store was not built with, before anything
    is written."""
    unknown = sorted({w.sink for w in batch.writes} - set(bound))
    if unknown:
        raise ConfigurationError(
            f"no sink writer bound for {', '.join(map(repr, unknown))}; "
            f"this checkpoint store has {', '.join(map(repr, sorted(bound))) or 'none'}"
        )


def partitions_of(batch: CheckpointBatch) -> list[TopicPartition]:
    """Every partition the batch starts in or moves the offset of, sorted: the order in
    which their offset rows are locked, so that two commits cannot deadlock."""
    return sorted({*batch.start_offsets, *batch.next_offsets})


def plan_checkpoint(batch: CheckpointBatch, stored: Mapping[TopicPartition, int]) -> CheckpointPlan:
    """Fence the partitions whose stored offset is past the batch's start and keep the rest.

    The partitions numbered p of all the job's source topics form one task, whose state is
    one: when any of them is fenced, all of them are (rows, state, dead letters, offsets)."""
    fenced_parts = {
        tp.partition for tp, start in batch.start_offsets.items() if stored.get(tp, start) > start
    }
    fenced = {
        tp: stored.get(tp, batch.start_offsets.get(tp, 0))
        for tp in partitions_of(batch)
        if tp.partition in fenced_parts
    }
    latest: dict[tuple[str, int, bytes], StateChange] = {}
    for change in batch.state:
        if change.part not in fenced_parts:
            latest[(change.step, change.part, change.key)] = change
    return CheckpointPlan(
        fenced=fenced,
        writes=_writes(batch, fenced_parts),
        upserts=[c for c in latest.values() if c.value is not None],
        deletes=[c for c in latest.values() if c.value is None],
        dead_letters=[x for x in batch.dead_letters if x.partition not in fenced_parts],
        next_offsets=sorted(
            (tp, offset)
            for tp, offset in batch.next_offsets.items()
            if tp.partition not in fenced_parts
        ),
    )


def _writes(batch: CheckpointBatch, fenced: set[int]) -> list[SinkWrite]:
    rows: dict[str, list[object]] = {}
    origins: dict[str, list[Record | None]] = {}
    for write in batch.writes:
        if len(write.rows) != len(write.parts) or len(write.rows) != len(write.origins):
            raise ValueError(
                f"sink {write.sink!r}: {len(write.rows)} rows, {len(write.parts)} parts and "
                f"{len(write.origins)} origins; each row needs its part and origin"
            )
        sink_rows = rows.setdefault(write.sink, [])
        sink_origins = origins.setdefault(write.sink, [])
        if not fenced:
            sink_rows.extend(write.rows)
            sink_origins.extend(write.origins)
            continue
        for row, part, origin in zip(write.rows, write.parts, write.origins, strict=True):
            if part not in fenced:
                sink_rows.append(row)
                sink_origins.append(origin)
    return [SinkWrite(sink, rows[sink], origins[sink]) for sink in rows]
