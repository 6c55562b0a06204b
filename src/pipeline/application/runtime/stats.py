"""Running totals of a consumer worker."""

from __future__ import annotations

import time
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from pipeline.application.ports.records import Record
from pipeline.application.runtime.report import BatchReport


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchTiming:
    """Where one batch's time went in the consumer loop (seconds)."""

    poll: float
    """Waiting for the batch's records (the poll, or the carry of a pause)."""
    prepare: float
    """Decoding and running the batch through the job."""
    prepare_cpu: float
    """Of `prepare`, the CPU time of the thread that prepared it (the rest: waiting for a
    core, on a loaded machine, or for the registry)."""
    queued: float
    """Prepared, waiting for the batch before it to be durable."""
    apply: float
    """Making it durable: side outputs and the store's transaction."""
    transaction: float
    """Of `apply`, the store's transaction alone."""


@dataclass(slots=True)
class BatchTimings:
    """Per batch, in order: its size and its `BatchTiming` (for benchmarks)."""

    sizes: array[float] = field(default_factory=lambda: array("d"))
    poll: array[float] = field(default_factory=lambda: array("d"))
    prepare: array[float] = field(default_factory=lambda: array("d"))
    prepare_cpu: array[float] = field(default_factory=lambda: array("d"))
    queued: array[float] = field(default_factory=lambda: array("d"))
    apply: array[float] = field(default_factory=lambda: array("d"))
    transaction: array[float] = field(default_factory=lambda: array("d"))

    def add(self, size: int, timing: BatchTiming) -> None:
        """Record one batch."""
        self.sizes.append(size)
        self.poll.append(timing.poll)
        self.prepare.append(timing.prepare)
        self.prepare_cpu.append(timing.prepare_cpu)
        self.queued.append(timing.queued)
        self.apply.append(timing.apply)
        self.transaction.append(timing.transaction)


@dataclass(slots=True)
class WorkerStats:
    """Running totals of a worker, for status lines, summaries and benchmarks."""

    records: int = 0
    batches: int = 0
    written: Counter[str] = field(default_factory=Counter)
    """Rows really written, by sink."""
    skipped: int = 0
    events: int = 0
    """Events the sinks stored for the first time (e.g. alerts)."""
    rejected: Counter[str] = field(default_factory=Counter)
    late: int = 0
    retries: int = 0
    retried_in_place: int = 0
    """Batches made durable by retrying in place after a transient failure."""
    sent_to_retry: Counter[str] = field(default_factory=Counter)
    """Records moved aside after the in-place budget, by target topic (retry or DLQ)."""
    pauses: int = 0
    paused_seconds: float = 0.0
    """Time the partitions spent paused: waiting for a dependency or a retry delay."""
    lag: int = 0
    started: float = field(default_factory=time.monotonic)
    latencies_ms: array[float] | None = None
    """Per record: wall-clock ms from the record's timestamp to its batch being durable."""
    polled_ms: array[float] | None = None
    """Per record, in the order of `latencies_ms`: wall-clock ms from the record's timestamp
    to the poll that returned it (the producer's linger, Kafka, and the wait for the loop's
    next poll); the rest of its latency was spent in the worker."""
    timings: BatchTimings | None = None
    """Per batch: its size and where its time went."""

    def add(
        self,
        report: BatchReport,
        records: Sequence[Record],
        *,
        durable_at: float | None = None,
        polled_at: float | None = None,
        timing: BatchTiming | None = None,
    ) -> None:
        """Fold one handled batch in: returned by a poll at wall-clock `polled_at`, made
        durable at wall-clock `durable_at` (default now), its time spent as `timing` says."""
        self.records += report.records
        self.batches += 1
        self.written.update(report.written)
        self.skipped += report.skipped
        self.events += len(report.events)
        self.late += report.late
        self.rejected.update(r.error_class for r in report.dead_lettered)
        self.rejected.update(r.error_class for r in report.refused)
        if self.latencies_ms is not None and records:
            now_ms = (time.time() if durable_at is None else durable_at) * 1000.0
            self.latencies_ms.extend(now_ms - record.timestamp_ms for record in records)
        if self.polled_ms is not None and polled_at is not None and records:
            polled_ms = polled_at * 1000.0
            self.polled_ms.extend(polled_ms - record.timestamp_ms for record in records)
        if self.timings is not None and timing is not None and records:
            self.timings.add(len(records), timing)

    @property
    def rate(self) -> float:
        """Records per second since the worker started."""
        elapsed = time.monotonic() - self.started
        return self.records / elapsed if elapsed > 0 else 0.0
