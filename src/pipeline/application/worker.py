"""The consumer loop every worker runs: poll a batch → handle it → commit → repeat."""

from __future__ import annotations

import asyncio
import random
import time
from array import array
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from pipeline.application.errors import TransientError
from pipeline.application.ports import EventConsumer, Record
from pipeline.application.sensors import BatchReport

log = structlog.get_logger(__name__)


class BatchHandler(Protocol):
    """Turns one batch of records into durable effects."""

    group_id: str

    async def handle(self, records: Sequence[Record]) -> BatchReport:
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


class ConsumerWorker:
    """Runs a BatchHandler over an EventConsumer until stopped (or caught up)."""

    def __init__(
        self,
        *,
        consumer: EventConsumer,
        handler: BatchHandler,
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

    async def run(self) -> WorkerStats:
        """Consume until `stop` is set (the batch in hand is finished and committed first) or,
        with `until_caught_up`, until the assigned partitions have no lag. Closes the consumer."""
        try:
            while not self.stop.is_set():
                records = await self._consumer.poll(self._batch_size, self._batch_timeout)
                if records:
                    await self._process(records)
                    if len(records) < self._batch_size and await self._caught_up():
                        break
                elif await self._caught_up():
                    break
        finally:
            await self._consumer.close()
        return self.stats

    async def _caught_up(self) -> bool:
        if not self._until_caught_up or not self._consumer.assignment():
            return False
        self.stats.lag = await self._consumer.lag()
        return self.stats.lag == 0

    async def _process(self, records: list[Record]) -> None:
        report = await self._handle_with_retry(records)
        # The store already holds these offsets (the source of truth on assignment); the
        # group commit keeps Kafka's view of the lag true for tools and monitoring.
        await self._consumer.commit(report.next_offsets)
        self.stats.add(report, records)
        for rejection in report.rejections:
            log.warning(
                "record rejected",
                topic=rejection.topic,
                partition=rejection.partition,
                offset=rejection.offset,
                error_class=rejection.error_class,
                reason=rejection.reason,
            )
        if self._after_batch is not None:
            await self._after_batch(report)

    async def _handle_with_retry(self, records: list[Record]) -> BatchReport:
        attempt = 0
        while True:
            try:
                return await self._handler.handle(records)
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
