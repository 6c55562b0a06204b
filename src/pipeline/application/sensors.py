"""The sensor projection: records from the readings topic → validated readings, alerts and
one-minute aggregates in the store, exactly once per consumer group."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from pipeline.application.errors import DecodeError, error_class_of
from pipeline.application.ports import (
    Clock,
    Codec,
    ProjectedReading,
    Record,
    SensorBatch,
    SensorStore,
    TopicPartition,
)
from pipeline.domain import (
    DEFAULT_CATALOG,
    DEFAULT_THRESHOLDS,
    Alert,
    DomainError,
    Reading,
    SensorCatalog,
    Threshold,
    check_thresholds,
    validate_reading,
)
from pipeline.domain.sensors import DEFAULT_MAX_CLOCK_SKEW


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejection:
    """A record that produced no row, and why."""

    topic: str
    partition: int
    offset: int
    error_class: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedBatch:
    """A decoded and validated batch, ready to be made durable."""

    records: int
    batch: SensorBatch
    rejections: tuple[Rejection, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchReport:
    """What handling one batch did."""

    records: int
    readings_inserted: int
    skipped: int
    rejections: tuple[Rejection, ...]
    new_alerts: tuple[Alert, ...]
    next_offsets: Mapping[TopicPartition, int] = field(default_factory=dict)


class SensorProjection:
    """Handles batches of records from the readings topic for one consumer group."""

    def __init__(
        self,
        *,
        group_id: str,
        codec: Codec[Reading],
        store: SensorStore,
        clock: Clock,
        thresholds: Mapping[str, Threshold] = DEFAULT_THRESHOLDS,
        catalog: SensorCatalog = DEFAULT_CATALOG,
        max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW,
    ) -> None:
        self.group_id = group_id
        self._codec = codec
        self._store = store
        self._clock = clock
        self._thresholds = thresholds
        self._catalog = catalog
        self._max_clock_skew = max_clock_skew

    async def handle(self, records: Sequence[Record]) -> BatchReport:
        """Decode, validate and store one batch atomically with its offsets."""
        return await self.apply(await self.prepare(records))

    async def prepare(self, records: Sequence[Record]) -> PreparedBatch:
        """Decode and validate a batch and derive its alerts; nothing is stored yet.

        Undecodable and invalid records become rejections (they are consumed: their offsets
        are stored with the batch) so one bad record never blocks a partition."""
        decoded = await self._codec.decode_many([record.value for record in records])
        now = self._clock.now()
        catalog, skew, thresholds = self._catalog, self._max_clock_skew, self._thresholds
        projected: list[ProjectedReading] = []
        rejections: list[Rejection] = []
        # Per-record work is the worker's budget: one TopicPartition per partition, not per
        # record; records of a partition arrive in offset order, so the last one is the max.
        sources: dict[tuple[str, int], TopicPartition] = {}
        next_offsets: dict[TopicPartition, int] = {}
        for record, item in zip(records, decoded, strict=True):
            source = sources.get((record.topic, record.partition))
            if source is None:
                source = sources[(record.topic, record.partition)] = record.topic_partition
            next_offsets[source] = record.offset + 1
            if isinstance(item, DecodeError):
                rejections.append(_rejection(record, item))
                continue
            try:
                validate_reading(item, now=now, catalog=catalog, max_clock_skew=skew)
            except DomainError as error:
                rejections.append(_rejection(record, error))
                continue
            alert = check_thresholds(item, thresholds)
            projected.append(
                ProjectedReading(
                    source=source,
                    offset=record.offset,
                    reading=item,
                    alerts=() if alert is None else (alert,),
                )
            )
        return PreparedBatch(
            records=len(records),
            batch=SensorBatch(
                group_id=self.group_id, readings=projected, next_offsets=next_offsets
            ),
            rejections=tuple(rejections),
        )

    async def apply(self, prepared: PreparedBatch) -> BatchReport:
        """Store a prepared batch with its offsets in one transaction (idempotent)."""
        applied = await self._store.apply(prepared.batch)
        return BatchReport(
            records=prepared.records,
            readings_inserted=applied.readings_inserted,
            skipped=applied.skipped,
            rejections=prepared.rejections,
            new_alerts=applied.new_alerts,
            next_offsets=prepared.batch.next_offsets,
        )


def _rejection(record: Record, error: Exception) -> Rejection:
    return Rejection(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        error_class=error_class_of(error),
        reason=str(error),
    )
