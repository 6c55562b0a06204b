"""The statistics of one sensor's readings in one minute of event time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

ONE_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowAggregate:
    """Statistics of one sensor's readings in one tumbling event-time window."""

    sensor_id: str
    sensor_type: str
    window_start: datetime
    window_end: datetime
    count: int
    min: float
    max: float
    mean: float
    stddev: float
    """Population standard deviation (0.0 for a single reading)."""
