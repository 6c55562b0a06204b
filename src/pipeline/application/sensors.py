"""The sensor projection: records from the readings topic → validated readings, alerts and
one-minute aggregates in the store, exactly once per consumer group."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pipeline.application.dead_letters import DeadLetterPublisher, dead_letter_of
from pipeline.application.errors import DecodeError, TransientError
from pipeline.application.poison import NOT_THE_RECORDS_FAULT, Isolation, isolate_poison
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
from pipeline.application.retries import as_originally_read
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

if TYPE_CHECKING:
    from pipeline.application.retries import RetryRouter
    from pipeline.application.worker import TransientFailure


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
    raw: Sequence[Record] = ()
    """The records as read, for dead-lettering one the store refuses."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchReport:
    """What handling one batch did."""

    records: int
    readings_inserted: int
    skipped: int
    rejections: tuple[Rejection, ...]
    new_alerts: tuple[Alert, ...]
    next_offsets: Mapping[TopicPartition, int] = field(default_factory=dict)
    diverted: Mapping[str, int] = field(default_factory=dict)
    """Records moved to a retry topic or the dead-letter topic, by topic."""


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
        retries: RetryRouter | None = None,
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
        self._retries = retries
        # The batch whose dead letters are on the broker already: a transient failure of
        # its transaction retries `apply`, which must not publish them twice.
        self._published: PreparedBatch | None = None
        # Likewise the records of a diverted batch already on a retry topic, and what went
        # where, while the transaction storing their offsets is retried.
        self._routed: tuple[Sequence[Record], list[DeadLetter], dict[str, int]] | None = None
        # A batch whose poison records were found and published, while its transaction is
        # retried: (the batch as prepared, the batch without them).
        self._isolated: tuple[PreparedBatch, PreparedBatch, Isolation] | None = None
        # The batch whose `apply` has not succeeded yet: what `divert` moves aside.
        self._applying: PreparedBatch | None = None

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
            raw=records,
        )

    def _dead_letter(self, record: Record, error: Exception, now: datetime) -> DeadLetter:
        # A record read from a retry topic is named by where it was first read: its dead
        # letter goes to that topic's DLQ, where `pipeline dlq` finds and re-drives it.
        return dead_letter_of(
            as_originally_read(record),
            error,
            at=now,
            worker_id=self._worker_id,
            group_id=self.group_id,
        )

    async def apply(self, prepared: PreparedBatch) -> BatchReport:
        """Publish the batch's dead letters and wait for the broker's acknowledgement, then
        store the batch, its dead letters and its offsets in one transaction (idempotent)."""
        self._applying = prepared
        letters = prepared.batch.dead_letters
        if self._publisher is not None and letters and self._published is not prepared:
            await self._publisher.publish(letters)
            self._published = prepared
        isolation: Isolation | None = None
        if self._isolated is not None and self._isolated[0] is prepared:
            # Its poison is dead-lettered and published already, the rest of it stored.
            _, prepared, isolation = self._isolated
        try:
            applied = await self._store.apply(prepared.batch)
        except NOT_THE_RECORDS_FAULT:
            raise
        except Exception as error:  # noqa: BLE001 - anything a record triggers is isolated
            # A permanent failure: find the records responsible, dead-letter them, store
            # the rest with the batch's offsets.
            original = prepared
            prepared, isolation = await self._without_poison(prepared, error)
            self._isolated = (original, prepared, isolation)
            applied = await self._store.apply(prepared.batch)
        self._published = None
        self._isolated = None
        self._applying = None
        inserted = applied.readings_inserted
        new_alerts = applied.new_alerts
        if isolation is not None:  # rows the bisection stored count as this batch's
            inserted += isolation.readings_inserted
            new_alerts = (*isolation.new_alerts, *new_alerts)
        return BatchReport(
            records=prepared.records,
            readings_inserted=inserted,
            skipped=applied.skipped,
            rejections=prepared.rejections,
            new_alerts=new_alerts,
            next_offsets=prepared.batch.next_offsets,
        )

    async def _without_poison(
        self, prepared: PreparedBatch, error: Exception
    ) -> tuple[PreparedBatch, Isolation]:
        isolation = await isolate_poison(self._store, self.group_id, prepared.batch.readings, error)
        poison = isolation.poison
        raw = {(r.topic, r.partition, r.offset): r for r in prepared.raw}
        now = self._clock.now()
        letters = [
            self._dead_letter(
                raw[(p.reading.source.topic, p.reading.source.partition, p.reading.offset)],
                p.error,
                now,
            )
            for p in poison
        ]
        if self._publisher is not None and letters:
            await self._publisher.publish(letters)
        refused = {id(p.reading) for p in poison}
        batch = replace(
            prepared.batch,
            readings=[r for r in prepared.batch.readings if id(r) not in refused],
            dead_letters=[*prepared.batch.dead_letters, *letters],
        )
        rejections = (*prepared.rejections, *(_rejection(letter) for letter in letters))
        return replace(prepared, batch=batch, rejections=rejections), isolation

    async def _not_yet_handled(
        self, records: Sequence[Record]
    ) -> tuple[Sequence[Record], list[DeadLetter]]:
        """Of a batch being diverted: the records with a reading still to store, and the
        batch's dead letters (published now unless `apply` already did)."""
        current = self._applying
        if current is None or current.raw is not records:
            return records, []
        published = self._published is current
        if self._isolated is not None and self._isolated[0] is current:
            current, published = self._isolated[1], True  # its poison is out already
        own = list(current.batch.dead_letters)
        if own and self._publisher is not None and not published:
            await self._publisher.publish(own)
            self._published = self._applying
        live = {(p.source.topic, p.source.partition, p.offset) for p in current.batch.readings}
        return [r for r in records if (r.topic, r.partition, r.offset) in live], own

    async def healthy(self) -> bool:
        """Whether the store answers: False during a database outage, True when a batch
        failing transiently fails for reasons of its own (deadlock, timeout)."""
        try:
            await self._store.ping()
        except TransientError:
            return False
        return True

    async def divert(self, records: Sequence[Record], failure: TransientFailure) -> BatchReport:
        """Move a batch that keeps failing transiently to its next retry topic (or the DLQ
        past the last level), acknowledged by the broker, then store its offsets (and those
        dead letters) in one transaction with no readings. Should that transaction fail, the
        worker retries this step, which then only stores. (Should the process die first, the
        batch is diverted again: its retry-topic copies exist twice, which is harmless as the
        projection is idempotent on (sensor_id, time).)"""
        if self._retries is None:
            raise failure.error
        # Only the records that still need work are moved: those already dead letters (or
        # refused for good) are stored as dead letters with the offsets, never retried.
        to_route, own = await self._not_yet_handled(records)
        if self._routed is not None and self._routed[0] is records:
            _, letters, sent = self._routed
        else:
            letters, counts = await self._retries.route(
                to_route,
                failure.error,
                attempts=failure.attempts,
                first_failed_at=failure.first_failed_at,
                at=failure.last_failed_at,
            )
            sent = dict(counts)
            self._routed = (records, letters, sent)
        letters = [*own, *letters]
        next_offsets: dict[TopicPartition, int] = {}
        for record in records:
            next_offsets[record.topic_partition] = record.offset + 1
        batch = SensorBatch(
            group_id=self.group_id, readings=(), next_offsets=next_offsets, dead_letters=letters
        )
        applied = await self._store.apply(batch)
        self._routed = None
        self._applying = self._isolated = self._published = None
        return BatchReport(
            records=len(records),
            readings_inserted=applied.readings_inserted,
            skipped=applied.skipped,
            rejections=tuple(_rejection(letter) for letter in letters),
            new_alerts=applied.new_alerts,
            next_offsets=next_offsets,
            diverted=sent,
        )


def _rejection(letter: DeadLetter) -> Rejection:
    return Rejection(
        topic=letter.topic,
        partition=letter.partition,
        offset=letter.offset,
        error_class=letter.error_class,
        reason=letter.message,
    )
