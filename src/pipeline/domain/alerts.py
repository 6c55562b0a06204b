"""Alerts and the threshold rules that raise them."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pipeline.domain.sensors import Reading

# Alert ids are derived from what caused them, so replaying the log re-derives the same id.
ALERT_NAMESPACE = uuid.UUID("6c1f5f9e-3a51-4a53-9c55-2f1f4ad0e7a1")


class Severity(StrEnum):
    """How urgent an alert is."""

    WARNING = "warning"
    CRITICAL = "critical"


class AlertKind(StrEnum):
    """What rule raised an alert."""

    THRESHOLD_HIGH = "threshold_high"
    THRESHOLD_LOW = "threshold_low"


@dataclass(frozen=True, slots=True, kw_only=True)
class Threshold:
    """Operating limits of one sensor type. Beyond `low`/`high` warns, beyond the
    `critical_*` bounds is critical. Any bound may be None (not checked)."""

    sensor_type: str
    low: float | None = None
    high: float | None = None
    critical_low: float | None = None
    critical_high: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """Something a person should look at, raised by a rule on an event."""

    alert_id: uuid.UUID
    source: str
    """The entity the alert is about (a sensor id, an account, …)."""
    kind: AlertKind
    severity: Severity
    message: str
    timestamp: datetime
    """Event time of the event that raised the alert."""
    sensor_type: str | None = None
    value: float | None = None
    threshold: float | None = None


def alert_id_for(source: str, timestamp: datetime, kind: AlertKind) -> uuid.UUID:
    """The deterministic id of the alert `kind` raised on `source` at `timestamp`."""
    return uuid.uuid5(ALERT_NAMESPACE, f"{source}|{timestamp.isoformat()}|{kind.value}")


def check_thresholds(reading: Reading, thresholds: Mapping[str, Threshold]) -> Alert | None:
    """The alert `reading` raises against its type's threshold, or None if within limits."""
    return check_threshold(reading, thresholds.get(reading.sensor_type))


def check_threshold(reading: Reading, limit: Threshold | None) -> Alert | None:
    """The alert `reading` raises against `limit` (None: no limit), or None if within it.
    Its id depends on the reading and the kind of breach only, not on the limit's values."""
    if limit is None:
        return None
    value = reading.value
    breach: tuple[AlertKind, Severity, float] | None = None
    if limit.critical_high is not None and value > limit.critical_high:
        breach = (AlertKind.THRESHOLD_HIGH, Severity.CRITICAL, limit.critical_high)
    elif limit.critical_low is not None and value < limit.critical_low:
        breach = (AlertKind.THRESHOLD_LOW, Severity.CRITICAL, limit.critical_low)
    elif limit.high is not None and value > limit.high:
        breach = (AlertKind.THRESHOLD_HIGH, Severity.WARNING, limit.high)
    elif limit.low is not None and value < limit.low:
        breach = (AlertKind.THRESHOLD_LOW, Severity.WARNING, limit.low)
    if breach is None:
        return None
    kind, severity, bound = breach
    side = "above" if kind is AlertKind.THRESHOLD_HIGH else "below"
    return Alert(
        alert_id=alert_id_for(reading.sensor_id, reading.timestamp, kind),
        source=reading.sensor_id,
        kind=kind,
        severity=severity,
        message=(
            f"{reading.sensor_type} {value:g} {reading.unit} {side} {severity.value} "
            f"threshold {bound:g} on sensor {reading.sensor_id} at {reading.location}"
        ),
        timestamp=reading.timestamp,
        sensor_type=reading.sensor_type,
        value=value,
        threshold=bound,
    )


def thresholds_by_type(thresholds: Iterable[Threshold]) -> dict[str, Threshold]:
    """Index thresholds by sensor type."""
    return {t.sensor_type: t for t in thresholds}


DEFAULT_THRESHOLDS = thresholds_by_type(
    [
        Threshold(
            sensor_type="temperature", low=-10.0, high=45.0, critical_low=-30.0, critical_high=70.0
        ),
        Threshold(sensor_type="humidity", low=10.0, high=90.0, critical_high=98.0),
        Threshold(
            sensor_type="pressure", low=950.0, high=1050.0, critical_low=900.0, critical_high=1100.0
        ),
    ]
)
