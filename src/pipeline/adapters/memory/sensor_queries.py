"""Filtering and statistics for the in-memory sensor store's read queries."""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.application.ports import AlertFilter, ReadingStats, StoredAlert, TypeStats
from pipeline.domain.sensors import Reading
from pipeline.streams.aggregates import RunningStats


def alert_matches(stored: StoredAlert, query: AlertFilter) -> bool:
    """Whether `stored` satisfies every condition of `query`."""
    alert = stored.alert
    return (
        (query.source is None or alert.source == query.source)
        and (query.domain is None or alert.domain == query.domain)
        and (query.detector is None or alert.detector == query.detector)
        and (query.sensor_type is None or alert.sensor_type == query.sensor_type)
        and (query.severity is None or alert.severity == query.severity)
        and (
            query.acknowledged is None or (stored.acknowledged_at is not None) == query.acknowledged
        )
        and (query.since is None or alert.timestamp >= query.since)
        and (query.until is None or alert.timestamp < query.until)
    )


def _type_stats(stats: RunningStats, sensors: set[str]) -> TypeStats:
    if stats.count == 0:
        return TypeStats(count=0, sensors=0, mean=None, min=None, max=None)
    return TypeStats(
        count=stats.count, sensors=len(sensors), mean=stats.mean, min=stats.min, max=stats.max
    )


def stats_of(readings: Iterable[Reading], *, alerts: int) -> ReadingStats:
    """Overall and per-type statistics of `readings`."""
    overall, all_sensors = RunningStats(), set[str]()
    per_type: dict[str, tuple[RunningStats, set[str]]] = {}
    for reading in readings:
        overall.add(reading.value)
        all_sensors.add(reading.sensor_id)
        stats, sensors = per_type.setdefault(reading.sensor_type, (RunningStats(), set()))
        stats.add(reading.value)
        sensors.add(reading.sensor_id)
    return ReadingStats(
        overall=_type_stats(overall, all_sensors),
        by_type={name: _type_stats(*entry) for name, entry in sorted(per_type.items())},
        alerts=alerts,
    )
