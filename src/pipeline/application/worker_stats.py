"""Running totals of a consumer worker."""

from __future__ import annotations

import time
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from pipeline.application.ports import Record
from pipeline.application.sensors import BatchReport


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
