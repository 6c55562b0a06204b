"""The sensor projection in PostgreSQL or SQLite: the SQL implementation of SensorStore."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from pipeline.adapters.sql import queries, tables
from pipeline.adapters.sql.dead_letters import SqlDeadLetterStore
from pipeline.adapters.sql.engine import WRITE_TRANSACTION, create_engine
from pipeline.adapters.sql.errors import store_errors
from pipeline.application.ports import (
    AlertFilter,
    AlertPosition,
    ReadingStats,
    StoredAlert,
)
from pipeline.domain.alerts import Alert, AlertDomain, AlertKind, Severity
from pipeline.domain.sensors import Reading
from pipeline.domain.windows import WindowAggregate

_Row = sa.Row[*tuple[Any, ...]]


class SqlSensorStore:
    """SensorStore on PostgreSQL (asyncpg) or SQLite (aiosqlite), through an AsyncEngine: the
    sensor projection's queries, the alert outbox and acknowledgements. The sensors job
    writes the projection through the checkpoint store on the same engine
    (`pipeline.adapters.sql.checkpoint`). The schema is created by the Alembic migrations
    (`pipeline.adapters.sql.migrate`). Transient database failures surface as
    StoreUnavailable."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @classmethod
    def from_url(cls, url: str, **engine_options: Any) -> SqlSensorStore:
        """A store on a new engine for `url` (see `create_engine` for the options)."""
        return cls(create_engine(url, **engine_options))

    @property
    def engine(self) -> AsyncEngine:
        """The engine the store runs on."""
        return self._engine

    @property
    def dead_letters(self) -> SqlDeadLetterStore:
        """The dead letters stored with the batches (same engine)."""
        return SqlDeadLetterStore(self._engine)

    async def unpublished_alerts(self, limit: int) -> list[Alert]:
        """Stored alerts not yet published to the alerts topic, oldest event time first."""
        query = (
            sa.select(tables.alerts)
            .where(tables.alerts.c.published_at.is_(None))
            .order_by(tables.alerts.c.time, tables.alerts.c.alert_id)
            .limit(limit)
        )
        return [_alert(row) for row in await self._fetch(query, "reading unpublished alerts")]

    async def unpublished_alert_count(self) -> int:
        """How many stored alerts are not yet published (the outbox's partial index)."""
        query = sa.select(sa.func.count()).where(tables.alerts.c.published_at.is_(None))
        [row] = await self._fetch(query, "counting unpublished alerts")
        return int(row[0])

    async def mark_published(self, alert_ids: Sequence[uuid.UUID]) -> None:
        """Record that these alerts were published (an alert already marked keeps its time)."""
        if not alert_ids:
            return
        statement = (
            sa.update(tables.alerts)
            .where(
                tables.alerts.c.alert_id.in_(list(alert_ids)),
                tables.alerts.c.published_at.is_(None),
            )
            .values(published_at=sa.func.current_timestamp())
        )
        with store_errors("marking alerts published"):
            async with self._engine.connect() as plain:
                conn = await plain.execution_options(**WRITE_TRANSACTION)
                async with conn.begin():
                    await conn.execute(statement)

    async def latest_readings(
        self, *, sensor_id: str | None = None, sensor_type: str | None = None, limit: int = 10
    ) -> list[Reading]:
        """The most recent readings by event time, newest first."""
        r = tables.readings
        query = sa.select(r).order_by(r.c.time.desc(), r.c.sensor_id).limit(limit)
        if sensor_id is not None:
            query = query.where(r.c.sensor_id == sensor_id)
        if sensor_type is not None:
            query = query.where(r.c.sensor_type == sensor_type)
        return [_reading(row) for row in await self._fetch(query, "reading latest readings")]

    async def aggregates(
        self, sensor_id: str, start: datetime, end: datetime
    ) -> list[WindowAggregate]:
        """The one-minute aggregates of a sensor with window_start in [start, end), oldest
        first."""
        a = tables.reading_aggregates_1m
        query = (
            sa.select(a)
            .where(a.c.sensor_id == sensor_id, a.c.window_start >= start, a.c.window_start < end)
            .order_by(a.c.window_start)
        )
        return [_aggregate(row) for row in await self._fetch(query, "reading aggregates")]

    async def alerts(self, *, source: str | None = None, limit: int = 100) -> list[Alert]:
        """Stored alerts, newest event time first."""
        query = (
            sa.select(tables.alerts)
            .order_by(tables.alerts.c.time.desc(), tables.alerts.c.alert_id)
            .limit(limit)
        )
        if source is not None:
            query = query.where(tables.alerts.c.source == source)
        return [_alert(row) for row in await self._fetch(query, "reading alerts")]

    async def count_readings(self) -> int:
        """How many readings are stored."""
        rows = await self._fetch(
            sa.select(sa.func.count()).select_from(tables.readings), "counting readings"
        )
        return int(rows[0][0])

    async def has_sensor(self, sensor_id: str) -> bool:
        """Whether any reading of `sensor_id` is stored (one primary-key probe)."""
        r = tables.readings
        query = sa.select(sa.literal(1)).where(r.c.sensor_id == sensor_id).limit(1)
        return bool(await self._fetch(query, "looking up a sensor"))

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
        window = (since, until, sensor_type, sensor_id)
        alert_query = AlertFilter(
            source=sensor_id, sensor_type=sensor_type, since=since, until=until
        )
        with store_errors("computing reading statistics"):
            async with self._engine.connect() as conn:
                rows = (await conn.execute(queries.stats_by_type(*window))).all()
                sensors = await conn.scalar(queries.distinct_sensors(*window))
                alerts = await conn.scalar(queries.count_alerts(alert_query))
        return queries.combine_stats(rows, int(sensors or 0), int(alerts or 0))

    async def find_alerts(
        self, query: AlertFilter, *, after: AlertPosition | None = None, limit: int = 100
    ) -> list[StoredAlert]:
        """Stored alerts matching `query`, newest event time first (ties by alert id),
        starting after `after`."""
        rows = await self._fetch(queries.find_alerts(query, after, limit), "searching alerts")
        return [_stored_alert(row) for row in rows]

    async def acknowledge_alert(self, alert_id: uuid.UUID, at: datetime) -> StoredAlert | None:
        """Mark the alert acknowledged at `at` (the first acknowledgement's time is kept);
        None when there is no such alert."""
        a = tables.alerts
        update = (
            sa.update(a)
            .where(a.c.alert_id == alert_id, a.c.acknowledged_at.is_(None))
            .values(acknowledged_at=at)
        )
        with store_errors("acknowledging an alert"):
            async with self._engine.connect() as plain:
                conn = await plain.execution_options(**WRITE_TRANSACTION)
                async with conn.begin():
                    await conn.execute(update)
                    row = (await conn.execute(sa.select(a).where(a.c.alert_id == alert_id))).first()
        return None if row is None else _stored_alert(row)

    async def ping(self) -> None:
        """Return when the database answers a trivial query; StoreUnavailable otherwise."""
        await self._fetch(sa.select(sa.literal(1)), "pinging the database")

    async def close(self) -> None:
        """Close every pooled connection."""
        await self._engine.dispose()

    async def _fetch(self, query: sa.Select[*tuple[Any, ...]], action: str) -> list[_Row]:
        with store_errors(action):
            async with self._engine.connect() as conn:
                result = await conn.execute(query)
                return list(result.all())


