"""Readings and feature rows for the anomaly-detection tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipeline.domain import DEFAULT_CATALOG, Reading
from pipeline.jobs.sensor_anomalies import feature_names

T0 = datetime(2026, 11, 30, 6, tzinfo=UTC)
FEATURES = feature_names(DEFAULT_CATALOG)


def a_reading(
    value: float, *, second: int = 0, sensor: str = "temp-0001", **fields: object
) -> Reading:
    values: dict[str, object] = {
        "sensor_id": sensor,
        "sensor_type": "temperature",
        "value": value,
        "unit": "celsius",
        "timestamp": T0 + timedelta(seconds=second),
        "location": "site-01/floor-1",
        "battery_level": 80.0,
        "signal_strength": -60.0,
    }
    values.update(fields)
    return Reading(**values)  # type: ignore[arg-type]


def a_row(**features: float) -> list[float]:
    """A feature row with every column 0 but those named."""
    return [features.get(name, 0.0) for name in FEATURES]
