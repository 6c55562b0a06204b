"""The sensor projection: what a batch changes in it, and what can be asked of it."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from pipeline.domain.alerts import Alert, AlertDomain, Detector, Severity
from pipeline.domain.sensors import Reading
from pipeline.domain.windows import WindowAggregate


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredAlert:
    """An alert as stored, with whether (and when) a person acknowledged it."""

    alert: Alert
    acknowledged_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AlertPosition:
    """Where a page of alerts (newest event time first, then by id) ended: the next page
    starts after it. Keyset pagination, so pages stay stable while alerts are added."""

    timestamp: datetime
    alert_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertFilter:
    """Which stored alerts a query wants; None means any."""

    source: str | None = None
    domain: AlertDomain | None = None
    detector: Detector | None = None
    sensor_type: str | None = None
    severity: Severity | None = None
    acknowledged: bool | None = None
    since: datetime | None = None
    """Event time at or after."""
    until: datetime | None = None
    """Event time before."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TypeStats:
    """Statistics of the readings of one sensor type (or of all) in a time range."""

    count: int
    sensors: int
    """Distinct sensor ids."""
    mean: float | None
    min: float | None
    max: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadingStats:
    """Statistics of the readings stored for a time range, overall and per sensor type."""

    overall: TypeStats
    by_type: Mapping[str, TypeStats]
    alerts: int
    """Alerts raised on readings in the range."""


@runtime_checkable
class SensorStore(Protocol):
    """The sensor projection as the API and the CLI read it (the sensors job writes it through
    the checkpoint store), and the alert outbox."""

    async def unpublished_alerts(self, limit: int) -> list[Alert]:
        """Stored alerts not yet published to the alerts topic, oldest first."""
        ...

    async def unpublished_alert_count(self) -> int:
        """How many stored alerts are not yet published to the alerts topic."""
        ...

    async def mark_published(self, alert_ids: Sequence[uuid.UUID]) -> None:
        """Record that these alerts were published."""
        ...

    async def latest_readings(
        self, *, sensor_id: str | None = None, sensor_type: str | None = None, limit: int = 10
    ) -> list[Reading]:
        """The most recent readings by event time, newest first."""
        ...

    async def aggregates(
        self, sensor_id: str, start: datetime, end: datetime
    ) -> list[WindowAggregate]:
        """The one-minute aggregates of a sensor with window_start in [start, end)."""
        ...

    async def alerts(self, *, source: str | None = None, limit: int = 100) -> list[Alert]:
        """Stored alerts, newest first."""
        ...

    async def count_readings(self) -> int:
        """How many readings are stored."""
        ...

    async def has_sensor(self, sensor_id: str) -> bool:
        """Whether any reading of `sensor_id` is stored."""
        ...

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
        ...

    async def find_alerts(
        self, query: AlertFilter, *, after: AlertPosition | None = None, limit: int = 100
    ) -> list[StoredAlert]:
        """Stored alerts matching `query`, newest event time first (ties by alert id),
        starting after `after` (the last alert of the previous page)."""
        ...

    async def acknowledge_alert(self, alert_id: uuid.UUID, at: datetime) -> StoredAlert | None:
        """Mark the alert acknowledged at `at` (an alert already acknowledged keeps its
        first time) and return it; None when there is no such alert."""
        ...

    async def ping(self) -> None:
        """Return when the store answers; raise StoreUnavailable when it cannot."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
