"""Applying a sensor batch to PostgreSQL: set-based statements on the asyncpg connection.

Every table is written with one statement per batch: readings are COPYed (binary) into a
session-private staging table and inserted from there; aggregates, alerts and offsets pass
their rows as arrays expanded by `unnest` on the server. A 5,000-reading batch costs a
handful of round trips instead of thousands of `executemany` rows.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from pipeline.adapters.sql import dead_letters
from pipeline.adapters.sql.batch import BatchPlan, partitions_of, plan_batch
from pipeline.adapters.sql.errors import is_transient
from pipeline.application.ports import AppliedBatch, SensorBatch, TopicPartition

# Rows are locked in a fixed order so that two appliers of one group cannot deadlock.
_LOCK_OFFSETS = """
SELECT o.topic, o."partition", o.next_offset
FROM consumer_offsets AS o
JOIN unnest($2::text[], $3::int4[]) AS p(topic, "partition")
  ON o.topic = p.topic AND o."partition" = p."partition"
WHERE o.group_id = $1
ORDER BY o.topic, o."partition"
FOR UPDATE OF o
"""

_INSERT_ALERTS = """
INSERT INTO alerts (alert_id, source, kind, severity, message, "time", sensor_type, value,
                    threshold)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
                     $6::timestamptz[], $7::text[], $8::float8[], $9::float8[])
ON CONFLICT (alert_id) DO NOTHING
RETURNING alert_id
"""

_STORE_OFFSETS = """
INSERT INTO consumer_offsets AS o (group_id, topic, "partition", next_offset, updated_at)
SELECT $1, p.topic, p."partition", p.next_offset, now()
FROM unnest($2::text[], $3::int4[], $4::int8[]) AS p(topic, "partition", next_offset)
ON CONFLICT (group_id, topic, "partition") DO UPDATE SET
    next_offset = GREATEST(o.next_offset, excluded.next_offset),
    updated_at = excluded.updated_at
"""


# A session-private staging table, created once per connection and emptied by every commit.
# Its columns are spelled out (not LIKE readings) so that a later migration adding a column
# to `readings` does not break sessions that created it before.
_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS pipeline_readings_stage (
    sensor_id text, "time" timestamptz, sensor_type text, value float8, unit text,
    location text, battery_level float8, signal_strength float8, source_topic text,
    source_partition int4, source_offset int8
) ON COMMIT DELETE ROWS
"""
_STAGE_COLUMNS = (
    "sensor_id",
    "time",
    "sensor_type",
    "value",
    "unit",
    "location",
    "battery_level",
    "signal_strength",
    "source_topic",
    "source_partition",
    "source_offset",
)
# One statement per batch: insert the staged readings, then merge only the rows really
# inserted (RETURNING skips readings already stored) into their one-minute windows with the
# parallel-variance formula (Chan et al.). The work is proportional to the batch, not to the
# rows already in its windows; a replay inserts nothing, so it changes no aggregate. date_bin
# with a fixed UTC origin does not depend on the session time zone (date_trunc would).
_FROM_STAGE = """
WITH inserted AS (

    INSERT INTO readings (sensor_id, "time", sensor_type, value, unit, location, battery_level,
                          signal_strength, source_topic, source_partition, source_offset)
    SELECT sensor_id, "time", sensor_type, value, unit, location, battery_level,
           signal_strength, source_topic, source_partition, source_offset
    FROM pipeline_readings_stage
    ON CONFLICT (sensor_id, "time") DO NOTHING
    RETURNING sensor_id, sensor_type, "time", value
), batch AS (
    SELECT sensor_id, min(sensor_type) AS sensor_type,
           date_bin('1 minute', "time", TIMESTAMPTZ '1970-01-01 00:00:00+00') AS window_start,
           count(*) AS n, min(value) AS lo, max(value) AS hi, avg(value) AS mean,
           var_pop(value) * count(*) AS m2
    FROM inserted
    GROUP BY sensor_id, window_start
), merged AS (
    INSERT INTO reading_aggregates_1m AS a
        (sensor_id, window_start, window_end, sensor_type, count, min, max, mean, m2, stddev,
         updated_at)
    SELECT sensor_id, window_start, window_start + interval '1 minute', sensor_type, n, lo, hi,
           mean, m2, sqrt(m2 / n), now()
    FROM batch
    ON CONFLICT (sensor_id, window_start) DO UPDATE SET
        count = a.count + excluded.count,
        min = least(a.min, excluded.min),
        max = greatest(a.max, excluded.max),
        mean = a.mean + (excluded.mean - a.mean) * excluded.count / (a.count + excluded.count),
        m2 = a.m2 + excluded.m2
             + (excluded.mean - a.mean) ^ 2 * a.count * excluded.count / (a.count + excluded.count),
        stddev = sqrt(greatest(0.0, (a.m2 + excluded.m2
             + (excluded.mean - a.mean) ^ 2 * a.count * excluded.count
               / (a.count + excluded.count)) / (a.count + excluded.count))),
        updated_at = now()
    RETURNING 1
)
SELECT (SELECT count(*) FROM inserted), (SELECT count(*) FROM merged)
"""


