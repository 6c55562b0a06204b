"""The sensor job's sinks for the PostgreSQL checkpoint store: readings, one-minute
aggregates and alerts, each written with one set-based statement per batch (readings COPYed
straight into their table, or through a staging table when some are already stored;
aggregates COPYed into a staging table first)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any, cast

import asyncpg

from pipeline.adapters.sql.postgres_checkpoint import PostgresSink
from pipeline.adapters.sql.postgres_stage import Stage
from pipeline.application.ports.checkpoint import SinkResult
from pipeline.application.ports.records import Record
from pipeline.domain.alerts import Alert
from pipeline.domain.sensor_columns import ReadingLike
from pipeline.domain.windows import WindowAggregate

_READINGS = Stage(
    "readings_sink_stage",
    (
        ("sensor_id", "text"),
        ("time", "timestamptz"),
        ("sensor_type", "text"),
        ("value", "float8"),
        ("unit", "text"),
        ("location", "text"),
        ("battery_level", "float8"),
        ("signal_strength", "float8"),
        ("source_topic", "text"),
        ("source_partition", "int4"),
        ("source_offset", "int8"),
    ),
)
_FROM_STAGE = """
INSERT INTO readings (sensor_id, "time", sensor_type, value, unit, location, battery_level,
                      signal_strength, source_topic, source_partition, source_offset)
SELECT sensor_id, "time", sensor_type, value, unit, location, battery_level, signal_strength,
       source_topic, source_partition, source_offset
FROM readings_sink_stage
ON CONFLICT (sensor_id, "time") DO NOTHING
"""

_WINDOWS = Stage(
    "aggregates_sink_stage",
    (
        ("sensor_id", "text"),
        ("window_start", "timestamptz"),
        ("window_end", "timestamptz"),
        ("sensor_type", "text"),
        ("count", "int8"),
        ("min", "float8"),
        ("max", "float8"),
        ("mean", "float8"),
        ("stddev", "float8"),
    ),
)
# m2 (the sum of squared deviations) is kept for the rows' readers that merge windows.
# A window stored with the same values is not rewritten, and counts 0. A window's count only
# grows: a row with fewer readings than the one stored is a partial view (a replay catching
# up from the window's start, a member that lost its partition) and never replaces it.
_UPSERT_AGGREGATES = """
INSERT INTO reading_aggregates_1m AS a
    (sensor_id, window_start, window_end, sensor_type, count, min, max, mean, stddev, m2,
     updated_at)
SELECT w.*, w.stddev * w.stddev * w.count, now()
FROM aggregates_sink_stage AS w
ON CONFLICT (sensor_id, window_start) DO UPDATE SET
    window_end = excluded.window_end,
    sensor_type = excluded.sensor_type,
    count = excluded.count,
    min = excluded.min,
    max = excluded.max,
    mean = excluded.mean,
    stddev = excluded.stddev,
    m2 = excluded.m2,
    updated_at = excluded.updated_at
WHERE a.count <= excluded.count
  AND (a.window_end, a.sensor_type, a.count, a.min, a.max, a.mean, a.stddev)
      IS DISTINCT FROM (excluded.window_end, excluded.sensor_type, excluded.count,
                        excluded.min, excluded.max, excluded.mean, excluded.stddev)
"""

_INSERT_ALERTS = """
INSERT INTO alerts (alert_id, source, kind, severity, message, "time", sensor_type, value,
                    threshold, domain, score, reasons, model_version, features)
SELECT a, s, k, sv, m, t, st, v, th, d, sc, r::jsonb, mv, f::jsonb
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
            $6::timestamptz[], $7::text[], $8::float8[], $9::float8[], $10::text[],
            $11::float8[], $12::text[], $13::text[], $14::text[])
     AS u(a, s, k, sv, m, t, st, v, th, d, sc, r, mv, f)
