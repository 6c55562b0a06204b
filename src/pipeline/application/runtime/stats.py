"""Running totals of a consumer worker."""

from __future__ import annotations

import time
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from pipeline.application.ports.records import Record
from pipeline.application.runtime.report import BatchReport


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

    def add(self, report: BatchReport, records: Sequence[Record]) -> None:
        """Fold one handled batch in."""
        self.records += report.records
        self.batches += 1
        self.written.update(report.written)
        self.skipped += report.skipped
        self.events += len(report.events)
        self.late += report.late
        self.rejected.update(r.error_class for r in report.dead_lettered)
        self.rejected.update(r.error_class for r in report.refused)
        if self.latencies_ms is not None and records:
            now_ms = time.time() * 1000.0
            self.latencies_ms.extend(now_ms - record.timestamp_ms for record in records)

    @property
    def rate(self) -> float:
        """Records per second since the worker started."""
        elapsed = time.monotonic() - self.started
        return self.records / elapsed if elapsed > 0 else 0.0
