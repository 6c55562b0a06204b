"""The sensor job's sinks for the SQLite checkpoint store: readings, one-minute aggregates
and alerts, each written with one executemany per batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from pipeline.adapters.sql.sqlite_checkpoint import SqliteSink
from pipeline.adapters.sql.tables import alerts, reading_aggregates_1m, readings
from pipeline.application.ports.checkpoint import SinkResult
from pipeline.application.ports.records import Record
from pipeline.domain.alerts import Alert
from pipeline.domain.sensor_columns import ReadingLike
from pipeline.domain.windows import WindowAggregate

# Columns of reading_aggregates_1m an upsert replaces, and compares to tell a change.
_WINDOW_VALUES = ("window_end", "sensor_type", "count", "min", "max", "mean", "stddev")


class SqliteReadingsSink:
    """Inserts readings with the record each came from; a reading already stored (same
    sensor and time) is left as it is."""

    async def write(
        self, conn: AsyncConnection, rows: Sequence[ReadingLike], origins: Sequence[Record | None]
    ) -> SinkResult:
        """INSERT … ON CONFLICT DO NOTHING; `written` is how many were really inserted."""
        if not rows:
            return SinkResult(written=0)
        values = []
        for r, origin in zip(rows, origins, strict=True):
            if origin is None:
                raise ValueError("a reading needs the record it was read from (its origin is None)")
            values.append(
                {
                    "sensor_id": r.sensor_id,
                    "time": r.timestamp,
                    "sensor_type": r.sensor_type,
                    "value": r.value,
                    "unit": r.unit,
                    "location": r.location,
                    "battery_level": r.battery_level,
                    "signal_strength": r.signal_strength,
                    "source_topic": origin.topic,
                    "source_partition": origin.partition,
                    "source_offset": origin.offset,
                }
            )
        result = await conn.execute(sqlite_insert(readings).on_conflict_do_nothing(), values)
        # sqlite3 sums rowcount over an executemany; rows left out by DO NOTHING count 0.
        return SinkResult(written=int(result.rowcount))


class SqliteWindowAggregatesSink:
    """Stores each one-minute window's statistics as the engine computed them, replacing
    what the window held unless that held more readings."""

    async def write(
        self,
        conn: AsyncConnection,
        rows: Sequence[WindowAggregate],
        origins: Sequence[Record | None],
    ) -> SinkResult:
        """Upsert the windows (the last row of a window in the batch wins); `written`
        counts the windows inserted or changed."""
        if not rows:
            return SinkResult(written=0)
        windows = {(w.sensor_id, w.window_start): w for w in rows}.values()
        upsert = sqlite_insert(reading_aggregates_1m)
        t = reading_aggregates_1m
        changed: dict[str, Any] = {name: upsert.excluded[name] for name in _WINDOW_VALUES}
        changed["m2"] = upsert.excluded.m2
        changed["updated_at"] = sa.func.current_timestamp()
        statement = upsert.on_conflict_do_update(
            index_elements=["sensor_id", "window_start"],
            set_=changed,
            # A window's count only grows: fewer readings than stored is a partial view (a
            # replay catching up) and never replaces it.
            where=sa.and_(
                t.c.count <= upsert.excluded.count,
                sa.tuple_(*(t.c[name] for name in _WINDOW_VALUES)).is_distinct_from(
                    sa.tuple_(*(upsert.excluded[name] for name in _WINDOW_VALUES))
                ),
            ),
        )
        result = await conn.execute(
            statement,
            [
                {
                    "sensor_id": w.sensor_id,
                    "window_start": w.window_start,
                    "window_end": w.window_end,
                    "sensor_type": w.sensor_type,
                    "count": w.count,
                    "min": w.min,
                    "max": w.max,
                    "mean": w.mean,
                    "stddev": w.stddev,
                    "m2": w.stddev * w.stddev * w.count,
                }
                for w in windows
            ],
        )
        return SinkResult(written=int(result.rowcount))


class SqliteAlertsSink:
    """Inserts alerts by id into the outbox; `events` are the alerts not stored before."""

    async def write(
        self, conn: AsyncConnection, rows: Sequence[Alert], origins: Sequence[Record | None]
    ) -> SinkResult:
        """Insert the alerts whose id is not stored yet; report them as events."""
        if not rows:
            return SinkResult(written=0)
        batch = {a.alert_id: a for a in rows}
        existing = set(
            await conn.scalars(
                sa.select(alerts.c.alert_id).where(alerts.c.alert_id.in_(list(batch)))
            )
        )
        new = tuple(a for a in batch.values() if a.alert_id not in existing)
        if new:
            await conn.execute(
                sa.insert(alerts),
                [
                    {
                        "alert_id": a.alert_id,
                        "source": a.source,
                        "kind": a.kind.value,
                        "severity": a.severity.value,
                        "message": a.message,
                        "time": a.timestamp,
                        "sensor_type": a.sensor_type,
                        "value": a.value,
                        "threshold": a.threshold,
                        "domain": a.domain.value,
                        "score": a.score,
                        "reasons": list(a.reasons),
                        "model_version": a.model_version,
                        "features": dict(a.features),
                    }
                    for a in new
                ],
            )
        return SinkResult(written=len(new), events=new)


def sqlite_sensor_sinks() -> dict[str, SqliteSink]:
    """The sensor job's sinks by name."""
    return {
        "readings": SqliteReadingsSink(),
        "aggregates_1m": SqliteWindowAggregatesSink(),
        "alerts": SqliteAlertsSink(),
    }
