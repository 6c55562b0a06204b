"""The sensor job's sinks for the in-memory checkpoint store: readings, one-minute aggregates
and alerts written into `SensorTables`, which InMemorySensorStore's queries read."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.adapters.memory.checkpoint import MemorySink, Undo
from pipeline.adapters.memory.sensor_tables import AlertRow, SensorTables
from pipeline.application.ports.checkpoint import SinkResult
from pipeline.application.ports.records import Record
from pipeline.domain.alerts import Alert
from pipeline.domain.sensor_columns import ReadingLike, reading_of
from pipeline.domain.windows import WindowAggregate


class InMemoryReadingsSink:
    """Inserts readings by their natural key; a reading already stored is left as it is."""

    def __init__(self, tables: SensorTables) -> None:
        self._tables = tables

    def write(
        self, rows: Sequence[ReadingLike], origins: Sequence[Record | None], undo: Undo
    ) -> SinkResult:
        """Insert the readings not stored yet; `written` is how many."""
        readings, sensors = self._tables.readings, self._tables.sensors
        new_keys = []
        new_sensors = []
        for row in rows:
            key = (row.sensor_id, row.timestamp)
            if key in readings:
                continue
            reading = readings[key] = reading_of(row)
            new_keys.append(key)
            if reading.sensor_id not in sensors:
                sensors.add(reading.sensor_id)
                new_sensors.append(reading.sensor_id)

        def take_back() -> None:
            for key in new_keys:
                del readings[key]
            sensors.difference_update(new_sensors)

        undo.append(take_back)
        return SinkResult(written=len(new_keys))


class InMemoryWindowAggregatesSink:
    """Stores each one-minute window's statistics as the engine computed them, replacing
    what the window held unless that held more readings."""

    def __init__(self, tables: SensorTables) -> None:
        self._tables = tables

    def write(
        self, rows: Sequence[WindowAggregate], origins: Sequence[Record | None], undo: Undo
    ) -> SinkResult:
        """Upsert the windows; `written` counts those that changed."""
        aggregates = self._tables.aggregates
        before: list[tuple[WindowAggregate, WindowAggregate | None]] = []
        for aggregate in rows:
            windows = aggregates.setdefault(aggregate.sensor_id, {})
            previous = windows.get(aggregate.window_start)
            # A window's count only grows: fewer readings than stored is a partial view.
            if previous == aggregate or (previous is not None and previous.count > aggregate.count):
                continue
            windows[aggregate.window_start] = aggregate
            before.append((aggregate, previous))

        def take_back() -> None:
            for aggregate, previous in reversed(before):
                windows = aggregates[aggregate.sensor_id]
                if previous is None:
                    del windows[aggregate.window_start]
                    if not windows:
                        del aggregates[aggregate.sensor_id]
                else:
                    windows[aggregate.window_start] = previous

        undo.append(take_back)
        return SinkResult(written=len(before))


class InMemoryAlertsSink:
    """Inserts alerts by id into the outbox; `events` are the alerts not stored before."""

    def __init__(self, tables: SensorTables) -> None:
        self._tables = tables

    def write(
        self, rows: Sequence[Alert], origins: Sequence[Record | None], undo: Undo
    ) -> SinkResult:
        """Insert the new alerts; report them as events."""
        alerts = self._tables.alerts
        new: list[Alert] = []
        for alert in rows:
            if alert.alert_id not in alerts:
                alerts[alert.alert_id] = AlertRow(alert)
                new.append(alert)

        def take_back() -> None:
            for alert in new:
                del alerts[alert.alert_id]

        undo.append(take_back)
        return SinkResult(written=len(new), events=tuple(new))


def memory_sensor_sinks(tables: SensorTables) -> dict[str, MemorySink]:
    """The sensor job's sinks by name, writing into `tables`."""
    return {
        "readings": InMemoryReadingsSink(tables),
        "aggregates_1m": InMemoryWindowAggregatesSink(tables),
        "alerts": InMemoryAlertsSink(tables),
    }
