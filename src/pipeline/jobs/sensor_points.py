"""The sensors job's time-series points: each valid reading, and each sensor-minute's
statistics as the window updates them.

    measurement           tags                    fields                         time
    sensor_reading        sensor_id, sensor_type  value, battery_level,          the reading's
                                                  signal_strength (when known)
    sensor_aggregate_1m   sensor_id, sensor_type  count, min, max, mean, stddev  the minute's start
    sensor_anomaly        sensor_id, sensor_type  score, value, model_version    the reading's
                                                  (with anomaly scoring on: each reading the
                                                  model flags)

A sensor-minute's point is written again whenever a batch changes its window: the last one
written holds the minute's full statistics.
"""

from __future__ import annotations

from pipeline.application.ports.timeseries import FieldValue, Point
from pipeline.domain.alerts import Alert
from pipeline.domain.sensors import Reading
from pipeline.domain.windows import WindowAggregate
from pipeline.streams import Sink

READING_MEASUREMENT = "sensor_reading"
AGGREGATE_MEASUREMENT = "sensor_aggregate_1m"
READING_POINTS = Sink("reading_points", Point, f"time series: measurement {READING_MEASUREMENT}")
AGGREGATE_POINTS = Sink(
    "aggregate_points", Point, f"time series: measurement {AGGREGATE_MEASUREMENT}"
)
ANOMALY_MEASUREMENT = "sensor_anomaly"
ANOMALY_POINTS = Sink("anomaly_points", Point, f"time series: measurement {ANOMALY_MEASUREMENT}")


def reading_point(reading: Reading) -> Point:
    """A valid reading as a point of its sensor's series."""
    fields: dict[str, FieldValue] = {"value": reading.value}
    if reading.battery_level is not None:
        fields["battery_level"] = reading.battery_level
    if reading.signal_strength is not None:
        fields["signal_strength"] = reading.signal_strength
    return Point(
        measurement=READING_MEASUREMENT,
        tags={"sensor_id": reading.sensor_id, "sensor_type": reading.sensor_type},
        fields=fields,
        time=reading.timestamp,
    )


def aggregate_point(aggregate: WindowAggregate) -> Point:
    """A sensor-minute's statistics as a point at the minute's start."""
    return Point(
        measurement=AGGREGATE_MEASUREMENT,
        tags={"sensor_id": aggregate.sensor_id, "sensor_type": aggregate.sensor_type},
        fields={
            "count": aggregate.count,
            "min": aggregate.min,
            "max": aggregate.max,
            "mean": aggregate.mean,
            "stddev": aggregate.stddev,
        },
        time=aggregate.window_start,
    )


def anomaly_point(alert: Alert) -> Point:
    """A reading the model flagged, as a point of its sensor's anomaly series: the model's
    score, the reading's value and the model's version."""
    fields: dict[str, FieldValue] = {"score": alert.score if alert.score is not None else 0.0}
    if alert.value is not None:
        fields["value"] = alert.value
    if alert.model_version is not None:
        fields["model_version"] = alert.model_version
    return Point(
        measurement=ANOMALY_MEASUREMENT,
        tags={"sensor_id": alert.source, "sensor_type": alert.sensor_type or ""},
        fields=fields,
        time=alert.timestamp,
    )
