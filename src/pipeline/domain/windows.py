"""Event-time tumbling windows and the statistics kept per window."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pipeline.domain.sensors import Reading
from pipeline.domain.time import window_start

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


@dataclass(slots=True)
class RunningStats:
    """Count, min, max, mean and variance in one pass (Welford), mergeable."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: float = math.inf
    max: float = -math.inf

    def add(self, value: float) -> None:
        """Fold one value in."""
        self.count += 1
        delta = value - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (value - self.mean)
        self.min = min(self.min, value)
        self.max = max(self.max, value)

    def merge(self, other: RunningStats) -> None:
        """Fold another set of statistics in (Chan et al. parallel variance)."""
        if other.count == 0:
            return
        if self.count == 0:
            self.count, self.mean, self.m2 = other.count, other.mean, other.m2
            self.min, self.max = other.min, other.max
            return
        total = self.count + other.count
        delta = other.mean - self.mean
        self.mean += delta * other.count / total
        self.m2 += other.m2 + delta * delta * self.count * other.count / total
        self.count = total
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    @property
    def stddev(self) -> float:
        """Population standard deviation."""
        return math.sqrt(self.m2 / self.count) if self.count else 0.0


def aggregate_window(
    readings: Iterable[Reading], *, size: timedelta = ONE_MINUTE
) -> list[WindowAggregate]:
    """Aggregate `readings` into per-sensor tumbling windows of `size`, ordered by
    (sensor_id, window_start). Readings may arrive in any order."""
    stats: dict[tuple[str, datetime], tuple[str, RunningStats]] = {}
    for reading in readings:
        start = window_start(reading.timestamp, size)
        entry = stats.get((reading.sensor_id, start))
        if entry is None:
            entry = stats[(reading.sensor_id, start)] = (reading.sensor_type, RunningStats())
        entry[1].add(reading.value)
    return [
        WindowAggregate(
            sensor_id=sensor_id,
            sensor_type=sensor_type,
            window_start=start,
            window_end=start + size,
            count=s.count,
            min=s.min,
            max=s.max,
            mean=s.mean,
            stddev=s.stddev,
        )
        for (sensor_id, start), (sensor_type, s) in sorted(stats.items())
    ]