def _reading(row: _Row) -> Reading:
    return Reading(
        sensor_id=row.sensor_id,
        sensor_type=row.sensor_type,
        value=row.value,
        unit=row.unit,
        timestamp=row.time,
        location=row.location,
        battery_level=row.battery_level,
        signal_strength=row.signal_strength,
    )


def _alert(row: _Row) -> Alert:
    return Alert(
        alert_id=row.alert_id,
        source=row.source,
        kind=AlertKind(row.kind),
        severity=Severity(row.severity),
        message=row.message,
        timestamp=row.time,
        sensor_type=row.sensor_type,
        value=row.value,
        threshold=row.threshold,
        domain=AlertDomain(row.domain),
        score=row.score,
        reasons=tuple(row.reasons),
        model_version=row.model_version,
        features=row.features,
    )


def _stored_alert(row: _Row) -> StoredAlert:
    return StoredAlert(alert=_alert(row), acknowledged_at=row.acknowledged_at)


def _aggregate(row: _Row) -> WindowAggregate:
    # By mapping: `row.count` would be the tuple method, not the column.
    m = row._mapping
    return WindowAggregate(
        sensor_id=m["sensor_id"],
        sensor_type=m["sensor_type"],
        window_start=m["window_start"],
        window_end=m["window_end"],
        count=m["count"],
        min=m["min"],
        max=m["max"],
        mean=m["mean"],
        stddev=m["stddev"],
    )
