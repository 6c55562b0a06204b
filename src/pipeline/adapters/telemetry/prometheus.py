"""The Prometheus adapter of the telemetry port (prometheus-client).

Every metric is named `pipeline_…` in base units, counters end in `_total`, and labels are
bounded: the job, a topic, a partition, an error class, a step id, an alert's domain,
detector, kind and severity, never a sensor or a user. (The job's label is `pipeline_job`:
`job` is the label Prometheus gives each scrape target.) The README's "Operating" section
lists them all.

Each `PrometheusTelemetry` has its own registry, which also exposes the process-wide one
(process CPU and memory, garbage collection, and the API's request metrics that Litestar's
middleware keeps there), so one scrape of one endpoint gives everything a process has.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections import Counter as Tally
from collections.abc import Iterable, Mapping, Sequence
from operator import attrgetter
from typing import TYPE_CHECKING

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

from pipeline.application.ports.records import Record, TopicPartition
from pipeline.application.ports.telemetry import WorkerTelemetry
from pipeline.application.topic_names import retry_level

if TYPE_CHECKING:
    from prometheus_client import Metric

    from pipeline.application.runtime.report import BatchReport

BATCH_SIZE_BUCKETS = (1, 10, 100, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000)
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
"""End-to-end latency: a healthy worker stays under a second; a backlog takes minutes."""
RESTORE_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
_topic_of = attrgetter("topic")
_timestamp_of = attrgetter("timestamp_ms")


class _ProcessWide(Collector):
    """What prometheus-client's process-wide registry holds, exposed by another registry."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


class AgeHistogram(Collector):
    """A histogram of ages (now − timestamp), filled a whole batch at a time: one sort and one
    bisection per bucket instead of one observation per record."""

    def __init__(self, name: str, documentation: str, label: str, buckets: Sequence[float]) -> None:
        self._name = name
        self._documentation = documentation
        self._label = label
        self._bounds_ms = [b * 1000.0 for b in buckets]
        self._buckets = buckets
        self._lock = threading.Lock()
        self._series: dict[str, tuple[list[int], list[float]]] = {}

    def observe_ages(self, value: str, timestamps_ms: Iterable[int], now_ms: float) -> None:
        """Add the age at `now_ms` of every timestamp (epoch ms) to the series `value`."""
        stamps = sorted(timestamps_ms)
        if not stamps:
            return
        n = len(stamps)
        # An age ≤ bound ⇔ a timestamp ≥ now − bound: counted by bisection, cumulatively.
        counts = [n - bisect_left(stamps, now_ms - bound) for bound in self._bounds_ms]
        total_s = (now_ms * n - sum(stamps)) / 1000.0
        with self._lock:
            cumulative, totals = self._series.setdefault(value, ([0] * (len(counts) + 1), [0.0]))
            for i, count in enumerate(counts):
                cumulative[i] += count
            cumulative[-1] += n
            totals[0] += total_s

    def describe(self) -> Iterable[Metric]:
        return [HistogramMetricFamily(self._name, self._documentation, labels=[self._label])]

    def collect(self) -> Iterable[Metric]:
        family = HistogramMetricFamily(self._name, self._documentation, labels=[self._label])
        bounds = [*(str(float(b)) for b in self._buckets), "+Inf"]
        with self._lock:
            for value, (cumulative, totals) in self._series.items():
                family.add_metric(
                    [value], list(zip(bounds, map(float, cumulative), strict=True)), totals[0]
                )
        return [family]


