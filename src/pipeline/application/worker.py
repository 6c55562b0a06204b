"""The consumer loop every worker runs: poll a batch → handle it → commit → repeat."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from array import array
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import structlog

from pipeline.application.errors import TransientError
from pipeline.application.ports import EventConsumer, Record
from pipeline.application.sensors import BatchReport
from pipeline.domain import PipelineError

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


@dataclass(slots=True)
class WorkerStats:
    """Running totals of a worker, for status lines, summaries and benchmarks."""

    records: int = 0
    batches: int = 0
    readings_inserted: int = 0
    skipped: int = 0
    alerts: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    lag: int = 0
    started: float = field(default_factory=time.monotonic)
    latencies_ms: array[float] | None = None
    """Per record: wall-clock ms from the record's timestamp to its batch being durable."""

    def add(self, report: BatchReport, records: Sequence[Record]) -> None:
        """Fold one handled batch in."""
        self.records += report.records
        self.batches += 1
        self.readings_inserted += report.readings_inserted
        self.skipped += report.skipped
        self.alerts += len(report.new_alerts)
        self.rejected.update(r.error_class for r in report.rejections)
        if self.latencies_ms is not None:
            now_ms = time.time() * 1000.0
            self.latencies_ms.extend(now_ms - record.timestamp_ms for record in records)

    @property
    def rate(self) -> float:
        """Records per second since the worker started."""
        elapsed = time.monotonic() - self.started
        return self.records / elapsed if elapsed > 0 else 0.0


AfterBatch = Callable[[BatchReport], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff with full jitter for transient failures of a batch."""

    initial: float = 0.2
    maximum: float = 10.0
    attempts: int | None = None
    """Give up (re-raise) after this many attempts; None retries until stopped."""

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (1-based)."""
        ceiling = min(self.maximum, self.initial * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)


class ConsumerWorker(Generic[P]):
    """Runs a BatchHandler over an EventConsumer until stopped (or caught up).

    Batches are pipelined: while batch N is being made durable (its transaction is in the
    database), batch N+1 is polled and prepared on this process's CPU. Batches are still
    applied one at a time and in order, and a batch's offsets are committed only after it is
    durable. Should a rebalance move a partition while its batch is in flight, the new owner
    resumes from the offsets in the store, which skip whatever that batch already stored."""

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
        retry: RetryPolicy = RetryPolicy(),
        stats: WorkerStats | None = None,
    ) -> None:
        self._consumer = consumer
        self._handler = handler
        self._batch_size = batch_size
        self._batch_timeout = batch_timeout
        self.stop = stop or asyncio.Event()
        self._until_caught_up = until_caught_up
        self._after_batch = after_batch
        self._retry = retry
        self.stats = stats or WorkerStats()
        self._in_flight: tuple[asyncio.Task[BatchReport], list[Record]] | None = None

    async def run(self) -> WorkerStats:
        """Consume until `stop` is set (the batches in hand are finished and committed first)
        or, with `until_caught_up`, until the assigned partitions have no lag. Closes the
        consumer. A failure while the next batch is polled or prepared lets the batch in
        flight finish and commit before it propagates."""
        try:
            await self._loop()
            await self._finish_in_flight()
        except asyncio.CancelledError:
            self._abandon_in_flight()
            raise
        except BaseException:
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
            records = await self._retrying(self._poll, None)
            prepared = await self._retrying(self._handler.prepare, records) if records else None
            await self._finish_in_flight()
            if prepared is not None:
                task = asyncio.create_task(self._retrying(self._handler.apply, prepared))
                self._in_flight = (task, records)
                await asyncio.sleep(0)  # let the apply send its first statement
            if self._until_caught_up and len(records) < self._batch_size:
                await self._finish_in_flight()
                if await self._caught_up():
                    return

    async def _poll(self, _: None) -> list[Record]:
        # A transient failure here (the store answering the offsets of a new assignment, the
        # broker) is retried like a batch: the consumer resolves the assignment again.
        return await self._consumer.poll(self._batch_size, self._batch_timeout)

    def _abandon_in_flight(self) -> None:
        # Cancelling rolls the transaction back: the batch was not committed and is read
        # again by whoever owns its partitions next.
        if self._in_flight is not None:
            self._in_flight[0].cancel()
            self._in_flight = None

    async def _caught_up(self) -> bool:
        if not self._consumer.assignment():
            return False
        self.stats.lag = await self._consumer.lag()
        return self.stats.lag == 0

    async def _finish_in_flight(self) -> None:
        if self._in_flight is None:
            return
        task, records = self._in_flight
        report = await task
        self._in_flight = None
        self.stats.add(report, records)
        # The batch is durable with its offsets in the store, the source of truth on
        # assignment. The group commit only keeps Kafka's view of the lag true for tools,
        # and the alert relay retries on the next batch: neither failing may stop the worker.
        try:
            await self._consumer.commit(report.next_offsets)
        except PipelineError as error:
            log.warning("group offset commit failed", error=str(error))
        for rejection in report.rejections:
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
            except PipelineError as error:
                log.warning("after-batch step failed; it is retried", error=str(error))

    async def _retrying(self, step: Callable[[Any], Awaitable[R]], argument: Any) -> R:
        attempt = 0
        while True:
            try:
                return await step(argument)
            except TransientError as error:
                attempt += 1
                self.stats.retries += 1
                if self._retry.attempts is not None and attempt >= self._retry.attempts:
                    raise
                delay = self._retry.delay(attempt)
                log.warning(
                    "batch failed transiently; retrying",
                    error=str(error),
                    error_class=type(error).__name__,
                    attempt=attempt,
                    delay_s=round(delay, 2),
                )
                # A stop request ends the wait: the batch is not durable, so it is not
                # committed and is read again by whoever owns the partition next.
                try:
                    await asyncio.wait_for(self.stop.wait(), timeout=delay)
                except TimeoutError:
                    continue
                raise
