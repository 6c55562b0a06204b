"""Retrying, in place, a batch whose apply failed transiently: the worker's consumer stays
paused (and in its group) meanwhile, and with a diverter the batch is diverted once its retry
budget is spent while its dependency answers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Generic, TypeVar

import structlog

from pipeline.application.errors import TransientError
from pipeline.application.ports.records import Record
from pipeline.application.ports.telemetry import WorkerTelemetry
from pipeline.application.runtime.pausing import PausedWait
from pipeline.application.runtime.report import BatchReport
from pipeline.application.runtime.retry_policy import Diverter, RetryPolicy, TransientFailure
from pipeline.application.runtime.stats import WorkerStats

if TYPE_CHECKING:
    from pipeline.application.runtime.consumer_loop import BatchHandler

log = structlog.get_logger(__name__)

P = TypeVar("P")


class InPlaceRetry(Generic[P]):
    """Re-applies one batch of a `ConsumerWorker` until it is durable or diverted; the
    worker runs it inside its paused wait."""

    def __init__(
        self,
        *,
        handler: BatchHandler[P],
        policy: RetryPolicy,
        diverter: Diverter | None,
        stats: WorkerStats,
        paused: PausedWait,
        stop: asyncio.Event,
        telemetry: WorkerTelemetry,
    ) -> None:
        self._handler = handler
        self._policy = policy
        self._diverter = diverter
        self._stats = stats
        self._paused = paused
        self._stop = stop
        self._telemetry = telemetry

    async def retry(self, records: list[Record], prepared: P, error: TransientError) -> BatchReport:
        """Apply the batch again (it failed with `error`) until it is durable or diverted;
        a stop request, or a spent budget without a diverter, re-raises the last error."""
        first_failed_at = datetime.now(UTC)
        attempt = 1
        # Only failures while the dependency answers count against the budget: those
        # are the batch's own (deadlock, timeout). An outage never sends a record to a
        # retry topic or the DLQ: the batch waits for it, with capped backoff.
        counted = int(await self.batch_specific())
        failure: TransientFailure | None = None
        while True:
            exhausted = self._policy.attempts is not None and counted >= self._policy.attempts
            diverter = self._diverter
            if exhausted and diverter is None:
                raise error
            self._stats.retries += 1
            self._telemetry.retried(type(error).__name__)
            delay = self._policy.delay(attempt)
            log.debug(
                "batch failed transiently; retrying in place",
                error=str(error),
                error_class=type(error).__name__,
                attempt=attempt,
                delay_s=round(delay, 2),
            )
            await self._paused.keep_alive(delay)
            if self._stop.is_set():
                raise error
            try:
                if diverter is None or not exhausted:
                    report = await self._handler.apply(prepared)
                    self._stats.retried_in_place += 1
                    return report
                failure = failure or TransientFailure(
                    error=error,
                    attempts=attempt,
                    first_failed_at=first_failed_at,
                    last_failed_at=datetime.now(UTC),
                )
                report = await diverter.divert(records, failure)
                self._stats.sent_to_retry.update(report.diverted)
                log.warning(
                    "batch kept failing while its database answers; diverted",
                    error_class=type(error).__name__,
                    attempts=attempt,
                    diverted=dict(report.diverted),
                )
                return report
            except TransientError as again:
                if failure is not None:
                    # Diverting failed (its offsets transaction): it is retried with
                    # the same failure; copies already on the retry topic are harmless.
                    log.warning("diverting the batch failed; retrying", error=str(again))
                    continue
                error = again
                attempt += 1
                counted += await self.batch_specific()

    async def batch_specific(self) -> bool:
        """Whether the last failure was the batch's own: its dependency answers."""
        return self._diverter is None or await self._diverter.healthy()
