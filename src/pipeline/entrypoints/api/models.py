"""Response bodies of the HTTP API, as msgspec structs (Litestar encodes them natively and
documents them in the OpenAPI schema)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from pipeline.application.ports import StoredAlert, TypeStats
from pipeline.domain.sensors import DEFAULT_CATALOG, Reading
from pipeline.domain.windows import WindowAggregate


class ReadingOut(msgspec.Struct, kw_only=True):
    """One stored sensor reading."""

    sensor_id: str
    sensor_type: str
    value: float
    unit: str
    timestamp: datetime
    location: str
    battery_level: float | None = None
    signal_strength: float | None = None

    @classmethod
    def of(cls, reading: Reading) -> ReadingOut:
        """The body of `reading`."""
        return cls(
            sensor_id=reading.sensor_id,
            sensor_type=reading.sensor_type,
            value=reading.value,
            unit=reading.unit,
            timestamp=reading.timestamp,
            location=reading.location,
            battery_level=reading.battery_level,
            signal_strength=reading.signal_strength,
        )


class LatestReadings(msgspec.Struct, kw_only=True):
    """The most recent readings, newest first."""

    count: int
    readings: list[ReadingOut]


class TypeStatsOut(msgspec.Struct, kw_only=True):
    """Statistics of one sensor type's readings in the window, in that type's unit."""

    count: int
    active_sensors: int
    unit: str | None
    mean: float | None
    min: float | None
    max: float | None

    @classmethod
    def of(cls, name: str, stats: TypeStats) -> TypeStatsOut:
        """The body of `stats`, the statistics of sensor type `name`."""
        kind = DEFAULT_CATALOG.kinds.get(name)
        return cls(
            count=stats.count,
            active_sensors=stats.sensors,
            unit=kind.unit if kind is not None else None,
            mean=stats.mean,
            min=stats.min,
            max=stats.max,
        )


_SINGLE_TYPE = (
    "Of all the window's readings when they are of one sensor type (a sensor_type or "
    "sensor_id filter); null when they mix types, whose units differ: see by_type."
)


class SensorStats(msgspec.Struct, kw_only=True):
    """Statistics of the readings with event time in the last `time_window_minutes`."""

    time_window_minutes: int
    since: datetime
    until: datetime
    count: int
    messages_per_second: float
    active_sensors: int
    alert_count: int
    mean: Annotated[float | None, msgspec.Meta(description=_SINGLE_TYPE)]
    min: Annotated[float | None, msgspec.Meta(description=_SINGLE_TYPE)]
    max: Annotated[float | None, msgspec.Meta(description=_SINGLE_TYPE)]
    by_type: dict[str, TypeStatsOut]


class AlertOut(msgspec.Struct, kw_only=True):
    """An alert the pipeline raised, and whether someone acknowledged it."""

    alert_id: uuid.UUID
    source: str
    kind: str
    severity: str
    message: str
    timestamp: datetime
    domain: str
    """The stream the alert is about: sensors, shop, payments or social."""
    detector: str
    """The kind of check that raised it: threshold, ml or rule."""
    sensor_type: str | None
    value: float | None
    threshold: float | None
    score: float | None
    reasons: list[str]
    model_version: str | None
    features: dict[str, float]
    acknowledged: bool
    acknowledged_at: datetime | None

    @classmethod
    def of(cls, stored: StoredAlert) -> AlertOut:
        """The body of `stored`."""
        alert = stored.alert
        return cls(
            alert_id=alert.alert_id,
            source=alert.source,
            kind=alert.kind.value,
            severity=alert.severity.value,
            message=alert.message,
            timestamp=alert.timestamp,
            domain=alert.domain.value,
            detector=alert.detector.value,
            sensor_type=alert.sensor_type,
            value=alert.value,
            threshold=alert.threshold,
            score=alert.score,
            reasons=list(alert.reasons),
            model_version=alert.model_version,
            features=dict(alert.features),
            acknowledged=stored.acknowledged_at is not None,
            acknowledged_at=stored.acknowledged_at,
        )


class Anomalies(msgspec.Struct, kw_only=True):
    """Alerts the pipeline raised, newest first."""

    count: int
    anomalies: list[AlertOut]


class AlertPage(msgspec.Struct, kw_only=True):
    """One page of alerts, newest first; pass `next_cursor` as `cursor` (with the same
    filters) for the next page. `next_cursor` is null on the last page."""

    items: list[AlertOut]
    next_cursor: str | None


class AggregateOut(msgspec.Struct, kw_only=True):
    """Statistics of one sensor's readings in one one-minute event-time window."""

    window_start: datetime
    window_end: datetime
    count: int
    min: float
    max: float
    mean: float
    stddev: float

    @classmethod
    def of(cls, aggregate: WindowAggregate) -> AggregateOut:
        """The body of `aggregate`."""
        return cls(
            window_start=aggregate.window_start,
            window_end=aggregate.window_end,
            count=aggregate.count,
            min=aggregate.min,
            max=aggregate.max,
            mean=aggregate.mean,
            stddev=aggregate.stddev,
        )


class SensorAggregates(msgspec.Struct, kw_only=True):
    """The one-minute aggregates of one sensor with window_start in [from, to)."""

    sensor_id: str
    start: datetime = msgspec.field(name="from")
    end: datetime = msgspec.field(name="to")
    aggregates: list[AggregateOut]


class Health(msgspec.Struct, kw_only=True):
    """The process is alive."""

    status: Literal["ok"] = "ok"


class Readiness(msgspec.Struct, kw_only=True):
    """Whether the dependencies answer: each check is "ok" or what went wrong."""

    status: Literal["ready", "unavailable"]
    checks: dict[str, str]


class ParameterError(msgspec.Struct, kw_only=True):
    """One refused parameter of a 400."""

    key: str
    """The parameter's name, as clients send it."""
    source: str
    """Where it was: `query` or `path`."""
    message: str
    """What it takes, in words."""


class Problem(msgspec.Struct, kw_only=True):
    """An error, as RFC 9457 problem details (`application/problem+json`)."""

    type: str = "about:blank"
    title: str
    """The status's phrase, e.g. "Bad Request"."""
    status: int
    detail: str
    """What went wrong, in words."""
    errors: list[ParameterError] | None = None
    """For a 400: each refused parameter."""