ON CONFLICT (alert_id) DO NOTHING
RETURNING alert_id
"""


def _count(status: str) -> int:
    # asyncpg returns the command tag: "INSERT 0 <rows>".
    return int(status.rsplit(" ", 1)[-1])


_READINGS_COLUMNS = [name for name, _ in _READINGS.columns]

STAGED_AFTER_CONFLICT = 100
"""Batches of readings written through the staging table after one that held a reading
already stored, before a COPY straight into `readings` is tried again."""


class PostgresReadingsSink:
    """Inserts readings with the record each came from; a reading already stored (same
    sensor and time) is left as it is.

    A batch is COPYed straight into `readings`, in a savepoint. When one of its readings is
    already stored (a replay, a producer's duplicate) the COPY fails on the primary key: the
    savepoint is rolled back and the batch goes through a staging table and one
    `INSERT … ON CONFLICT DO NOTHING`, as do the next `STAGED_AFTER_CONFLICT` batches (a
    replay of stored readings fails the COPY at its first row). Measured on 10,000 readings
    into a table of 300,000: 60–72 ms for the COPY, against 14 ms for the COPY into the stage
    and 82–92 ms for the INSERT (psql, 2026-12-01)."""

    def __init__(self) -> None:
        self._staged = 0
        """Batches still to write through the stage before trying the COPY again."""

    async def write(
        self, driver: Any, rows: Sequence[ReadingLike], origins: Sequence[Record | None]
    ) -> SinkResult:
        """COPY the readings into `readings`, or else into a staging table and then one
        INSERT … ON CONFLICT DO NOTHING; `written` is how many were really inserted."""
        if not rows:
            return SinkResult(written=0)
        if any(origin is None for origin in origins):
            raise ValueError("a reading needs the record it was read from (its origin is None)")
        sources = cast("Sequence[Record]", origins)
        if self._staged:
            self._staged -= 1
        else:
            try:
                async with driver.transaction():  # a savepoint in the checkpoint's
                    status = await driver.copy_records_to_table(
                        "readings", records=_records(rows, sources), columns=_READINGS_COLUMNS
                    )
            except asyncpg.UniqueViolationError:
                self._staged = STAGED_AFTER_CONFLICT
            else:
                return SinkResult(written=_count(status))
        await _READINGS.fill(driver, _records(rows, sources))
        return SinkResult(written=_count(await driver.execute(_FROM_STAGE)))


def _records(rows: Sequence[ReadingLike], sources: Sequence[Record]) -> Iterator[tuple[Any, ...]]:
    # Generated as COPY encodes them (asyncpg sends every 512 KiB): a list of the batch's
    # tuples would be held beside its rows while the next batch is prepared.
    return (
        (
            r.sensor_id,
            r.timestamp,
            r.sensor_type,
            r.value,
            r.unit,
            r.location,
            r.battery_level,
            r.signal_strength,
            o.topic,
            o.partition,
            o.offset,
        )
        for r, o in zip(rows, sources, strict=True)
    )


class PostgresWindowAggregatesSink:
    """Stores each one-minute window's statistics as the engine computed them, replacing
    what the window held unless that held more readings (see `_UPSERT_AGGREGATES`)."""

    async def write(
        self, driver: Any, rows: Sequence[WindowAggregate], origins: Sequence[Record | None]
    ) -> SinkResult:
        """Upsert the windows (the last row of a window in the batch wins); `written`
        counts the windows inserted or changed."""
        if not rows:
            return SinkResult(written=0)
        # One statement cannot update a row twice: a window updated twice in a batch keeps
        # its last value.
        windows = {(w.sensor_id, w.window_start): w for w in rows}.values()
        await _WINDOWS.fill(
            driver,
            [
                (
                    w.sensor_id,
                    w.window_start,
                    w.window_end,
                    w.sensor_type,
                    w.count,
                    w.min,
                    w.max,
                    w.mean,
                    w.stddev,
                )
                for w in windows
            ],
        )
        return SinkResult(written=_count(await driver.execute(_UPSERT_AGGREGATES)))


class PostgresAlertsSink:
    """Inserts alerts by id into the outbox; `events` are the alerts not stored before."""

    async def write(
        self, driver: Any, rows: Sequence[Alert], origins: Sequence[Record | None]
    ) -> SinkResult:
        """INSERT … ON CONFLICT (alert_id) DO NOTHING RETURNING the new ones."""
        if not rows:
            return SinkResult(written=0)
        alerts = list({a.alert_id: a for a in rows}.values())
        inserted = await driver.fetch(
            _INSERT_ALERTS,
            [a.alert_id for a in alerts],
            [a.source for a in alerts],
            [a.kind.value for a in alerts],
            [a.severity.value for a in alerts],
            [a.message for a in alerts],
            [a.timestamp for a in alerts],
            [a.sensor_type for a in alerts],
            [a.value for a in alerts],
            [a.threshold for a in alerts],
            [a.domain.value for a in alerts],
            [a.score for a in alerts],
            [json.dumps(a.reasons) for a in alerts],
            [a.model_version for a in alerts],
            [json.dumps(a.features) for a in alerts],
        )
        new_ids = {row[0] for row in inserted}
        new = tuple(a for a in alerts if a.alert_id in new_ids)
        return SinkResult(written=len(new), events=new)


def postgres_sensor_sinks() -> dict[str, PostgresSink]:
    """The sensor job's sinks by name."""
    return {
        "readings": PostgresReadingsSink(),
        "aggregates_1m": PostgresWindowAggregatesSink(),
        "alerts": PostgresAlertsSink(),
    }
