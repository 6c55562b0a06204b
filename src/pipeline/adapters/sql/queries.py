"""SQL statements of the sensor store's read queries (stats, alert search), kept apart from
the store so each stays small. Every statement is written to use an existing index: readings
by time (ix_readings_time) or by its primary key (sensor_id, time), alerts by time
(ix_alerts_time) or by source and time (ix_alerts_source_time). Statistics read whole minutes
from the one-minute aggregates (ix_reading_aggregates_1m_window_start)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from pipeline.adapters.sql import tables
from pipeline.application.ports import AlertFilter, AlertPosition, ReadingStats, TypeStats
from pipeline.domain.alerts import AlertKind, detector_of

_Row = sa.Row[*tuple[Any, ...]]


def _minute_ceil(moment: datetime) -> datetime:
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(minutes=1)


def _window_parts(
    since: datetime, until: datetime, sensor_type: str | None, sensor_id: str | None
) -> sa.CTE:
    """The readings of [since, until) as (sensor_type, sensor_id, n, total, lo, hi) parts:
    the whole minutes inside the range from the one-minute aggregates (one row per sensor and
    minute instead of one per reading) and the partial minutes at either edge from the
    readings themselves, so the statistics stay exact to the microsecond."""
    r, g = tables.readings, tables.reading_aggregates_1m
    inner_from, inner_to = _minute_ceil(since), until.replace(second=0, microsecond=0)
    if inner_from >= inner_to:  # no whole minute inside: the readings alone
        raw_time: sa.ColumnElement[bool] = sa.and_(r.c.time >= since, r.c.time < until)
        inner: list[sa.ColumnElement[bool]] = [sa.false()]
    else:
        raw_time = sa.or_(
            sa.and_(r.c.time >= since, r.c.time < inner_from),
            sa.and_(r.c.time >= inner_to, r.c.time < until),
        )
        inner = [g.c.window_start >= inner_from, g.c.window_start < inner_to]
    raw = [raw_time]
    if sensor_type is not None:
        raw.append(r.c.sensor_type == sensor_type)
        inner.append(g.c.sensor_type == sensor_type)
    if sensor_id is not None:
        raw.append(r.c.sensor_id == sensor_id)
        inner.append(g.c.sensor_id == sensor_id)
    minutes = sa.select(
        g.c.sensor_type,
        g.c.sensor_id,
        g.c.count.label("n"),
        (g.c.mean * g.c.count).label("total"),
        g.c.min.label("lo"),
        g.c.max.label("hi"),
    ).where(*inner)
    edges = sa.select(
        r.c.sensor_type,
        r.c.sensor_id,
        sa.literal(1, sa.BigInteger).label("n"),
        r.c.value.label("total"),
        r.c.value.label("lo"),
        r.c.value.label("hi"),
    ).where(*raw)
    return sa.union_all(minutes, edges).cte("parts")


def stats_by_type(
    since: datetime, until: datetime, sensor_type: str | None, sensor_id: str | None
) -> sa.Select[*tuple[Any, ...]]:
    """Per sensor type: type, count, distinct sensors, mean, min, max."""
    parts = _window_parts(since, until, sensor_type, sensor_id)
    count = sa.func.sum(parts.c.n)
    return (
        sa.select(
            parts.c.sensor_type,
            count,
            sa.func.count(sa.distinct(parts.c.sensor_id)),
            sa.func.sum(parts.c.total) / count,
            sa.func.min(parts.c.lo),
            sa.func.max(parts.c.hi),
        )
        .group_by(parts.c.sensor_type)
        .order_by(parts.c.sensor_type)
    )


def distinct_sensors(
    since: datetime, until: datetime, sensor_type: str | None, sensor_id: str | None
) -> sa.Select[*tuple[Any, ...]]:
    """How many distinct sensors have readings in the range (a sensor id could in principle
    report under two types, so the per-type counts are not simply added)."""
    parts = _window_parts(since, until, sensor_type, sensor_id)
    return sa.select(sa.func.count(sa.distinct(parts.c.sensor_id)))


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
    if query.domain is not None:
        conditions.append(a.c.domain == query.domain.value)
    if query.detector is not None:
        kinds = [kind.value for kind in AlertKind if detector_of(kind) is query.detector]
        conditions.append(a.c.kind.in_(kinds))
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
