"""SQL statements of the sensor store's read queries (stats, alert search), kept apart from
the store so each stays small. Every statement is written to use an existing index: readings
by time (ix_readings_time) or by its primary key (sensor_id, time), alerts by time
(ix_alerts_time) or by source and time (ix_alerts_source_time)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pipeline.adapters.sql import tables
from pipeline.application.ports import AlertFilter, AlertPosition, ReadingStats, TypeStats

_Row = sa.Row[*tuple[Any, ...]]


def _reading_conditions(
    since: datetime, until: datetime, sensor_type: str | None, sensor_id: str | None
) -> list[sa.ColumnElement[bool]]:
    r = tables.readings
    conditions = [r.c.time >= since, r.c.time < until]
    if sensor_type is not None:
        conditions.append(r.c.sensor_type == sensor_type)
    if sensor_id is not None:
        conditions.append(r.c.sensor_id == sensor_id)
    return conditions


def stats_by_type(
    since: datetime, until: datetime, sensor_type: str | None, sensor_id: str | None
) -> sa.Select[*tuple[Any, ...]]:
    """Per sensor type: type, count, distinct sensors, mean, min, max."""
    r = tables.readings
    return (
        sa.select(
            r.c.sensor_type,
            sa.func.count(),
            sa.func.count(sa.distinct(r.c.sensor_id)),
            sa.func.avg(r.c.value),
            sa.func.min(r.c.value),
            sa.func.max(r.c.value),
        )
        .where(*_reading_conditions(since, until, sensor_type, sensor_id))
        .group_by(r.c.sensor_type)
        .order_by(r.c.sensor_type)
    )


def distinct_sensors(
    since: datetime, until: datetime, sensor_type: str | None, sensor_id: str | None
) -> sa.Select[*tuple[Any, ...]]:
    """How many distinct sensors have readings in the range (a sensor id could in principle
    report under two types, so the per-type counts are not simply added)."""
    r = tables.readings
    return sa.select(sa.func.count(sa.distinct(r.c.sensor_id))).where(
        *_reading_conditions(since, until, sensor_type, sensor_id)
    )


def combine_stats(rows: Sequence[_Row], sensors: int, alerts: int) -> ReadingStats:
    """ReadingStats from the rows of `stats_by_type` and the overall distinct sensor count."""
    by_type = {
        row[0]: TypeStats(
            count=int(row[1]),
            sensors=int(row[2]),
            mean=float(row[3]),
            min=float(row[4]),
            max=float(row[5]),
        )
        for row in rows
    }
    count = sum(s.count for s in by_type.values())
    if count == 0:
        overall = TypeStats(count=0, sensors=0, mean=None, min=None, max=None)
    else:
        overall = TypeStats(
            count=count,
            sensors=sensors,
            mean=sum(s.count * (s.mean or 0.0) for s in by_type.values()) / count,
            min=min(s.min for s in by_type.values() if s.min is not None),
            max=max(s.max for s in by_type.values() if s.max is not None),
        )
    return ReadingStats(overall=overall, by_type=by_type, alerts=alerts)


def _alert_conditions(query: AlertFilter) -> list[sa.ColumnElement[bool]]:
    a = tables.alerts
    conditions: list[sa.ColumnElement[bool]] = []
    if query.source is not None:
        conditions.append(a.c.source == query.source)
    if query.sensor_type is not None:
        conditions.append(a.c.sensor_type == query.sensor_type)
    if query.severity is not None:
        conditions.append(a.c.severity == query.severity.value)
    if query.acknowledged is not None:
        column = a.c.acknowledged_at
        conditions.append(column.is_not(None) if query.acknowledged else column.is_(None))
    if query.since is not None:
        conditions.append(a.c.time >= query.since)
    if query.until is not None:
        conditions.append(a.c.time < query.until)
    return conditions


def count_alerts(query: AlertFilter) -> sa.Select[*tuple[Any, ...]]:
    """How many alerts match `query`."""
    return sa.select(sa.func.count()).select_from(tables.alerts).where(*_alert_conditions(query))


def find_alerts(
    query: AlertFilter, after: AlertPosition | None, limit: int
) -> sa.Select[*tuple[Any, ...]]:
    """Alerts matching `query`, newest event time first, ties by id, after `after`."""
    a = tables.alerts
    conditions = _alert_conditions(query)
    if after is not None:
        conditions.append(
            sa.or_(
                a.c.time < after.timestamp,
                sa.and_(a.c.time == after.timestamp, a.c.alert_id > after.alert_id),
            )
        )
    return sa.select(a).where(*conditions).order_by(a.c.time.desc(), a.c.alert_id).limit(limit)
