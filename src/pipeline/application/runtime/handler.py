"""A job under database authority, as the consumer loop's batch handler.

`prepare` decodes a batch with each source topic's codec, runs it through the job's `Task`
and serializes the state it changed — CPU only, so the loop overlaps it with the previous
batch's transaction. `apply` publishes the batch's dead letters and late records (and waits
for the broker's acknowledgement), then commits sink rows, state, dead letters and offsets
in one transaction of the `CheckpointStore`.

State is restored from the store whenever it may differ from what the task holds: when
partitions are assigned, when the store fenced a partition (someone else had handled it
further), and when a batch was diverted to a retry topic instead of committed (its records
must not stay counted). Each restore starts a new *epoch*; a batch prepared in an older one
is prepared again before it is applied, so it never commits results computed on state that
was rolled back.

A batch the store fenced in part (`BatchReport.fenced`: another member had stored those
partitions further) leads to `resync`, as does, under Kafka authority (`kafka_authority`,
the store a Kafka-transaction checkpoint), a batch the group refused (`Fenced`). Under Kafka
authority the batch's dead letters also ride in its transaction instead of being published
first, and rows a commit fails on are not bisected (a half written to a topic would be
written again).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from pipeline.application.dead_letters import DeadLetterPublisher, dead_letter_of
from pipeline.application.errors import (
    DecodeError,
    MissingValue,
    TransientError,
    error_class_of,
)
from pipeline.application.ports.checkpoint import CheckpointBatch, CheckpointStore, SinkRows
from pipeline.application.ports.dead_letters import DeadLetter
from pipeline.application.ports.event_log import CaughtUp, EventLog
from pipeline.application.ports.records import Clock, Record, TopicPartition
from pipeline.application.ports.registry import Codec
from pipeline.application.retries import RetryRouter, as_originally_read
from pipeline.application.runtime.poison import NOT_THE_RECORDS_FAULT, isolate_poison
from pipeline.application.runtime.report import BatchReport, DeadLettered
from pipeline.application.runtime.retry_policy import TransientFailure
from pipeline.application.topic_names import late_topic
from pipeline.streams import Job, Output, Task, Tombstone, to_millis

log = structlog.get_logger(__name__)

H_LATE_STEP = "late.step"
H_LATE_WATERMARK = "late.watermark"


@dataclass(slots=True, kw_only=True)
class PreparedBatch:
    """A batch run through the job, ready to be made durable."""

    records: Sequence[Record]
    epoch: int
    checkpoint: CheckpointBatch
    late: list[tuple[Record, str, int]] = field(default_factory=list)
    """Late records with the step that refused them and its watermark (epoch ms)."""
    refused: tuple[DeadLettered, ...] = ()
    """Records a step refused without a dead letter."""
    published: bool = False
    """Dead letters and late records are on the broker already (an apply is retried)."""


class JobHandler:
    """Runs one job for one consumer group: the loop's BatchHandler and Diverter."""

    def __init__(
        self,
        *,
        job: Job,
        group_id: str,
        codecs: Mapping[str, Codec[Any]],
        store: CheckpointStore,
        log_: EventLog | None,
        clock: Clock,
        worker_id: str,
        retries: RetryRouter | None = None,
        partial_windows: set[int] | None = None,
        kafka_authority: bool = False,
    ) -> None:
        """`partial_windows`: partitions a replay reads from the middle of their log (see
        `Task`); `kafka_authority`: `store` commits each batch as a Kafka transaction (see
        the module doc)."""
        missing = sorted((set(job.sources) | set(job.tables)) - set(codecs))
        if missing:
            raise ValueError(f"job {job.name!r}: no codec for topics {missing}")
        self.job = job
        self.group_id = group_id
        self._codecs = codecs
        self._store = store
        self._log = log_
        self._publisher = DeadLetterPublisher(log_) if log_ is not None else None
        self._clock = clock
        self._worker_id = worker_id
        self._retries = retries
        self._kafka_authority = kafka_authority
        self.task = Task(job.plan(), partial=partial_windows or ())
        self._epoch = 0
        self._position: dict[TopicPartition, int] = {}
        """The next offset to read per partition, as this handler has prepared."""
        self._applying: PreparedBatch | None = None
        self._consumer: CaughtUp | None = None

    def track(self, consumer: object) -> None:
        """Ask `consumer` (the loop's, when it is `CaughtUp`) which partitions are read to
        their end: only those may idle (see `Task`). Untracked, every partition may."""
        self._consumer = consumer if isinstance(consumer, CaughtUp) else None

    def _caught_up(self) -> set[tuple[str, int]] | None:
        consumer = self._consumer
        if consumer is None:
            return None
        return {(tp.topic, tp.partition) for tp in consumer.caught_up()}

    # ------------------------------------------------------------------ assignment

    async def resolve(self, partitions: Sequence[TopicPartition]) -> Mapping[TopicPartition, int]:
        """The consumer's offset resolver: newly assigned partitions resume from the offsets
        stored with the group's last batch, with their state restored first."""
        stored = await self._store.stored_offsets(self.group_id, partitions)
        await self._restore({tp.partition for tp in partitions})
        for tp in partitions:
            if tp in stored:
                self._position[tp] = stored[tp]
        log.info(
            "partitions assigned",
            group=self.group_id,
            partitions=sorted(f"{tp.topic}[{tp.partition}]" for tp in partitions),
        )
        return stored

    async def resync(self, partitions: Collection[TopicPartition]) -> dict[TopicPartition, int]:
        """After a batch the checkpoint refused (`Fenced`): restore the state of the
        `partitions` still assigned; the offsets to read them again from, those the
        checkpoint holds (0, the beginning, where it holds none, as on assignment)."""
        stored = await self._store.stored_offsets(self.group_id, list(partitions))
        await self._restore({tp.partition for tp in partitions})
        offsets = {tp: stored.get(tp, 0) for tp in partitions}
        self._position.update(offsets)
        self._applying = None
        return offsets

    async def _restore(self, parts: set[int]) -> None:
        if not parts:
            return
        state = await self._store.load_state(self.group_id, sorted(parts))
        now = to_millis(self._clock.now())
        for part in sorted(parts):
            self.task.release(part)
            self.task.assign(part, state.get(part, {}), now)
        self._epoch += 1
        log.debug("state restored", group=self.group_id, partitions=sorted(parts))

    def _check_assigned(self, records: Sequence[Record]) -> None:
        held = self.task.partitions
        for part in {record.partition for record in records}:
            if part not in held:
                raise RuntimeError(f"partition {part} was not assigned through resolve()")

    # ------------------------------------------------------------------ prepare

    async def prepare(self, records: Sequence[Record]) -> PreparedBatch:
        """Decode the batch, run it through the job, serialize the state it changed."""
        epoch = self._epoch
        self._check_assigned(records)
        now = self._clock.now()
        decoded = await self._decode(records)
        letters: list[DeadLetter] = []
        inputs: list[tuple[str, int, Any, object]] = []
        start: dict[TopicPartition, int] = {}
        after: dict[TopicPartition, int] = {}
        # Records come in runs of one partition (in offset order): its bookkeeping is done
        # once per run, not once per record.
        last: Record | None = None
        for record, value in zip(records, decoded, strict=True):
            if last is None or record.partition != last.partition or record.topic != last.topic:
                if last is not None:
                    after[last.topic_partition] = last.offset + 1
                start.setdefault(record.topic_partition, record.offset)
            last = record
            if isinstance(value, DecodeError):
                letters.append(self._dead_letter(record, value, now))
                continue
            inputs.append((record.topic, record.partition, value, record))
        if last is not None:
            after[last.topic_partition] = last.offset + 1
        out = self.task.process(inputs, to_millis(now), caught_up=self._caught_up())
        self._position.update(after)
        return self._prepared(records, epoch, out, start, after, letters, now)

    async def idle(self, *, flush: bool = False) -> PreparedBatch | None:
        """Let the wall clock move the job on (windows of quiet partitions close); with
        `flush` (stopping), what the job holds back comes out too."""
        if not self.task.partitions:
            return None
        now = self._clock.now()
        out = self.task.advance(to_millis(now), caught_up=self._caught_up(), flush=flush)
        prepared = self._prepared([], self._epoch, out, {}, {}, [], now)
        batch = prepared.checkpoint
        if not (batch.writes or batch.state or batch.dead_letters or prepared.late):
            return None
        # Fenced like any batch: at the positions this handler has reached, so a member
        # that lost its partitions cannot overwrite what their new owner wrote.
        parts = {c.part for c in batch.state} | {p for w in batch.writes for p in w.parts}
        at = {tp: o for tp, o in self._position.items() if tp.partition in parts}
        prepared.checkpoint = CheckpointBatch(
            group_id=batch.group_id,
            start_offsets=at,
            next_offsets=at,
            writes=batch.writes,
            state=batch.state,
        )
        return prepared

    async def _decode(self, records: Sequence[Record]) -> list[Any]:
        decoded = await self._decode_values(records)
        tables = self.job.tables
        if tables:
            # A null value on a table topic is a tombstone: it deletes its key.
            for i, record in enumerate(records):
                spec = tables.get(record.topic)
                if spec is not None and record.value is None:
                    try:
                        decoded[i] = Tombstone(spec.record_key(record.key or b""))
                    except Exception as error:  # noqa: BLE001 - a record's fault
                        decoded[i] = MissingValue(f"tombstone with an unreadable key: {error}")
        return decoded

    async def _decode_values(self, records: Sequence[Record]) -> list[Any]:
        codecs = self._codecs
        topics = {r.topic for r in records}
        if len(topics) <= 1:
            if not records:
                return []
            codec = codecs[records[0].topic]
            return await codec.decode_many([r.value for r in records])
        decoded: list[Any] = [None] * len(records)
        for topic in topics:
            indexes = [i for i, r in enumerate(records) if r.topic == topic]
            values = await codecs[topic].decode_many([records[i].value for i in indexes])
            for i, value in zip(indexes, values, strict=True):
                decoded[i] = value
        return decoded

    def _prepared(  # noqa: PLR0917 - private, called twice with everything in hand
        self,
        records: Sequence[Record],
        epoch: int,
        out: Output,
        start: dict[TopicPartition, int],
        after: dict[TopicPartition, int],
        letters: list[DeadLetter],
        now: Any,
    ) -> PreparedBatch:
        writes = [
            SinkRows(
                sink=sink,
                rows=[i.value for i in items],
                parts=[i.part for i in items],
                origins=[i.origin if isinstance(i.origin, Record) else None for i in items],
            )
            for sink, items in out.sinks.items()
            if items
        ]
        refused: list[DeadLettered] = []
        for rejection in out.rejected:
            origin = rejection.origin
            if not isinstance(origin, Record):
                continue
            if rejection.dead_letter:
                letters.append(self._dead_letter(origin, rejection.error, now))
            else:
                original = as_originally_read(origin)
                refused.append(
                    DeadLettered(
                        topic=original.topic,
                        partition=origin.partition,
                        offset=origin.offset,
                        error_class=error_class_of(rejection.error),
                        reason=str(rejection.error),
                    )
                )
        late = [
            (item.origin, item.step, item.item.wm)
            for item in out.late
            if isinstance(item.origin, Record)
        ]
        checkpoint = CheckpointBatch(
            group_id=self.group_id,
            start_offsets=start,
            next_offsets=after,
            writes=writes,
            state=self.task.changes(),
            dead_letters=letters,
        )
        return PreparedBatch(
            records=records,
            epoch=epoch,
            checkpoint=checkpoint,
            late=late,
            refused=tuple(refused),
        )

    def _dead_letter(self, record: Record, error: BaseException, now: Any) -> DeadLetter:
        # A record that came back from a retry topic is named by where it was first read:
        # its dead letter goes to that topic's DLQ, where `pipeline dlq` finds it.
        return dead_letter_of(
            as_originally_read(record),
            error,
            at=now,
            worker_id=self._worker_id,
            group_id=self.group_id,
        )

    # ------------------------------------------------------------------ apply

    async def apply(self, prepared: PreparedBatch) -> BatchReport:
        """Publish the batch's dead letters and late records (acknowledged), then commit
        rows, state, dead letters and offsets in one transaction; a row the store refuses
        for good is found by bisection and its record dead-lettered."""
        if prepared.epoch != self._epoch:
            # State was restored since: run the records again on what is durable now.
            prepared = await self.prepare(prepared.records)
        self._applying = prepared
        await self._publish(prepared)
        batch = prepared.checkpoint
        written: dict[str, int] = {}
        events: list[object] = []
        started = time.perf_counter()
        try:
            committed = await self._store.commit(batch)
        except NOT_THE_RECORDS_FAULT:
            raise
        except Exception as error:  # anything a row triggers is isolated
            if self._kafka_authority:
                raise  # a topic sink is not idempotent: halves would be written twice
            batch, isolation = await isolate_poison(self._store, batch, error)
            refused = [
                self._dead_letter(p.origin, p.error, self._clock.now())
                for p in isolation.poison
                if p.origin is not None
            ]
            if refused and self._publisher is not None:
                await self._publisher.publish(refused)
            batch = CheckpointBatch(
                group_id=batch.group_id,
                start_offsets=batch.start_offsets,
                next_offsets=batch.next_offsets,
                writes=batch.writes,
                state=batch.state,
                dead_letters=[*batch.dead_letters, *refused],
            )
            prepared.checkpoint = batch
            started = time.perf_counter()
            committed = await self._store.commit(batch)
            written.update(isolation.written)
            events.extend(isolation.events)
        commit_seconds = time.perf_counter() - started
        self._applying = None
        for sink, count in committed.written.items():
            written[sink] = written.get(sink, 0) + count
        events.extend(committed.events)
        skipped = 0
        if committed.fenced:
            skipped = self._fenced(prepared, committed.fenced)
        return BatchReport(
            records=len(prepared.records),
            written=written,
            skipped=skipped,
            dead_lettered=tuple(_summary(letter) for letter in batch.dead_letters),
            refused=prepared.refused,
            late=len(prepared.late),
            events=tuple(events),
            next_offsets=batch.next_offsets,
            commit_seconds=commit_seconds,
            fenced=committed.fenced,
        )

    async def _publish(self, prepared: PreparedBatch) -> None:
        if prepared.published or self._log is None:
            return
        letters = prepared.checkpoint.dead_letters
        if letters and self._publisher is not None and not self._kafka_authority:
            await self._publisher.publish(letters)
        for record, step, watermark in prepared.late:
            original = as_originally_read(record)
            await self._log.publish(
                late_topic(original.topic),
                record.key,
                record.value,
                [
                    *original.headers,
                    (H_LATE_STEP, step.encode()),
                    (H_LATE_WATERMARK, str(watermark).encode()),
                ],
                timestamp_ms=record.timestamp_ms,
            )
        if prepared.late:
            await self._log.flush()
        prepared.published = True

    def _fenced(self, prepared: PreparedBatch, fenced: Mapping[TopicPartition, int]) -> int:
        """Partitions someone else had handled further: nothing of them was written. The
        batch's report names them (`BatchReport.fenced`), and the consumer loop `resync`s:
        their state is restored and they are read again from the offsets stored — the
        records past those, which nobody stored, included."""
        log.warning(
            "batch fenced: partitions handled further by another member",
            group=self.group_id,
            partitions={f"{tp.topic}[{tp.partition}]": offset for tp, offset in fenced.items()},
        )
        parts = {tp.partition for tp in fenced}
        return sum(1 for r in prepared.records if r.partition in parts)

    # ------------------------------------------------------------------ diverting

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
        past the last level), acknowledged by the broker, then store its offsets (and its
        own dead letters) with no rows and no state, and restore the state of its
        partitions: the records are counted when they come back, not now."""
        if self._retries is None:
            raise failure.error
        current = self._applying
        own: list[DeadLetter] = []
        to_route = list(records)
        if current is not None and current.records is records:
            await self._publish(current)
            own = list(current.checkpoint.dead_letters)
            lettered = {(d.topic, d.partition, d.offset) for d in own}
            to_route = [
                r
                for r in records
                if (as_originally_read(r).topic, r.partition, r.offset) not in lettered
            ]
        letters, sent = await self._retries.route(
            to_route,
            failure.error,
            attempts=failure.attempts,
            first_failed_at=failure.first_failed_at,
            at=failure.last_failed_at,
        )
        start: dict[TopicPartition, int] = {}
        after: dict[TopicPartition, int] = {}
        for record in records:
            start.setdefault(record.topic_partition, record.offset)
            after[record.topic_partition] = record.offset + 1
        batch = CheckpointBatch(
            group_id=self.group_id,
            start_offsets=start,
            next_offsets=after,
            dead_letters=[*own, *letters],
        )
        started = time.perf_counter()
        await self._store.commit(batch)
        commit_seconds = time.perf_counter() - started
        self._applying = None
        await self._restore({r.partition for r in records})
        return BatchReport(
            records=len(records),
            dead_lettered=tuple(_summary(letter) for letter in batch.dead_letters),
            next_offsets=after,
            diverted=dict(sent),
            diverted_because=type(failure.error).__name__,
            commit_seconds=commit_seconds,
        )


def _summary(letter: DeadLetter) -> DeadLettered:
    return DeadLettered(
        topic=letter.topic,
        partition=letter.partition,
        offset=letter.offset,
        error_class=letter.error_class,
        reason=letter.message,
    )
