"""The sensor projection held in memory: the embedded default SensorStore."""

from __future__ import annotations

import heapq
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pipeline.adapters.memory.dead_letters import InMemoryDeadLetterStore
from pipeline.adapters.memory.sensor_queries import alert_matches, stats_of
from pipeline.adapters.memory.sensor_tables import SensorTables
from pipeline.application.ports import (
    AlertFilter,
    AlertPosition,
    ReadingStats,
    StoredAlert,
)
from pipeline.domain.alerts import Alert
from pipeline.domain.sensors import Reading
from pipeline.domain.time import to_epoch_micros
from pipeline.domain.windows import WindowAggregate

_WindowKey = tuple[str, datetime]


class InMemorySensorStore:
    """SensorStore in dictionaries, behaving like SqlSensorStore (the contract suite in
    tests/contract proves it): readings keyed by (sensor_id, time), aggregates recomputed from
    the stored readings of every touched window, alerts keyed by id, offsets per group.

    `apply` never awaits, so on one event loop every batch is applied atomically. The
    tables may be shared with the sinks of an InMemoryCheckpointStore, whose writes the
    queries then read."""

    def __init__(self, tables: SensorTables | None = None) -> None:
        self.tables = SensorTables() if tables is None else tables
        self._readings = self.tables.readings
        self._aggregates = self.tables.aggregates
        self._alerts = self.tables.alerts
        self._dead_letters = InMemoryDeadLetterStore()
        self.declared: dict[str, dict[tuple[Any, ...], Any]] = {}
        """The rows of the declared table sinks (`adapters.memory.table_sinks`), by table
        name and primary key: the other domains' tables, which their query adapters read."""

    @property
    def dead_letters(self) -> InMemoryDeadLetterStore:
        """The dead letters stored with the batches applied here."""
        return self._dead_letters

    async def unpublished_alerts(self, limit: int) -> list[Alert]:
        """Stored alerts not yet published to the alerts topic, oldest event time first."""
        pending = (s.alert for s in self._alerts.values() if not s.published)
        return heapq.nsmallest(limit, pending, key=lambda a: (a.timestamp, a.alert_id))

    async def unpublished_alert_count(self) -> int:
        """How many stored alerts are not yet published."""
        return sum(1 for s in self._alerts.values() if not s.published)

    async def mark_published(self, alert_ids: Sequence[uuid.UUID]) -> None:
        """Record that these alerts were published."""
        for alert_id in alert_ids:
            stored = self._alerts.get(alert_id)
            if stored is not None:
                stored.published = True

    async def latest_readings(
        self, *, sensor_id: str | None = None, sensor_type: str | None = None, limit: int = 10
    ) -> list[Reading]:
        """The most recent readings by event time, newest first."""
        matching = (
            r
            for r in self._readings.values()
            if (sensor_id is None or r.sensor_id == sensor_id)
            and (sensor_type is None or r.sensor_type == sensor_type)
        )
        # Negated micros give newest first with ties to the smaller sensor id, as in SQL.
        return heapq.nsmallest(
            limit, matching, key=lambda r: (-to_epoch_micros(r.timestamp), r.sensor_id)
        )

    async def aggregates(
        self, sensor_id: str, start: datetime, end: datetime
    ) -> list[WindowAggregate]:
        """The one-minute aggregates of a sensor with window_start in [start, end), oldest
        first."""
        windows = self._aggregates.get(sensor_id, {})
        return [windows[w] for w in sorted(windows) if start <= w < end]

    async def alerts(self, *, source: str | None = None, limit: int = 100) -> list[Alert]:
        """Stored alerts, newest event time first."""
        matching = (
            s.alert for s in self._alerts.values() if source is None or s.alert.source == source
        )
        return heapq.nsmallest(
            limit, matching, key=lambda a: (-to_epoch_micros(a.timestamp), a.alert_id)
        )

    async def count_readings(self) -> int:
        """How many readings are stored."""
        return len(self._readings)

    async def has_sensor(self, sensor_id: str) -> bool:
        """Whether any reading of `sensor_id` is stored."""
        # `apply` indexes the known sensors by the windows it recomputes from every stored
        # reading; a checkpoint's readings sink keeps them in `sensors`.
        return sensor_id in self.tables.sensors or sensor_id in self._aggregates

    async def reading_stats(
        self,
        *,
        since: datetime,
        until: datetime,
        sensor_type: str | None = None,
        sensor_id: str | None = None,
    ) -> ReadingStats:
        """Count, distinct sensors, mean, min and max of the readings with event time in
        [since, until), overall and per sensor type, and how many alerts they raised."""
        readings = [
            r
            for r in self._readings.values()
            if since <= r.timestamp < until
            and (sensor_type is None or r.sensor_type == sensor_type)
            and (sensor_id is None or r.sensor_id == sensor_id)
        ]
        query = AlertFilter(source=sensor_id, sensor_type=sensor_type, since=since, until=until)
        alerts = sum(1 for s in self._alerts.values() if alert_matches(s.stored(), query))
        return stats_of(readings, alerts=alerts)

    async def find_alerts(
        self, query: AlertFilter, *, after: AlertPosition | None = None, limit: int = 100
    ) -> list[StoredAlert]:
        """Stored alerts matching `query`, newest event time first (ties by alert id),
        starting after `after`."""

        def order(a: Alert) -> tuple[int, uuid.UUID]:
            return (-to_epoch_micros(a.timestamp), a.alert_id)

        start = None if after is None else (-to_epoch_micros(after.timestamp), after.alert_id)
        matching = (
            s.stored()
            for s in self._alerts.values()
            if alert_matches(s.stored(), query) and (start is None or order(s.alert) > start)
        )
        return heapq.nsmallest(limit, matching, key=lambda s: order(s.alert))

    async def acknowledge_alert(self, alert_id: uuid.UUID, at: datetime) -> StoredAlert | None:
        """Mark the alert acknowledged at `at` (the first acknowledgement's time is kept);
        None when there is no such alert."""
        stored = self._alerts.get(alert_id)
        if stored is None:
            return None
        if stored.acknowledged_at is None:
            stored.acknowledged_at = at
        return stored.stored()

    async def ping(self) -> None:
        """Always answers: the data is in this process."""

    async def close(self) -> None:
        """Nothing to release; the data stays readable."""
