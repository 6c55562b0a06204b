"""What a SensorBatch asks of the database, worked out before any SQL is sent."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from pipeline.application.ports import AppliedBatch, ProjectedReading, SensorBatch, TopicPartition
from pipeline.domain.alerts import Alert
from pipeline.domain.windows import ONE_MINUTE

WINDOW = ONE_MINUTE
"""The size of the windows kept in `reading_aggregates_1m`."""


@dataclass(frozen=True, slots=True)
class BatchPlan:
    """The rows of a batch that still have to be written, once stored offsets are known."""

    fresh: list[ProjectedReading]
    """Readings at or past the group's stored offset of their partition, in batch order."""
    skipped: int
    alerts: list[Alert]
    """The alerts of the fresh readings, once per alert id, in batch order."""


def minute_of(moment: datetime) -> datetime:
    """The start of the one-minute window holding the UTC `moment`: the same instant as the
    domain's `window_start(moment, ONE_MINUTE)` (the epoch falls on a minute boundary), at a
    fraction of its cost, which matters at thousands of readings per batch."""
    return moment.replace(second=0, microsecond=0)


def partitions_of(batch: SensorBatch) -> list[TopicPartition]:
    """Every partition the batch reads from or moves the offset of, sorted (a fixed lock
    order keeps two transactions on the same partitions from deadlocking)."""
    # Plain tuples hash in C; hashing the dataclass per reading costs more than the SQL.
    found = {(tp.topic, tp.partition) for tp in batch.next_offsets}
    found.update((r.source.topic, r.source.partition) for r in batch.readings)
    return [TopicPartition(topic, partition) for topic, partition in sorted(found)]


def plan_batch(batch: SensorBatch, stored: Mapping[TopicPartition, int]) -> BatchPlan:
    """Split the batch into what is new and what the group has applied before."""
    if stored:
        floors = {(tp.topic, tp.partition): offset for tp, offset in stored.items()}
        fresh = [
            r
            for r in batch.readings
            if r.offset >= floors.get((r.source.topic, r.source.partition), 0)
        ]
    else:
        fresh = list(batch.readings)
    alerts: dict[object, Alert] = {}
    for projected in fresh:
        for alert in projected.alerts:
            alerts.setdefault(alert.alert_id, alert)
    return BatchPlan(
        fresh=fresh,
        skipped=len(batch.readings) - len(fresh),
        alerts=list(alerts.values()),
    )


class BatchWriter(Protocol):
    """Writes one batch inside one transaction on a connection (one per SQL dialect)."""

    async def apply(self, conn: AsyncConnection, batch: SensorBatch) -> AppliedBatch:
        """Apply `batch` atomically; the caller owns the connection."""
        ...
