"""Telemetry off: the null objects every component reports to unless the composition root
gives it a real `Telemetry` (see `pipeline.application.ports.telemetry`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pipeline.application.ports.records import Record, TopicPartition
from pipeline.application.ports.telemetry import WorkerTelemetry
from pipeline.application.runtime.report import BatchReport


class NullWorkerTelemetry:
    """A consumer group's telemetry that records nothing."""

    def batch_prepared(self, seconds: float) -> None:
        """Nothing recorded."""

    def batch_applied(self, seconds: float) -> None:
        """Nothing recorded."""

    def batch_committed(self, report: BatchReport, records: Sequence[Record]) -> None:
        """Nothing recorded."""

    def retried(self, error_class: str) -> None:
        """Nothing recorded."""

    def lag(self, lags: Mapping[TopicPartition, int]) -> None:
        """Nothing recorded."""

    def state(self, entries: Mapping[str, int]) -> None:
        """Nothing recorded."""

    def windows_closed(self, totals: Mapping[str, int]) -> None:
        """Nothing recorded."""

    def restored(self, seconds: float) -> None:
        """Nothing recorded."""


NULL_WORKER_TELEMETRY = NullWorkerTelemetry()


class NullTelemetry:
    """Telemetry off."""

    enabled = False
    """Whether anything is recorded: the runtime samples lag and state only when it is."""

    def worker(self, *, job: str, forwarder: bool) -> WorkerTelemetry:
        """The null worker telemetry."""
        return NULL_WORKER_TELEMETRY

    def alerts_raised(
        self, *, job: str, domain: str, detector: str, kind: str, severity: str, count: int
    ) -> None:
        """Nothing recorded."""

    def outbox_backlog(self, alerts: int) -> None:
        """Nothing recorded."""

    def live_view(self, *, clients: int, dropped_total: int) -> None:
        """Nothing recorded."""

    def model_scored(self, seconds: float, rows: int, version: str) -> None:
        """Nothing recorded."""
