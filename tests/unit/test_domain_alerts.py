"""Specification of threshold rules and the alerts they raise."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pipeline.domain import (
    DEFAULT_THRESHOLDS,
    HUMIDITY,
    TEMPERATURE,
    AlertKind,
    Reading,
    Severity,
    Threshold,
    alert_id_for,
    check_thresholds,
    thresholds_by_type,
)

AT = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def a_reading(**changes: Any) -> Reading:
    reading = Reading(
        sensor_id="temp-0001",
        sensor_type=TEMPERATURE,
        value=21.5,
        unit="celsius",
        timestamp=AT,
        location="site-01/floor-2",
    )
    return dataclasses.replace(reading, **changes)


@pytest.mark.parametrize("value", [-10.0, 21.5, 45.0])
def test_value_within_limits_raises_no_alert(value: float) -> None:
    assert check_thresholds(a_reading(value=value), DEFAULT_THRESHOLDS) is None


@pytest.mark.parametrize(
    ("value", "kind", "severity", "bound"),
    [
        (45.1, AlertKind.THRESHOLD_HIGH, Severity.WARNING, 45.0),
        (70.0, AlertKind.THRESHOLD_HIGH, Severity.WARNING, 45.0),
        (70.1, AlertKind.THRESHOLD_HIGH, Severity.CRITICAL, 70.0),
        (-10.1, AlertKind.THRESHOLD_LOW, Severity.WARNING, -10.0),
        (-30.0, AlertKind.THRESHOLD_LOW, Severity.WARNING, -10.0),
        (-30.1, AlertKind.THRESHOLD_LOW, Severity.CRITICAL, -30.0),
    ],
)
def test_value_beyond_a_limit_raises_an_alert_of_that_side_and_severity(
    value: float, kind: AlertKind, severity: Severity, bound: float
) -> None:
    alert = check_thresholds(a_reading(value=value), DEFAULT_THRESHOLDS)

    assert alert is not None
    assert (alert.kind, alert.severity, alert.threshold) == (kind, severity, bound)
    assert alert.value == value


def test_alert_describes_its_cause() -> None:
    reading = a_reading(value=80.0)

    alert = check_thresholds(reading, DEFAULT_THRESHOLDS)

    assert alert is not None
    assert alert.source == "temp-0001"
    assert alert.sensor_type == TEMPERATURE
    assert alert.timestamp == AT
    assert "above critical threshold 70" in alert.message
    assert "site-01/floor-2" in alert.message


def test_type_without_a_configured_threshold_raises_no_alert() -> None:
    thresholds = thresholds_by_type([Threshold(sensor_type=HUMIDITY, high=90.0)])

    assert check_thresholds(a_reading(value=999.0), thresholds) is None


def test_unset_bounds_are_not_checked() -> None:
    # Humidity has no critical_low: far below the warning bound is still only a warning.
    reading = a_reading(sensor_type=HUMIDITY, unit="percent", value=0.0)

    alert = check_thresholds(reading, DEFAULT_THRESHOLDS)

    assert alert is not None
    assert (alert.kind, alert.severity) == (AlertKind.THRESHOLD_LOW, Severity.WARNING)


def test_threshold_with_only_critical_bounds_skips_warnings() -> None:
    thresholds = thresholds_by_type([Threshold(sensor_type=TEMPERATURE, critical_high=50.0)])

    assert check_thresholds(a_reading(value=49.0), thresholds) is None
    alert = check_thresholds(a_reading(value=51.0), thresholds)
    assert alert is not None
    assert alert.severity is Severity.CRITICAL


def test_same_cause_gives_the_same_alert_id() -> None:
    first = check_thresholds(a_reading(value=50.0), DEFAULT_THRESHOLDS)
    replayed = check_thresholds(a_reading(value=55.0), DEFAULT_THRESHOLDS)

    assert first is not None
    assert replayed is not None
    assert first.alert_id == replayed.alert_id
    assert first.alert_id == alert_id_for("temp-0001", AT, AlertKind.THRESHOLD_HIGH)


@pytest.mark.parametrize(
    "other",
    [
        ("temp-0002", AT, AlertKind.THRESHOLD_HIGH),
        ("temp-0001", AT + timedelta(seconds=1), AlertKind.THRESHOLD_HIGH),
        ("temp-0001", AT, AlertKind.THRESHOLD_LOW),
    ],
)
def test_a_different_sensor_time_or_kind_gives_a_different_alert_id(
    other: tuple[str, datetime, AlertKind],
) -> None:
    assert alert_id_for(*other) != alert_id_for("temp-0001", AT, AlertKind.THRESHOLD_HIGH)


def test_thresholds_by_type_indexes_by_sensor_type() -> None:
    humidity = Threshold(sensor_type=HUMIDITY, high=80.0)

    assert thresholds_by_type([humidity]) == {HUMIDITY: humidity}


def test_default_thresholds_cover_every_default_sensor_type() -> None:
    assert set(DEFAULT_THRESHOLDS) == {"temperature", "humidity", "pressure"}
