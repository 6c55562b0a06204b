"""The consumer loop every job runs: poll a batch → handle it → commit → repeat."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import structlog

from pipeline.application.errors import ConfigurationError, Fenced, ProducerFenced, TransientError
from pipeline.application.ports.event_log import CaughtUp, EventConsumer
from pipeline.application.ports.records import Record, TopicPartition
from pipeline.application.ports.telemetry import WorkerTelemetry
from pipeline.application.ports.tracing import BatchTrace, WorkerTracing
from pipeline.application.runtime.in_place_retry import InPlaceRetry
from pipeline.application.runtime.pausing import PausedWait
from pipeline.application.runtime.report import BatchReport
from pipeline.application.runtime.retry_policy import (
    Diverter,
    NotBefore,
    RetryPolicy,
    TransientFailure,
)
from pipeline.application.runtime.stats import BatchTiming, WorkerStats
from pipeline.application.telemetry import NULL_WORKER_TELEMETRY
from pipeline.application.tracing import NULL_BATCH_TRACE, NULL_WORKER_TRACING
from pipeline.domain.errors import PipelineError

__all__ = [
    "BatchHandler",
    "ConsumerWorker",
    "Diverter",
    "RetryPolicy",
    "TransientFailure",
    "WorkerStats",
]

log = structlog.get_logger(__name__)

P = TypeVar("P")
R = TypeVar("R")


class BatchHandler(Protocol[P]):
    """Turns one batch of records into durable effects, in two steps so that the next batch
    can be prepared while the previous one is being made durable."""

    group_id: str

    async def prepare(self, records: Sequence[Record]) -> P:
        """Decode and validate; no side effects."""
        ...

    async def apply(self, prepared: P) -> BatchReport:
        """Make the batch's effects durable, together with its next offsets."""
        ...

    async def idle(self, *, flush: bool = False) -> P | None:
        """A poll found nothing: what the passing of wall-clock time alone produces (windows
        of quiet partitions closing), or None when there is nothing to make durable. With
        `flush` (the loop is stopping), also what the job holds back to emit later."""
        ...


class Resyncer(Protocol):
    """What a handler whose checkpoint can refuse a batch (`Fenced`) does next."""

    async def resync(self, partitions: Collection[TopicPartition]) -> dict[TopicPartition, int]:
        """Restore the state of `partitions` from the checkpoint; the offsets to read them
        again from (those the checkpoint last committed)."""
        ...


AfterBatch = Callable[[BatchReport], Awaitable[None]]


@dataclass(slots=True, eq=False)
class _InFlight(Generic[P]):
    """A batch being made durable, and where its time went (perf_counter seconds)."""

    records: list[Record]
    prepared: P
    trace: BatchTrace
    polled_at: float
    """Wall-clock time the poll returned its records."""
    poll: float
    prepare: float
    prepare_cpu: float
    queued: float
    task: asyncio.Task[BatchReport] | None = None
    apply: float = 0.0
    durable_at: float | None = None
    """Wall-clock time its apply returned (None: made durable by a retry, later)."""

    def timing(self, report: BatchReport) -> BatchTiming:
        return BatchTiming(
            poll=self.poll,
            prepare=self.prepare,
            prepare_cpu=self.prepare_cpu,
            queued=self.queued,
            apply=self.apply,
            transaction=report.commit_seconds,
        )


