"""Builders for the Kafka-authority checkpoint's tests: batches that turn each polled
record into an output row, a state entry and, for the first ones, a dead letter."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from pipeline.application.dead_letters import dead_letter_of
from pipeline.application.ports import EventConsumer, Record, TopicPartition
from pipeline.application.ports.checkpoint import CheckpointBatch, SinkRows
from pipeline.domain.errors import InvalidReading
from pipeline.streams.state import StateChange, dumps

STEP = "count"
"""The stateful step the batches write."""


async def identity(row: object) -> tuple[bytes | None, bytes | None]:
    """The sink encoder of these tests: rows are already (key, value) pairs."""
    assert isinstance(row, tuple)
    return row[0], row[1]


def tag_of(record: Record) -> str:
    return (record.value or b"").decode()


def output_of(record: Record, tag: str) -> bytes:
    """The output value a batch tagged `tag` writes for `record`."""
    return f"{tag}:{tag_of(record)}".encode()


async def poll_all(consumer: EventConsumer, count: int) -> list[Record]:
    """Poll until `count` records arrived (30 s at most)."""
    records: list[Record] = []
    deadline = time.monotonic() + 30
    while len(records) < count:
        assert time.monotonic() < deadline, f"polled {len(records)} of {count} records"
        records += await consumer.poll(100, 0.5)
    return records


def batch_of(
    group: str,
    records: Sequence[Record],
    *,
    tag: str,
    state: Callable[[Record], bytes | None] | None = None,
    rejected: int = 0,
) -> CheckpointBatch:
    """The batch that turns each record into the output `output_of(record, tag)` (sink
    "out") and the state entry key → `state(record)` (default: the record's value); the
    first `rejected` records become dead letters instead."""
    kept, bad = list(records[rejected:]), list(records[:rejected])
    starts: dict[TopicPartition, int] = {}
    nexts: dict[TopicPartition, int] = {}
    for r in records:
        starts[r.topic_partition] = min(starts.get(r.topic_partition, r.offset), r.offset)
        nexts[r.topic_partition] = max(nexts.get(r.topic_partition, 0), r.offset + 1)
    value_of = state or (lambda r: dumps(tag_of(r)))
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return CheckpointBatch(
        group_id=group,
        start_offsets=starts,
        next_offsets=nexts,
        writes=[
            SinkRows(
                sink="out",
                rows=[(r.key, output_of(r, tag)) for r in kept],
                parts=[r.partition for r in kept],
                origins=kept,
            )
        ],
        state=[StateChange(STEP, r.partition, dumps(r.key), value_of(r)) for r in kept],
        dead_letters=[
            dead_letter_of(r, InvalidReading("rejected"), at=at, worker_id="w", group_id=group)
            for r in bad
        ],
    )
