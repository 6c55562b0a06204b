"""The sensor-aggregates job: IoT readings → one final record per sensor and minute on a
topic, for consumers downstream of Kafka (dashboards, alerting, models) that want the
statistics without reading the database or folding updates themselves.

    sensor-readings ──validate──1-minute tumbling window, Stats, final──→ sensor-aggregates-1m
        (Reading)    (rule → DLQ)                                          (SensorAggregate)

Its only sink is a topic, so it runs under Kafka authority: each batch's aggregates, the
window state's changelog entries, its dead letters and its consumed offsets commit as one
Kafka transaction, and a read_committed consumer sees every sensor-minute exactly once, when
the minute closes (by the partition's watermark, plus `window_grace`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pipeline.domain import DEFAULT_CATALOG, DomainError, Reading, SensorCatalog, validate_reading
from pipeline.domain.sensors import DEFAULT_MAX_CLOCK_SKEW
from pipeline.domain.windows import WindowAggregate
from pipeline.jobs.sensors import ONE_MINUTE, window_aggregate
from pipeline.streams import Job, Sink, Stats, Tumbling

WINDOW_STEP = "aggregates-1m"


@dataclass(frozen=True, slots=True, kw_only=True)
class SensorAggregatesConfig:
    """What the sensor-aggregates job is parameterised by (from settings)."""

    topic: str
    output_topic: str
    catalog: SensorCatalog = DEFAULT_CATALOG
    max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW
    window_grace: timedelta = timedelta(seconds=60)
    idle_timeout: timedelta = timedelta(seconds=30)


def aggregates_sink(topic: str) -> Sink[WindowAggregate]:
    """The job's one sink: the topic of final per-minute aggregates."""
    return Sink(
        "aggregates",
        WindowAggregate,
        f"topic {topic}: one record per sensor and minute, when the minute closes",
        topic=topic,
    )


def sensor_aggregates_job(config: SensorAggregatesConfig) -> Job:
    """The sensor-aggregates job over `config.topic`, validating against the batch's wall
    clock."""
    job = Job(
        "sensor-aggregates",
        idle_timeout=config.idle_timeout,
        # A reading the validation refuses as from the future must not close windows.
        max_ahead=config.max_clock_skew,
        description="IoT readings → final one-minute statistics per sensor, on a topic",
    )
    catalog, skew = config.catalog, config.max_clock_skew

    def check(reading: Reading, now: datetime) -> None:
        validate_reading(reading, now=now, catalog=catalog, max_clock_skew=skew)

    readings = job.source(
        config.topic,
        Reading,
        key=lambda r: (r.sensor_id, r.sensor_type),
        event_time=lambda r: r.timestamp,
    )
    valid = readings.validate(check, rejects=(DomainError,), name="reading rules", wall_clock=True)
    (
        valid.window(Tumbling(size=ONE_MINUTE, grace=config.window_grace), step=WINDOW_STEP)
        .aggregate(Stats(of=lambda r: r.value))
        .final()
        .map(window_aggregate)
        .to(aggregates_sink(config.output_topic))
    )
    return job
