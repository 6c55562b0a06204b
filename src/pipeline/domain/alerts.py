"""Alerts and the threshold rules that raise them."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
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
    ANOMALY = "anomaly"
    """A scoring model found the event anomalous."""
    FRAUD = "fraud"
    """Fraud rules flagged a payment transaction (its `reasons` name them)."""
    CONVERSION_DROP = "conversion_drop"
    """A shop's conversion rate fell far below its recent level."""
    TRENDING = "trending"
    """A hashtag burst far above its own baseline."""


class Detector(StrEnum):
    """What kind of check raised an alert."""

    THRESHOLD = "threshold"
    """A fixed bound on a value."""
    ML = "ml"
    """A scoring model."""
    RULE = "rule"
    """A rule over the stream (windows, history, joins)."""


_DETECTORS = {
    AlertKind.THRESHOLD_HIGH: Detector.THRESHOLD,
    AlertKind.THRESHOLD_LOW: Detector.THRESHOLD,
    AlertKind.ANOMALY: Detector.ML,
    AlertKind.FRAUD: Detector.RULE,
    AlertKind.CONVERSION_DROP: Detector.RULE,
    AlertKind.TRENDING: Detector.RULE,
}


class AlertDomain(StrEnum):
    """Which stream an alert is about."""

    SENSORS = "sensors"
    SHOP = "shop"
    PAYMENTS = "payments"
    SOCIAL = "social"


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
    domain: AlertDomain = AlertDomain.SENSORS
    sensor_type: str | None = None
    value: float | None = None
    threshold: float | None = None
    score: float | None = None
    """How anomalous or suspicious, for a model's or rules' alert (higher is worse)."""
    reasons: tuple[str, ...] = ()
    """The rules that fired (e.g. a flagged transaction's `velocity`, `card_testing`)."""
    model_version: str | None = None
    """The version of the model that scored the event, for an ML alert."""
    features: Mapping[str, float] = field(default_factory=dict)
    """The features a model scored, by name, for an ML alert."""

    @property
    def detector(self) -> Detector:
        """The kind of check that raised the alert (follows from its kind)."""
        return _DETECTORS[self.kind]


def detector_of(kind: AlertKind) -> Detector:
    """The kind of check that raises alerts of `kind`."""
    return _DETECTORS[kind]


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
