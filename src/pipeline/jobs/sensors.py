"""The sensors job: IoT readings → validated readings, threshold alerts and per-sensor
one-minute statistics.

    sensor-readings ──validate──┬──────────────────────────────────────────→ readings
        (Reading)     (rule →   ├──thresholds (flat_map)───────────────────→ alerts
                      DLQ)      ├──features, model scoring (if enabled) ───→ alerts
                                └──1-minute tumbling window, Stats, updates → aggregates_1m

Readings and alerts have natural keys (sensor and time; alert id), so writing one twice is
harmless. The window keeps each sensor-minute's running statistics in keyed state and
emits the full, current statistics of every window a batch touched (`updates`): the
aggregates table is upserted with them in the same transaction as the state and the offsets.
With a model (`scoring`), anomalies are scored as `pipeline.jobs.sensor_anomalies` describes.
A window stays open for `window_grace` after its minute (by the partition's watermark), so
readings arriving that late still count; later ones are stored as readings but go to
`sensor-readings.late` instead of an aggregate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pipeline.application.scoring import LiveModel
from pipeline.domain import (
    DEFAULT_CATALOG,
    DEFAULT_THRESHOLDS,
    Alert,
    DomainError,
    Reading,
    SensorCatalog,
    Threshold,
    check_thresholds,
    validate_reading,
)
from pipeline.domain.sensors import DEFAULT_MAX_CLOCK_SKEW
from pipeline.domain.windows import WindowAggregate
from pipeline.jobs.sensor_anomalies import anomalies
from pipeline.streams import Job, Sink, Stats, StatsResult, Tumbling, Windowed

READINGS = Sink("readings", Reading, "table readings: one row per valid reading")
ALERTS = Sink("alerts", Alert, "table alerts (outbox to system-alerts)")
AGGREGATES = Sink(
    "aggregates_1m", WindowAggregate, "table reading_aggregates_1m: per sensor and minute"
)
WINDOW_STEP = "aggregates-1m"
ONE_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class SensorJobConfig:
    """What the sensors job is parameterised by (from settings)."""

    topic: str
    thresholds: Mapping[str, Threshold] = field(default_factory=lambda: DEFAULT_THRESHOLDS)
    catalog: SensorCatalog = DEFAULT_CATALOG
    max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW
    window_grace: timedelta = timedelta(hours=1)
    idle_timeout: timedelta = timedelta(seconds=30)
    scoring: LiveModel | None = None
    """The model that scores readings for anomalies (None: no anomaly detection)."""


def sensor_job(config: SensorJobConfig) -> Job:
    """The sensors job over `config.topic`, validating against the wall-clock time of each
    batch."""
    job = Job(
        "sensors",
        idle_timeout=config.idle_timeout,
        description="IoT readings → readings, threshold alerts, one-minute statistics",
    )
    catalog, skew, thresholds = config.catalog, config.max_clock_skew, config.thresholds

    def check(reading: Reading, now: datetime) -> None:
        validate_reading(reading, now=now, catalog=catalog, max_clock_skew=skew)

    def alerts_of(reading: Reading) -> tuple[Alert, ...]:
        alert = check_thresholds(reading, thresholds)
        return () if alert is None else (alert,)

    # Keyed by sensor and type (the record key is the sensor id; a sensor never changes
    # type), so the window groups by the key it emits without a re-keying step.
    readings = job.source(
        config.topic,
        Reading,
        key=lambda r: (r.sensor_id, r.sensor_type),
        event_time=lambda r: r.timestamp,
    )
    valid = readings.validate(check, rejects=(DomainError,), name="reading rules", wall_clock=True)
    valid.to(READINGS)
    valid.flat_map(alerts_of, name="thresholds").to(ALERTS)
    if config.scoring is not None:
        anomalies(valid, config.scoring, catalog).to(ALERTS)
    (
        valid.window(Tumbling(size=ONE_MINUTE, grace=config.window_grace), step=WINDOW_STEP)
        .aggregate(Stats(of=lambda r: r.value))
        .updates()
        .map(window_aggregate)
        .to(AGGREGATES)
    )
    return job


def window_aggregate(result: Windowed[tuple[str, str], StatsResult]) -> WindowAggregate:
    """A window's statistics as the domain's per-sensor, per-minute aggregate."""
    (sensor_id, sensor_type), stats = result.key, result.value
    return WindowAggregate(
        sensor_id=sensor_id,
        sensor_type=sensor_type,
        window_start=result.window.start_time,
        window_end=result.window.end_time,
        count=stats.count,
        min=stats.min,
        max=stats.max,
        mean=stats.mean,
        stddev=stats.stddev,
    )