class PrometheusTelemetry:
    """The process's metrics, in a registry of their own (`render` exposes it)."""

    enabled = True

    def __init__(self) -> None:
        # No `<name>_created` series beside every counter and histogram (prometheus-client's
        # default): they double the series and no dashboard or rule reads them.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        self.registry.register(_ProcessWide())
        r = self.registry
        job = "pipeline_job"
        self.consumed = Counter(
            "pipeline_records_consumed",
            "Records read from each topic, in batches handed to the job (or a retry level).",
            [job, "topic"],
            registry=r,
        )
        self.processed = Counter(
            "pipeline_records_processed",
            "Records whose effects the job made durable (neither dead-lettered, moved to a "
            "retry topic, nor skipped as handled already).",
            [job],
            registry=r,
        )
        self.dead_lettered = Counter(
            "pipeline_records_dead_lettered",
            "Records sent to their topic's dead-letter topic, by source topic and error class.",
            [job, "topic", "error_class"],
            registry=r,
        )
        self.refused = Counter(
            "pipeline_records_refused",
            "Records a validation refused without a dead letter (another job reading their "
            "topic dead-letters them), by source topic and error class.",
            [job, "topic", "error_class"],
            registry=r,
        )
        self.retried = Counter(
            "pipeline_records_retried",
            "Records moved to a retry topic after their batch kept failing transiently, by "
            "retry topic and error class.",
            [job, "topic", "error_class"],
            registry=r,
        )
        self.retry_attempts = Counter(
            "pipeline_retry_attempts",
            "In-place retries of a step that failed transiently, by error class.",
            [job, "error_class"],
            registry=r,
        )
        self.late = Counter(
            "pipeline_late_records",
            "Records that arrived after their window closed (sent to the late topic).",
            [job],
            registry=r,
        )
        self.batch_size = Histogram(
            "pipeline_batch_size_records",
            "Records per batch.",
            [job],
            buckets=BATCH_SIZE_BUCKETS,
            registry=r,
        )
        self.batch_duration = Histogram(
            "pipeline_batch_duration_seconds",
            "Time a batch spends in each stage: prepare (decode, run through the job) and "
            "apply (publish side outputs, the database transaction).",
            [job, "stage"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.transaction = Histogram(
            "pipeline_db_transaction_duration_seconds",
            "Time of the transaction that makes a batch durable with its offsets.",
            [job],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.latency = AgeHistogram(
            "pipeline_end_to_end_latency_seconds",
            "From a record's timestamp to its batch's effects being committed.",
            job,
            LATENCY_BUCKETS,
        )
        r.register(self.latency)
        self.lag = Gauge(
            "pipeline_consumer_lag_records",
            "Records of a partition not yet made durable by the job's group (sampled).",
            [job, "topic", "partition"],
            registry=r,
        )
        self.retry_depth = Gauge(
            "pipeline_retry_topic_depth_records",
            "Records waiting in a retry topic to be forwarded back (sampled).",
            [job, "topic"],
            registry=r,
        )
        self.state_entries = Gauge(
            "pipeline_state_entries",
            "Entries a stateful step holds in this process (sampled).",
            [job, "step"],
            registry=r,
        )
        self.windows = Counter(
            "pipeline_windows_closed",
            "Windows a window step closed (its result final, its state dropped) (sampled).",
            [job, "step"],
            registry=r,
        )
        self.restore = Histogram(
            "pipeline_state_restore_duration_seconds",
            "Time to restore the state (and read the offsets) of newly assigned partitions.",
            [job],
            buckets=RESTORE_BUCKETS,
            registry=r,
        )
        self.model_seconds = Counter(
            "pipeline_model_scoring_seconds",
            "Seconds the anomaly model spent scoring batches.",
            registry=r,
        )
        self.model_rows = Counter(
            "pipeline_model_scored_rows",
            "Readings the anomaly model scored.",
            registry=r,
        )
        self.model_version = Info("pipeline_model", "The anomaly model scoring now.", registry=r)
        self.alerts = Counter(
            "pipeline_alerts_raised",
            "Alerts stored for the first time, by domain, detector, kind and severity.",
            [job, "domain", "detector", "kind", "severity"],
            registry=r,
        )
        self.backlog = Gauge(
            "pipeline_outbox_backlog_alerts",
            "Alerts stored but not yet published to the alerts topic.",
            registry=r,
        )
        self.live_clients = Gauge(
            "pipeline_websocket_clients",
            "Live-view clients connected to /ws/sensors.",
            registry=r,
        )
        self.live_dropped = Counter(
            "pipeline_websocket_dropped_frames",
            "Live-view messages dropped for clients too slow to read them.",
            registry=r,
        )
        self._dropped_seen = 0
        self._model_version = ""

    def worker(self, *, job: str, forwarder: bool) -> WorkerTelemetry:
        """The metrics of one consumer group of `job`."""
        return PrometheusWorkerTelemetry(self, job=job, forwarder=forwarder)

    def alerts_raised(
        self, *, job: str, domain: str, detector: str, kind: str, severity: str, count: int
    ) -> None:
        """Count alerts stored for the first time."""
        self.alerts.labels(job, domain, detector, kind, severity).inc(count)

    def model_scored(self, seconds: float, rows: int, version: str) -> None:
        """Count the scoring time and rows; name the model's version."""
        self.model_seconds.inc(seconds)
        self.model_rows.inc(rows)
        if version != self._model_version:
            self._model_version = version
            self.model_version.info({"version": version})

    def outbox_backlog(self, alerts: int) -> None:
        """Set the outbox backlog."""
        self.backlog.set(alerts)

    def live_view(self, *, clients: int, dropped_total: int) -> None:
        """Set the live view's clients; count the frames dropped since the last report (a
        new hub starts again from zero)."""
        self.live_clients.set(clients)
        seen = self._dropped_seen if dropped_total >= self._dropped_seen else 0
        if dropped_total > seen:
            self.live_dropped.inc(dropped_total - seen)
        self._dropped_seen = dropped_total

    def render(self) -> bytes:
        """The metrics in Prometheus' text exposition format."""
        return generate_latest(self.registry)


class PrometheusWorkerTelemetry:
    """One consumer group's metrics (label children bound once, not per batch)."""

    def __init__(self, metrics: PrometheusTelemetry, *, job: str, forwarder: bool) -> None:
        self._m = metrics
        self._job = job
        self._forwarder = forwarder
        self._prepare = metrics.batch_duration.labels(job, "prepare")
        self._apply = metrics.batch_duration.labels(job, "apply")
        self._size = metrics.batch_size.labels(job)
        self._transaction = metrics.transaction.labels(job)
        self._processed = metrics.processed.labels(job)
        self._late = metrics.late.labels(job)
        self._restore = metrics.restore.labels(job)
        self._lagging: set[tuple[str, ...]] = set()
        self._steps: set[str] = set()
        self._closed: dict[str, int] = {}

    def batch_prepared(self, seconds: float) -> None:
        """Observe the prepare stage."""
        self._prepare.observe(seconds)

    def batch_applied(self, seconds: float) -> None:
        """Observe the apply stage."""
        self._apply.observe(seconds)

    def batch_committed(self, report: BatchReport, records: Sequence[Record]) -> None:
        """Count what the batch did; its records' end-to-end latency."""
        m, job = self._m, self._job
        if records:
            self._size.observe(len(records))
            for topic, count in Tally(map(_topic_of, records)).items():
                m.consumed.labels(job, topic).inc(count)
        if report.commit_seconds > 0:
            self._transaction.observe(report.commit_seconds)
        if self._forwarder:
            return  # forwarded back: the job counts them when it handles them
        for letter in report.dead_lettered:
            m.dead_lettered.labels(job, letter.topic, letter.error_class).inc()
        for refused in report.refused:
            m.refused.labels(job, refused.topic, refused.error_class).inc()
        retried = 0
        for topic, count in report.diverted.items():
            if retry_level(topic)[1]:  # the rest went to the DLQ: counted as dead letters
                retried += count
                m.retried.labels(job, topic, report.diverted_because).inc(count)
        processed = (
            report.records
            - report.skipped
            - len(report.dead_lettered)
            - len(report.refused)
            - retried
        )
        if processed > 0:
            self._processed.inc(processed)
        if report.late:
            self._late.inc(report.late)
        if records:
            m.latency.observe_ages(job, map(_timestamp_of, records), time.time() * 1000.0)

    def retried(self, error_class: str) -> None:
        """Count an in-place retry."""
        self._m.retry_attempts.labels(self._job, error_class).inc()

    def lag(self, lags: Mapping[TopicPartition, int]) -> None:
        """Set each held partition's lag (a retry level's: its topic's depth); forget the
        partitions no longer held."""
        gauge = self._m.retry_depth if self._forwarder else self._m.lag
        now: dict[tuple[str, ...], int] = {}
        for tp, lag in lags.items():
            key: tuple[str, ...] = (self._job, tp.topic)
            if not self._forwarder:
                key = (*key, str(tp.partition))
            now[key] = now.get(key, 0) + lag
        for key in self._lagging - now.keys():
            gauge.remove(*key)
        for key, lag in now.items():
            gauge.labels(*key).set(lag)
        self._lagging = set(now)

    def state(self, entries: Mapping[str, int]) -> None:
        """Set each step's entries."""
        for step, count in entries.items():
            self._m.state_entries.labels(self._job, step).set(count)
        for step in self._steps - entries.keys():
            self._m.state_entries.remove(self._job, step)
        self._steps = set(entries)

    def windows_closed(self, totals: Mapping[str, int]) -> None:
        """Count the windows closed since the last sample (a new task counts from zero)."""
        for step, total in totals.items():
            seen = self._closed.get(step, 0)
            new = total - seen if total >= seen else total
            # Created at 0 on the first sample, so a step that has closed nothing yet shows.
            self._m.windows.labels(self._job, step).inc(new)
            self._closed[step] = total

    def restored(self, seconds: float) -> None:
        """Observe a restore."""
        self._restore.observe(seconds)
