"""The sensors job's time-series points: each valid reading, and each sensor-minute's
statistics as the window updates them.

    measurement           tags                    fields                         time
    sensor_reading        sensor_id, sensor_type  value, battery_level,          the reading's
                                                  signal_strength (when known)
    sensor_aggregate_1m   sensor_id, sensor_type  count, min, max, mean, stddev  the minute's start

A sensor-minute's point is written again whenever a batch changes its window: the last one
written holds the minute's full statistics.
"""

from __future__ import annotations

from pipeline.application.ports.timeseries import FieldValue, Point
from pipeline.domain.sensors import Reading
from pipeline.domain.windows import WindowAggregate
from pipeline.streams import Sink

READING_MEASUREMENT = "sensor_reading"
AGGREGATE_MEASUREMENT = "sensor_aggregate_1m"
READING_POINTS = Sink("reading_points", Point, f"time series: measurement {READING_MEASUREMENT}")
AGGREGATE_POINTS = Sink(
    "aggregate_points", Point, f"time series: measurement {AGGREGATE_MEASUREMENT}"
)


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