class ConsumerWorker(Generic[P]):
    """Runs a BatchHandler over an EventConsumer until stopped (or caught up).

    Batches are pipelined: while batch N is being made durable (its transaction is in the
    database), batch N+1 is polled and prepared on this process's CPU, and its transaction
    starts as soon as batch N is durable; batch N's follow-up (statistics, group commit,
    after-batch step) runs during it. Batches are still applied one at a time and in order,
    and a batch's offsets are committed only after it is durable. Should a rebalance move a
    partition while its batch is in flight, the new owner resumes from the offsets in the
    store, which skip whatever that batch already stored.

    A batch whose apply fails transiently is retried in place with the consumer paused, so
    the member keeps polling (and its partitions) however long the dependency is away. With
    a `diverter`, once the `retry.attempts` budget is spent while the dependency is healthy
    (the failure is the batch's own: deadlock, timeout), the batch is diverted instead.
    With `not_before`, a batch waits (paused) until the time it names.

    With a `resyncer`, a batch the checkpoint refuses because the group moved on (`Fenced`),
    or one it fenced in part because another member had stored partitions further
    (`BatchReport.fenced`), is followed by a rewind: the batch prepared after it is dropped,
    the resyncer restores the state of the assigned partitions, the consumer seeks back to
    the offsets it names, and the loop reads on from there. `ProducerFenced` (another live
    instance took over) always propagates. Without `commit_to_group`, offsets are not
    committed to the group after a batch (the checkpoint commits them itself).

    Each batch read has a span (`tracing`), current while the batch is prepared, applied
    (the apply task inherits it) and followed up, and ended once it is over."""

    def __init__(
        self,
        *,
        consumer: EventConsumer,
        handler: BatchHandler[P],
        batch_size: int,
        batch_timeout: float,
        stop: asyncio.Event | None = None,
        until_caught_up: bool = False,
        after_batch: AfterBatch | None = None,
        retry: RetryPolicy | None = None,
        stats: WorkerStats | None = None,
        diverter: Diverter | None = None,
        not_before: NotBefore | None = None,
        telemetry: WorkerTelemetry = NULL_WORKER_TELEMETRY,
        tracing: WorkerTracing = NULL_WORKER_TRACING,
        resyncer: Resyncer | None = None,
        commit_to_group: bool = True,
    ) -> None:
        self._consumer = consumer
        self._handler = handler
        self._batch_size = batch_size
        self._batch_timeout = batch_timeout
        self.stop = stop or asyncio.Event()
        self._until_caught_up = until_caught_up
        self._after_batch = after_batch
        self._retry = retry or RetryPolicy()
        self.stats = stats or WorkerStats()
        self._diverter = diverter
        self._not_before = not_before
        self.telemetry = telemetry
        self._tracing = tracing
        self._resyncer = resyncer
        self._commit_to_group = commit_to_group
        self._rewinds = 0
        """Times the consumer was sought back after a fenced batch."""
        self._in_flight: _InFlight[P] | None = None
        self._paused = PausedWait(
            consumer, stats=self.stats, stopped=self.stop.is_set, max_records=batch_size
        )
        self._in_place = InPlaceRetry(
            handler=handler,
            policy=self._retry,
            diverter=diverter,
            stats=self.stats,
            paused=self._paused,
            stop=self.stop,
            telemetry=telemetry,
        )

    async def run(self) -> WorkerStats:
        """Consume until `stop` is set (the batches in hand are finished and committed first)
        or, with `until_caught_up`, until the assigned partitions have no lag. Closes the
        consumer. A failure while the next batch is polled or prepared lets the batch in
        flight finish and commit before it propagates."""
        try:
            await self._loop()
            await self._flush()
        except asyncio.CancelledError:
            self._abandon_in_flight()
            raise
        except BaseException as error:
            if isinstance(error, TransientError) and self.stop.is_set():
                # Stopped while waiting out an outage: that is a stop, not a failure. A batch
                # in flight is still finished; the one that could not be made durable is not
                # committed and is read again by whoever owns its partitions next.
                if self._in_flight is not None:
                    with contextlib.suppress(Exception):
                        await self._finish_in_flight()
                self._abandon_in_flight()
                log.info("stopped while waiting for a dependency", error=str(error))
                return self.stats
            if self._in_flight is not None:
                with contextlib.suppress(Exception):
                    await self._finish_in_flight()
            self._abandon_in_flight()
            raise
        finally:
            await self._consumer.close()
        return self.stats

    async def _loop(self) -> None:
        while not self.stop.is_set():
            poll_started = time.perf_counter()
            records = await self._retrying(self._poll, None)
            polled = time.perf_counter() - poll_started
            polled_at = time.time()
            if records and self._not_before is not None:
                until = self._not_before(records)
                if until is not None and until > time.time():
                    await self._finish_in_flight()
                    await self._paused.around(
                        functools.partial(self._paused.keep_alive, until - time.time())
                    )
                    if self.stop.is_set():
                        return  # not handled, not committed: read again next time
            prepared: P | None
            rewinds = self._rewinds
            trace: BatchTrace = NULL_BATCH_TRACE
            started, started_cpu = time.perf_counter(), time.thread_time()
            if records:
                trace = self._tracing.batch(records)
                with trace.current():
                    prepared = await self._retrying(self._handler.prepare, records)
                self.telemetry.batch_prepared(time.perf_counter() - started)
            else:
                prepared = await self._retrying(self._idle, None)
            ready = time.perf_counter()
            flight = None
            if prepared is not None:
                flight = _InFlight(
                    records,
                    prepared,
                    trace,
                    polled_at=polled_at,
                    poll=polled,
                    prepare=ready - started,
                    prepare_cpu=time.thread_time() - started_cpu,
                    queued=0.0,
                )
            if not await self._hand_over(flight, ready, rewinds):
                trace.end(None)
                continue  # prepared past a fenced batch: its records are read again
            await asyncio.sleep(0)  # let the apply send its first statement
            if records and len(records) < self._batch_size:
                # Live traffic, not a backlog: the next poll waits for this batch to be
                # durable, so that it takes what arrived meanwhile straight into the next
                # transaction rather than preparing it to queue behind this one.
                await self._finish_in_flight()
            # A full batch may have been the last: known without a poll that would wait
            # `batch_timeout` for records that are not there.
            if (
                self._until_caught_up
                and (len(records) < self._batch_size or self._read_to_end())
                and await self._caught_up()
            ):
                return

    async def _hand_over(self, flight: _InFlight[P] | None, ready: float, rewinds: int) -> bool:
        """Once the batch in flight is durable, start `flight`'s transaction, then follow the
        batch before up (group commit, events) while it runs. False: a rewind since
        `rewinds` dropped `flight` (prepared past a fenced batch)."""
        previous = self._in_flight
        durable = await self._durable_in_flight()
        started = False
        if flight is not None and self._rewinds == rewinds and not (durable and durable.fenced):
            self._start(flight, ready)
            started = True
        if previous is not None and durable is not None:
            with previous.trace.current():
                await self._follow_up(previous, durable)
        if self._rewinds != rewinds:
            return False
        if flight is not None and not started:
            self._start(flight, ready)
        return True

    def _start(self, flight: _InFlight[P], ready: float) -> None:
        """Start making `flight` durable (nothing else is in flight)."""
        flight.queued = time.perf_counter() - ready
        with flight.trace.current():
            flight.task = asyncio.create_task(self._applied(flight))
        self._in_flight = flight

    async def _applied(self, flight: _InFlight[P]) -> BatchReport:
        started = time.perf_counter()
        report = await self._handler.apply(flight.prepared)
        flight.durable_at = time.time()
        flight.apply = time.perf_counter() - started
        self.telemetry.batch_applied(flight.apply)
        return report

    async def _poll(self, _: None) -> list[Record]:
        # A transient failure here (the store answering the offsets of a new assignment, the
        # broker) is retried like a batch: the consumer resolves the assignment again.
        carry = self._paused.carry
        if carry:
            carried, carry[:] = carry[: self._batch_size], carry[self._batch_size :]
            return carried
        return await self._consumer.poll(self._batch_size, self._batch_timeout)

    async def _idle(self, _: None) -> P | None:
        return await self._handler.idle()

    async def _held_back(self, _: None) -> P | None:
        return await self._handler.idle(flush=True)

    async def _flush(self) -> None:
        """Stopping: make what the job holds back durable (window updates emitted `every`)
        after the batch in flight, as a batch of no records."""
        await self._finish_in_flight()
        rewinds = self._rewinds
        prepared = await self._retrying(self._held_back, None)
        if prepared is None:
            return
        flight = _InFlight(
            [],
            prepared,
            NULL_BATCH_TRACE,
            polled_at=time.time(),
            poll=0.0,
            prepare=0.0,
            prepare_cpu=0.0,
            queued=0.0,
        )
        if await self._hand_over(flight, time.perf_counter(), rewinds):
            await self._finish_in_flight()

    def _abandon_in_flight(self) -> None:
        # Cancelling rolls the transaction back: the batch was not committed and is read
        # again by whoever owns its partitions next.
        if self._in_flight is not None:
            if self._in_flight.task is not None:
                self._in_flight.task.cancel()
            self._in_flight = None

    def _read_to_end(self) -> bool:
        """Every assigned partition read to the end its last fetch response reported: known
        without a broker request (asking for each partition's end takes a round trip each,
        seconds for a topic of many partitions)."""
        consumer = self._consumer
        assigned = consumer.assignment()
        return (
            bool(assigned)
            and not self._paused.carry
            and isinstance(consumer, CaughtUp)
            and consumer.caught_up() == assigned
        )

    async def _caught_up(self) -> bool:
        """Whether every assigned partition is read to its end and made durable (the batch
        in flight is finished first, unless the consumer knows a partition is not read to
        its end yet: a busy pipeline is not drained to ask)."""
        consumer = self._consumer
        assigned = consumer.assignment()
        if not assigned or self._paused.carry:
            return False
        reading = isinstance(consumer, CaughtUp) and consumer.caught_up() != assigned
        if reading and self._in_flight is not None:
            return False
        await self._finish_in_flight()
        if not consumer.assignment() or self._paused.carry:
            return False
        if self._read_to_end():
            self.stats.lag = 0
            return True
        self.stats.lag = await self._consumer.lag()
        return self.stats.lag == 0

    async def _finish_in_flight(self) -> None:
        flight = self._in_flight
        if flight is None:
            return
        with flight.trace.current():
            report = await self._durable(flight)
            if report is not None:
                await self._follow_up(flight, report)

    async def _durable_in_flight(self) -> BatchReport | None:
        """Wait for the batch in flight (if any) to be durable; its report, not followed up
        yet (None: nothing was in flight, or the batch was fenced whole)."""
        flight = self._in_flight
        if flight is None:
            return None
        with flight.trace.current():
            return await self._durable(flight)

    async def _durable(self, flight: _InFlight[P]) -> BatchReport | None:
        """Wait for `flight` to be durable, retrying it paused after a transient failure;
        None if the checkpoint refused it whole (the consumer is rewound)."""
        task, records, prepared, trace = flight.task, flight.records, flight.prepared, flight.trace
        assert task is not None
        try:
            try:
                report = await task
            except TransientError as error:
                # Retried here in the main loop, not in the task, so nothing else polls while
                # this does; should it give up, the batch is not committed.
                self._in_flight = None
                report = await self._retry_paused(records, prepared, error)
        except Fenced as error:
            self._in_flight = None
            if self._resyncer is None or isinstance(error, ProducerFenced):
                raise
            self.stats.skipped += len(records)
            await self._rewind(str(error))
            trace.end(None)
            return None
        self._in_flight = None
        return report

    async def _follow_up(self, flight: _InFlight[P], report: BatchReport) -> None:
        """What follows a durable batch: statistics, the group commit, the after-batch step,
        a rewind if the checkpoint fenced some of its partitions."""
        records, trace = flight.records, flight.trace
        self.stats.add(
            report,
            records,
            durable_at=flight.durable_at,
            polled_at=flight.polled_at,
            timing=flight.timing(report),
        )
        self.telemetry.batch_committed(report, records)
        # The batch is durable with its offsets in the store, the source of truth on
        # assignment. The group commit only keeps Kafka's view of the lag true for tools,
        # and the alert relay retries on the next batch: neither failing may stop the worker.
        if self._commit_to_group:
            try:
                await self._consumer.commit(
                    {tp: o for tp, o in report.next_offsets.items() if tp not in report.fenced}
                )
            except PipelineError as error:
                log.warning("group offset commit failed", error=str(error))
        for rejection in report.dead_lettered:
            log.warning(
                "record dead-lettered",
                topic=rejection.topic,
                partition=rejection.partition,
                offset=rejection.offset,
                error_class=rejection.error_class,
                reason=rejection.reason,
            )
        if self._after_batch is not None:
            try:
                await self._after_batch(report)
            except ConfigurationError:
                raise  # e.g. an ACL refusing the alerts topic: no retry can fix it
            except PipelineError as error:
                log.warning("after-batch step failed; it is retried", error=str(error))
        if report.fenced and self._resyncer is not None:
            # Another member stored these partitions further: read them again from there
            # (the records past its offsets, which nobody stored, included).
            await self._rewind("partitions handled further by another member")
        trace.end(report)

    async def _rewind(self, reason: str) -> None:
        """The checkpoint refused a batch: restore the state, read again from what it holds."""
        offsets = await self._retrying(self._seek_back, None)
        self._paused.carry.clear()
        self._rewinds += 1
        log.warning(
            "batch fenced: state restored, reading again from the committed offsets",
            reason=reason,
            partitions={f"{tp.topic}[{tp.partition}]": o for tp, o in sorted(offsets.items())},
        )

    async def _seek_back(self, _: None) -> dict[TopicPartition, int]:
        assert self._resyncer is not None
        offsets = await self._resyncer.resync(self._consumer.assignment())
        await self._consumer.seek(offsets)
        return offsets

    async def _retry_paused(
        self, records: list[Record], prepared: P, error: TransientError
    ) -> BatchReport:
        """Retry the batch in flight with the partitions paused, until it is durable or
        diverted; a stop request re-raises the last error (the batch stays uncommitted)."""
        log.warning(
            "batch commit failing transiently; partitions paused",
            error=str(error),
            error_class=type(error).__name__,
        )
        retry = functools.partial(self._in_place.retry, records, prepared, error)
        return await self._paused.around(retry)

    async def _retrying(self, step: Callable[[Any], Awaitable[R]], argument: Any) -> R:
        attempt = 0
        while True:
            try:
                return await step(argument)
            except TransientError as error:
                attempt += 1
                self.stats.retries += 1
                self.telemetry.retried(type(error).__name__)
                # With a diverter the budget is the apply's: a poll or prepare failing
                # transiently has nothing to divert and waits for its dependency instead.
                limited = self._retry.attempts is not None and self._diverter is None
                if limited and self._retry.attempts is not None and attempt >= self._retry.attempts:
                    raise
                delay = self._retry.delay(attempt)
                log.warning(
                    "step failed transiently; retrying",
                    error=str(error),
                    error_class=type(error).__name__,
                    attempt=attempt,
                    delay_s=round(delay, 2),
                )
                # Waited paused and polling, so a long registry or database outage does not
                # expel the member from its group. A stop request ends the wait: the batch
                # is not durable, so it is not committed and is read again by whoever owns
                # the partition next.
                await self._paused.around(functools.partial(self._paused.keep_alive, delay))
                if self.stop.is_set():
                    raise
