"""Telemetry: what the runtime, the alert outbox and the API report about their work.

Reports come once per batch, per sample or per scrape — never once per record — so that a
worker with telemetry on keeps its throughput. `Telemetry` is the process's root: the
runtime asks it for one `WorkerTelemetry` per consumer group it runs. A metrics adapter
(Prometheus) implements both. Traces have a port of their own
(`pipeline.application.ports.tracing`): a span must be current while a batch is handled, which
reports after the fact cannot give. The null objects in `pipeline.application.telemetry` are
the default: telemetry off costs a method call per batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from pipeline.application.ports.records import Record, TopicPartition

if TYPE_CHECKING:
    from pipeline.application.runtime.report import BatchReport


class WorkerTelemetry(Protocol):
    """What one consumer group of a running job reports: the job's own group, or a retry
    level's group that forwards records back (`Telemetry.worker(forwarder=True)`)."""

    def batch_prepared(self, seconds: float) -> None:
        """A batch was decoded and run through the job in `seconds` (nothing durable yet)."""
        ...

    def batch_applied(self, seconds: float) -> None:
        """A batch's effects were made durable in `seconds` (side outputs, transaction)."""
        ...

    def batch_committed(self, report: BatchReport, records: Sequence[Record]) -> None:
        """A batch is durable with its offsets: what it did, and the records it was read as."""
        ...

    def retried(self, error_class: str) -> None:
        """A step failed transiently with `error_class` and is tried again in place."""
        ...

    def lag(self, lags: Mapping[TopicPartition, int]) -> None:
        """Records of each partition this member holds that the group has not made durable;
        partitions absent from `lags` are no longer held."""
        ...

    def state(self, entries: Mapping[str, int]) -> None:
        """Entries each stateful step (by step id) holds now, over the partitions held."""
        ...

    def windows_closed(self, totals: Mapping[str, int]) -> None:
        """Windows each window step (by step id) has closed since its task began."""
        ...

    def restored(self, seconds: float) -> None:
        """The state of newly assigned partitions was restored in `seconds`."""
        ...


class Telemetry(Protocol):
    """The process's telemetry: per consumer group, the alert outbox, the live view."""

    @property
    def enabled(self) -> bool:
        """Whether reports are recorded: lag and state are sampled only when they are."""
        ...

    def worker(self, *, job: str, forwarder: bool) -> WorkerTelemetry:
        """Where a consumer group of `job` reports (`forwarder`: a retry level's group)."""
        ...

    def alerts_raised(
        self, *, job: str, domain: str, detector: str, kind: str, severity: str, count: int
    ) -> None:
        """`count` alerts about `domain`, raised by a `detector` check, of `kind` and
        `severity`, were stored for the first time."""
        ...

    def outbox_backlog(self, alerts: int) -> None:
        """Alerts stored but not yet published to the alerts topic."""
        ...

    def live_view(self, *, clients: int, dropped_total: int) -> None:
        """The live view's connected clients, and the frames dropped for slow ones since
        its hub started."""
        ...

    def model_scored(self, seconds: float, rows: int, version: str) -> None:
        """An anomaly model scored a batch of `rows` in `seconds`; `version` is the model."""
        ...
