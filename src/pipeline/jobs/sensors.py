"""The sensors job: IoT readings → validated readings, threshold alerts and per-sensor
one-minute statistics.

    sensor-readings ──validate──┬──────────────────────────────────────────→ readings
        (Reading)     (rule →   ├──sensor metadata (join_global)──thresholds→ alerts
                      DLQ)      ├──features, model scoring (if enabled) ───→ alerts
                                └──1-minute tumbling window, Stats, updates → aggregates_1m

A reading is checked against its sensor's own limits when the reference table
`sensor_metadata` (streamed by Debezium into `metadata_topic`) has a row for it, else against
its type's: the job joins that topic as a global table, read whole by every worker, as of
when the reading is processed (a replay meets today's rows).

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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pipeline.application.scoring import LiveModel
from pipeline.domain import (
    DEFAULT_CATALOG,
    DEFAULT_THRESHOLDS,
    Alert,
    DomainError,
    SensorCatalog,
    SensorMetadata,
    Threshold,
    check_threshold,
    check_thresholds,
    sensor_threshold,
    validate_reading,
)
from pipeline.domain.sensor_columns import (
    ReadingLike,
    ReadingRow,
    crosses,
    reading_of,
    suspect_rows,
)
from pipeline.domain.sensors import DEFAULT_MAX_CLOCK_SKEW
from pipeline.domain.windows import WindowAggregate
from pipeline.jobs.sensor_anomalies import anomalies
from pipeline.jobs.sensor_points import (
    AGGREGATE_POINTS,
    ANOMALY_POINTS,
    READING_POINTS,
    aggregate_point,
    anomaly_point,
    reading_point,
)
from pipeline.streams import Job, Sink, Stats, StatsResult, Stream, Tumbling, Windowed

READINGS = Sink("readings", ReadingRow, "table readings: one row per valid reading")
ALERTS = Sink("alerts", Alert, "table alerts (outbox to system-alerts)")
AGGREGATES = Sink(
    "aggregates_1m", WindowAggregate, "table reading_aggregates_1m: per sensor and minute"
)
WINDOW_STEP = "aggregates-1m"
SensorKey = tuple[str, str]
"""(sensor id, sensor type): the key of the job's streams."""
LimitedReading = tuple[ReadingRow, Threshold | None]
"""A reading with the limits it is checked against."""
ONE_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class SensorJobConfig:
    """What the sensors job is parameterised by (from settings)."""

    topic: str
    thresholds: Mapping[str, Threshold] = field(default_factory=lambda: DEFAULT_THRESHOLDS)
    catalog: SensorCatalog = DEFAULT_CATALOG
    max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW
    window_grace: timedelta = timedelta(hours=1)
    aggregates_every: timedelta | None = timedelta(seconds=1)
    """How often a minute's statistics are upserted while it is open: once per this much
    wall-clock time whatever the batches (and at its close, and when the worker stops);
    None: after every batch that changed it."""
    idle_timeout: timedelta = timedelta(seconds=30)
    metadata_topic: str | None = None
    """The changelog of the `sensor_metadata` table, joined for per-sensor limits; None:
    the type's limits only."""
    timeseries: bool = False
    """Also write readings and aggregates as time-series points (`jobs.sensor_points`)."""
    scoring: LiveModel | None = None
    """The model that scores readings for anomalies (None: no anomaly detection)."""


def sensor_job(config: SensorJobConfig) -> Job:
    """The sensors job over `config.topic`, validating against the wall-clock time of each
    batch."""
    job = Job(
        "sensors",
        idle_timeout=config.idle_timeout,
        # A reading the validation refuses as from the future must not close windows.
        max_ahead=config.max_clock_skew,
        description="IoT readings → readings, threshold alerts, one-minute statistics",
    )
    catalog, skew = config.catalog, config.max_clock_skew

    def check(row: ReadingLike, now: datetime) -> None:
        validate_reading(reading_of(row), now=now, catalog=catalog, max_clock_skew=skew)

    def screen(rows: Sequence[ReadingLike], now: datetime) -> list[int]:
        return suspect_rows(rows, now, catalog=catalog, max_clock_skew=skew)

    # Keyed by sensor and type (the record key is the sensor id; a sensor never changes
    # type), so the window groups by the key it emits without a re-keying step. Rows, not
    # Readings: a Reading is built only for a row a rule or a model needs as one (see
    # `pipeline.domain.sensor_columns`).
    readings = job.source(
        config.topic,
        ReadingRow,
        key=lambda r: (r.sensor_id, r.sensor_type),
        event_time=lambda r: r.timestamp,
    )
    valid = readings.validate(
        check, rejects=(DomainError,), name="reading rules", wall_clock=True, screen=screen
    )
    valid.to(READINGS)
    threshold_alerts(job, valid, config).to(ALERTS)
    if config.scoring is not None:
        found = anomalies(valid, config.scoring, catalog)
        found.to(ALERTS)
        if config.timeseries:
            found.map(anomaly_point, name="anomaly points").to(ANOMALY_POINTS)
    aggregates = (
        valid.window(Tumbling(size=ONE_MINUTE, grace=config.window_grace), step=WINDOW_STEP)
        .aggregate(Stats(of=lambda r: r.value))
        .updates(every=config.aggregates_every)
        .map(window_aggregate)
    )
    aggregates.to(AGGREGATES)
    if config.timeseries:
        valid.map(lambda r: reading_point(reading_of(r)), name="reading points").to(READING_POINTS)
        aggregates.map(aggregate_point, name="aggregate points").to(AGGREGATE_POINTS)
    return job


def threshold_alerts(
    job: Job, valid: Stream[SensorKey, ReadingRow], config: SensorJobConfig
) -> Stream[SensorKey, Alert]:
    """The alerts of the readings beyond their limits: the sensor's row of
    `config.metadata_topic` over its type's limits, or the type's alone. Only a reading
    whose value `crosses` its limit becomes a Reading and meets `check_threshold`."""
    thresholds = config.thresholds
    if config.metadata_topic is None:
        return valid.filter(
            lambda r: crosses(r.value, thresholds.get(r.sensor_type)), name="beyond limits"
        ).flat_map(
            lambda r: _alerts(check_thresholds(reading_of(r), thresholds)), name="thresholds"
        )
    metadata = job.global_table(config.metadata_topic, SensorMetadata)

    def limited(reading: ReadingRow, row: SensorMetadata | None) -> LimitedReading:
        return reading, sensor_threshold(reading.sensor_type, row, thresholds)

    return (
        valid.join_global(
            metadata, limited, key=lambda r: r.sensor_id, how="left", name="sensor metadata"
        )
        .filter(lambda pair: crosses(pair[0].value, pair[1]), name="beyond limits")
        .flat_map(
            lambda pair: _alerts(check_threshold(reading_of(pair[0]), pair[1])), name="thresholds"
        )
    )


def _alerts(alert: Alert | None) -> tuple[Alert, ...]:
    return () if alert is None else (alert,)


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
