"""The sensor projection's tables in memory: written by the in-memory checkpoint's sensor
sinks (and by InMemorySensorStore.apply), read by InMemorySensorStore's queries."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from pipeline.application.ports import StoredAlert
from pipeline.domain.alerts import Alert
from pipeline.domain.sensors import Reading
from pipeline.domain.windows import WindowAggregate


@dataclass(slots=True)
class AlertRow:
    """An alert as stored: with its outbox marker and acknowledgement."""

    alert: Alert
    published: bool = False
    acknowledged_at: datetime | None = None

    def stored(self) -> StoredAlert:
        """The alert as the queries return it."""
        return StoredAlert(alert=self.alert, acknowledged_at=self.acknowledged_at)


@dataclass(slots=True)
class SensorTables:
    """One in-memory sensor projection, shared by the sinks that write it and the store that
    queries it."""

    readings: dict[tuple[str, datetime], Reading] = field(default_factory=dict)
    """By natural key (sensor_id, time)."""
    sensors: set[str] = field(default_factory=set)
    """The sensor ids with a stored reading."""
    aggregates: dict[str, dict[datetime, WindowAggregate]] = field(default_factory=dict)
    """By sensor_id, then window start."""
    alerts: dict[uuid.UUID, AlertRow] = field(default_factory=dict)