class PostgresBatchWriter:
    """Applies a SensorBatch through the asyncpg connection under a SQLAlchemy connection."""

    async def apply(self, conn: AsyncConnection, batch: SensorBatch) -> AppliedBatch:
        """Apply `batch` in one transaction of its own on `conn`."""
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        try:
            # The transaction is opened on asyncpg itself: SQLAlchemy would only BEGIN lazily
            # on its own first statement, and this path sends none through SQLAlchemy.
            async with driver.transaction():
                return await self._apply(driver, batch)
        except BaseException as exc:
            # A lost connection, or one interrupted mid-statement by cancellation, is not
            # handed back to the pool.
            if not isinstance(exc, Exception) or is_transient(exc) or driver.is_closed():
                await conn.invalidate()
            raise

    async def _apply(self, driver: Any, batch: SensorBatch) -> AppliedBatch:
        partitions = partitions_of(batch)
        stored: dict[TopicPartition, int] = {}
        if partitions:
            rows = await driver.fetch(
                _LOCK_OFFSETS,
                batch.group_id,
                [tp.topic for tp in partitions],
                [tp.partition for tp in partitions],
            )
            stored = {TopicPartition(r[0], r[1]): r[2] for r in rows}
        plan = plan_batch(batch, stored)
        inserted = await self._insert_readings(driver, plan)
        new_alert_ids: set[object] = set()
        if plan.alerts:
            a = plan.alerts
            rows = await driver.fetch(
                _INSERT_ALERTS,
                [x.alert_id for x in a],
                [x.source for x in a],
                [x.kind.value for x in a],
                [x.severity.value for x in a],
                [x.message for x in a],
                [x.timestamp for x in a],
                [x.sensor_type for x in a],
                [x.value for x in a],
                [x.threshold for x in a],
            )
            new_alert_ids = {r[0] for r in rows}
        if batch.dead_letters:
            arguments = dead_letters.postgres_arguments(batch.dead_letters)
            await driver.execute(dead_letters.POSTGRES_INSERT, *arguments)
        if batch.next_offsets:
            items = sorted(batch.next_offsets.items())
            await driver.execute(
                _STORE_OFFSETS,
                batch.group_id,
                [tp.topic for tp, _ in items],
                [tp.partition for tp, _ in items],
                [offset for _, offset in items],
            )
        return AppliedBatch(
            readings_inserted=inserted,
            skipped=plan.skipped,
            new_alerts=tuple(x for x in plan.alerts if x.alert_id in new_alert_ids),
        )

    @staticmethod
    async def _insert_readings(driver: Any, plan: BatchPlan) -> int:
        # COPY into the staging table, then one INSERT ... SELECT ... ON CONFLICT DO NOTHING.
        # Measured against a single INSERT ... SELECT FROM unnest($1::text[], ...) on batches
        # of 2,000-5,000 readings, COPY took about a third less client CPU (asyncpg checks
        # every array element's type; COPY encodes records column by column) and the same
        # server time.
        if not plan.fresh:
            return 0
        await driver.execute(_STAGE)
        records = [
            (
                p.reading.sensor_id,
                p.reading.timestamp,
                p.reading.sensor_type,
                p.reading.value,
                p.reading.unit,
                p.reading.location,
                p.reading.battery_level,
                p.reading.signal_strength,
                p.source.topic,
                p.source.partition,
                p.offset,
            )
            for p in plan.fresh
        ]
        await driver.copy_records_to_table(
            "pipeline_readings_stage", records=records, columns=_STAGE_COLUMNS
        )
        row = await driver.fetchrow(_FROM_STAGE)
        return int(row[0])
