"""The sensor projection: records from the readings topic → validated readings, alerts and
one-minute aggregates in the store, exactly once per consumer group."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pipeline.application.dead_letters import DeadLetterPublisher, dead_letter_of
from pipeline.application.errors import DecodeError
from pipeline.application.ports import (
    Clock,
    Codec,
    DeadLetter,
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
    """Handles batches of records from the readings topic for one consumer group.

    A record that cannot be decoded or breaks a domain rule becomes a dead letter: with a
    `dead_letters` publisher it is published to `<topic>.dlq` and acknowledged by the broker
    before the batch's transaction stores it (table `dead_letters`) with the offsets."""

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
        dead_letters: DeadLetterPublisher | None = None,
        worker_id: str = "unknown",
    ) -> None:
        self.group_id = group_id
        self._codec = codec
        self._store = store
        self._clock = clock
        self._thresholds = thresholds
        self._catalog = catalog
        self._max_clock_skew = max_clock_skew
        self._publisher = dead_letters
        self._worker_id = worker_id
        # The batch whose dead letters are on the broker already: a transient failure of
        # its transaction retries `apply`, which must not publish them twice.
        self._published: PreparedBatch | None = None

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
        letters: list[DeadLetter] = []
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
                letters.append(self._dead_letter(record, item, now))
                continue
            try:
                validate_reading(item, now=now, catalog=catalog, max_clock_skew=skew)
            except DomainError as error:
                letters.append(self._dead_letter(record, error, now))
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
                group_id=self.group_id,
                readings=projected,
                next_offsets=next_offsets,
                dead_letters=letters,
            ),
            rejections=tuple(_rejection(letter) for letter in letters),
        )

    def _dead_letter(self, record: Record, error: Exception, now: datetime) -> DeadLetter:
        return dead_letter_of(
            record, error, at=now, worker_id=self._worker_id, group_id=self.group_id
        )

    async def apply(self, prepared: PreparedBatch) -> BatchReport:
        """Publish the batch's dead letters and wait for the broker's acknowledgement, then
        store the batch, its dead letters and its offsets in one transaction (idempotent)."""
        letters = prepared.batch.dead_letters
        if self._publisher is not None and letters and self._published is not prepared:
            await self._publisher.publish(letters)
            self._published = prepared
        applied = await self._store.apply(prepared.batch)
        self._published = None
        return BatchReport(
            records=prepared.records,
            readings_inserted=applied.readings_inserted,
            skipped=applied.skipped,
            rejections=prepared.rejections,
            new_alerts=applied.new_alerts,
            next_offsets=prepared.batch.next_offsets,
        )


def _rejection(letter: DeadLetter) -> Rejection:
    return Rejection(
        topic=letter.topic,
        partition=letter.partition,
        offset=letter.offset,
        error_class=letter.error_class,
        reason=letter.message,
    )
